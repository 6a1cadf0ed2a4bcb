package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
)

// Zones, as they appear in envelope headers.
const (
	ZoneInternet = "internet"
	ZoneExternal = "external"
)

// PathApply is the endpoint that applies one batch.
const PathApply = "/v1/apply"

// ReplayGuard remembers accepted message ids. at is the envelope's own
// sealed time (authenticated, within the skew of this host's clock).
// Remember must return an error wrapping gapsync.ErrReplayed when id was
// accepted before, also by an earlier process, and one wrapping
// gapsync.ErrStale when it has forgotten ids of that age; it must be safe
// for concurrent use.
type ReplayGuard interface {
	Remember(ctx context.Context, id string, at time.Time) error
}

// HandlerFunc serves one authenticated request: it receives the opened
// plaintext and returns the plaintext of the answer. An error is sent to the
// client sealed, with the wire code of the sentinel it wraps.
type HandlerFunc func(ctx context.Context, body []byte) ([]byte, error)

// Defaults of ServerOptions. DefaultMaxBody is a few times the largest
// request the coordinator makes with its defaults (a 4 MiB page of rows, a
// 4 MiB batch of file chunks), so that a keyless caller cannot make the
// gateway hold much more than real traffic does.
const (
	DefaultMaxBody           = 16 << 20
	DefaultMaxConcurrent     = 32
	DefaultMaxInFlightBytes  = 64 << 20
	DefaultMinBodyRate       = 32 << 10
	DefaultBodyGrace         = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 2 * time.Minute
	DefaultWriteTimeout      = time.Minute
	DefaultIdleTimeout       = time.Minute
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultRetryAfter        = 2 * time.Second
)

// smallBody is the announced size up to which a request does not count
// against MaxInFlightBytes (only against MaxConcurrent), so that the small
// requests of a cycle (bounds, pull requests, acks) pass while large
// bodies wait for room.
const smallBody = 64 << 10

// ServerOptions tune a Server, and the http.Server that NewHTTPServer
// makes for it. Nil or zero fields give the defaults (the Default*
// constants). Every limit is enforced before the envelope is opened: a
// caller without a key can make the gateway hold at most about
// MaxInFlightBytes + MaxConcurrent×64 KiB of request bodies, each for at
// most ReadTimeout.
type ServerOptions struct {
	// MaxBody caps a request body in bytes. A request that announces more
	// is refused (413) before any of it is read; a body is read in pieces
	// as its bytes arrive, never allocated from the announced length.
	// Default 16 MiB. Keep it above the coordinator's page and file batch
	// sizes (transport.ClientOptions.MaxRequest on the other side).
	MaxBody int64
	// MaxConcurrent caps the requests served at once, from reading the
	// body to writing the answer. Past it a request gets 503 with
	// Retry-After before its body is read. Default 32 (a coordinator with
	// its defaults makes up to 16 at once).
	MaxConcurrent int
	// MaxInFlightBytes caps the sum of the announced sizes (MaxBody when
	// unknown) of the bodies being read or served; requests that announce
	// 64 KiB or less do not count. Past it: 503 with Retry-After. Default
	// 64 MiB. The memory of served requests is about three times this
	// (body, opened plaintext, decoded batch).
	MaxInFlightBytes int64
	// MinBodyRate is the slowest a body may arrive, in bytes per second,
	// once BodyGrace has passed: every byte received buys 1/MinBodyRate
	// seconds, banked up to BodyGrace, and a body that runs out is cut off
	// (408, too_slow). Default 32 KiB/s; negative turns the check off
	// (ReadTimeout still applies). Needs a ResponseWriter that supports
	// read deadlines (net/http's does; wrappers should implement Unwrap).
	MinBodyRate int64
	// BodyGrace is the time a body may take before MinBodyRate applies,
	// and the longest it may stall after a burst. Default 10 seconds.
	BodyGrace time.Duration
	// ReadHeaderTimeout bounds the TLS handshake and the request headers.
	// Default 10 seconds. Used by NewHTTPServer.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the whole body, however fast it arrives. Default
	// 2 minutes.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing an answer once the handler has returned.
	// Default 1 minute.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that carries no request
	// for this long. Default 1 minute. Used by NewHTTPServer. Connections
	// are also closed after every refusal made before authentication.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the request headers. Default 64 KiB. Used by
	// NewHTTPServer.
	MaxHeaderBytes int
	// RetryAfter is what a 503 answer asks the client to wait. Default 2
	// seconds.
	RetryAfter time.Duration
	// MaxSkew is how far an envelope's timestamp may be from this host's
	// clock. Default 5 minutes.
	MaxSkew time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock of envelope timestamps; default time.Now. (The
	// timeouts above run on the real clock.)
	Now func() time.Time
	// Observe, when set, is told of every request to a registered path
	// as it is answered, just before the answer is written: err is nil,
	// or the refusal or failure (for counters; keep it quick). Refusals before authentication wrap
	// gapsync.ErrTooLarge, ErrBusy, ErrTooSlow, ErrBadEnvelope,
	// ErrTampered, ErrUnknownKey, ErrStale or ErrReplayed, so
	// gapsync.CodeOf gives the cause.
	Observe func(path string, err error)
}

func (o *ServerOptions) withDefaults() ServerOptions {
	var r ServerOptions
	if o != nil {
		r = *o
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if r.MaxBody <= 0 {
		r.MaxBody = DefaultMaxBody
	}
	if r.MaxConcurrent <= 0 {
		r.MaxConcurrent = DefaultMaxConcurrent
	}
	if r.MaxInFlightBytes <= 0 {
		r.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	// One body of the largest size must always fit.
	r.MaxInFlightBytes = max(r.MaxInFlightBytes, r.MaxBody)
	if r.MinBodyRate == 0 {
		r.MinBodyRate = DefaultMinBodyRate
	}
	def(&r.BodyGrace, DefaultBodyGrace)
	def(&r.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&r.ReadTimeout, DefaultReadTimeout)
	def(&r.WriteTimeout, DefaultWriteTimeout)
	def(&r.IdleTimeout, DefaultIdleTimeout)
	def(&r.RetryAfter, DefaultRetryAfter)
	def(&r.MaxSkew, 5*time.Minute)
	if r.MaxHeaderBytes <= 0 {
		r.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// NewHTTPServer returns an http.Server for addr that serves h with the
// connection timeouts of o (nil: the defaults): ReadHeaderTimeout,
// IdleTimeout, MaxHeaderBytes, and ReadTimeout and WriteTimeout as
// backstops for what a Server does not read or write itself. Pass the same
// options as to NewServer (or syncer.GatewayOptions.Server).
func NewHTTPServer(addr string, h http.Handler, o *ServerOptions) *http.Server {
	opts := o.withDefaults()
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadHeaderTimeout + opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
}

// Server is the gateway side of the protocol: an http.Handler that opens
// sealed requests, refuses bad ones, dispatches the rest, and seals the
// answers.
type Server struct {
	keys   *crypto.Keyring
	guard  ReplayGuard
	opts   ServerOptions
	routes map[string]HandlerFunc

	slots    chan struct{} // one per request being served
	mu       sync.Mutex
	inFlight int64 // announced bytes of the bodies being served
}

// NewServer returns a Server. keys and guard are required.
func NewServer(keys *crypto.Keyring, guard ReplayGuard, o *ServerOptions) (*Server, error) {
	if keys == nil || guard == nil {
		return nil, errors.New("transport: NewServer needs a keyring and a replay guard")
	}
	s := &Server{keys: keys, guard: guard, routes: map[string]HandlerFunc{}, opts: o.withDefaults()}
	s.slots = make(chan struct{}, s.opts.MaxConcurrent)
	return s, nil
}

// Handle registers fn for POST requests to path.
func (s *Server) Handle(path string, fn HandlerFunc) { s.routes[path] = fn }

// Handles reports whether path is one of the paths registered with Handle.
func (s *Server) Handles(path string) bool { _, ok := s.routes[path]; return ok }

// admit takes a slot and room for a body of the announced size, or says
// no at once.
func (s *Server) admit(announced int64) (release func(), ok bool) {
	select {
	case s.slots <- struct{}{}:
	default:
		return nil, false
	}
	n := announced
	if n < 0 {
		n = s.opts.MaxBody
	}
	if n <= smallBody {
		n = 0
	}
	s.mu.Lock()
	if s.inFlight+n > s.opts.MaxInFlightBytes {
		s.mu.Unlock()
		<-s.slots
		return nil, false
	}
	s.inFlight += n
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.inFlight -= n
		s.mu.Unlock()
		<-s.slots
	}, true
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	fn, ok := s.routes[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	log := s.opts.Logger.With("path", r.URL.Path, "remote", r.RemoteAddr)
	// observe tells Observe the outcome just before the answer is
	// written, so a counter has moved by the time a client reads it.
	observe := func(err error) {
		if s.opts.Observe != nil {
			s.opts.Observe(r.URL.Path, err)
		}
	}
	// refuse answers in clear and closes the connection: the caller has
	// not shown a key, so it gets a code and a short reason, and no
	// connection to keep.
	refuse := func(err error) {
		log.Warn("refused request", "err", err)
		observe(err)
		s.plainError(w, err)
	}
	if r.ContentLength > s.opts.MaxBody {
		refuse(fmt.Errorf("%w: request body of %d bytes, over the %d-byte cap", gapsync.ErrTooLarge, r.ContentLength, s.opts.MaxBody))
		return
	}
	release, ok := s.admit(r.ContentLength)
	if !ok {
		refuse(fmt.Errorf("%w: %d requests or %d body bytes in flight; retry later", gapsync.ErrBusy, s.opts.MaxConcurrent, s.opts.MaxInFlightBytes))
		return
	}
	defer release()
	body, err := s.readBody(w, r, start)
	if err != nil {
		refuse(err)
		return
	}
	now := s.opts.Now()
	h, plain, err := s.keys.Open(nil, body, &crypto.OpenOptions{
		Now: now, MaxSkew: s.opts.MaxSkew, Endpoint: "POST " + r.URL.Path, Sender: ZoneInternet,
	})
	putBody(body) // the plaintext is a copy of its own
	body = nil
	if err != nil {
		refuse(err)
		return
	}
	log = log.With("msg", h.MessageID)
	var out []byte
	// The envelope's own sealed time, not this host's clock: ids are
	// purged and refused by it (a clock step here changes nothing).
	if err = s.guard.Remember(r.Context(), h.MessageID, h.Time); errors.Is(err, gapsync.ErrReplayed) || errors.Is(err, gapsync.ErrStale) {
		refuse(err)
		return
	} else if err != nil {
		// The caller is authenticated: a failure of the guard itself (a
		// database error) is an answer like any other, sealed.
		err = fmt.Errorf("replay guard: %w", err)
	} else {
		out, err = fn(r.Context(), plain)
	}
	status, result := http.StatusOK, err
	if err != nil {
		log.Warn("request failed", "err", err)
		status = statusOf(err)
		out, _ = json.Marshal(errorBody{Code: gapsync.CodeOf(err), Error: clip(err.Error(), maxSealedError)})
	}
	// Answer under the request's key, so that a peer that does not hold
	// a newer active key yet (mid-rotation) can still open the answer.
	env, _, err := s.keys.SealWith(nil, h.KeyID, crypto.Header{
		Sender: ZoneExternal, Endpoint: "RESP " + r.URL.Path, ReplyTo: h.MessageID,
	}, out)
	if err != nil {
		log.Error("seal response", "err", err)
		observe(err)
		s.send(w, http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"), false)
		return
	}
	observe(result)
	s.send(w, status, "application/octet-stream", env, false)
}

// send writes one answer within WriteTimeout, whatever the http.Server's
// own deadlines, and then lifts the deadline so that it does not outlive
// the answer on a keep-alive connection.
func (s *Server) send(w http.ResponseWriter, status int, ctype string, body []byte, closeConn bool) {
	rc := http.NewResponseController(w)
	deadline := rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout)) == nil
	hdr := w.Header()
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if closeConn {
		hdr.Set("Connection", "close")
	}
	w.WriteHeader(status)
	w.Write(body)
	if deadline {
		rc.Flush()
		rc.SetWriteDeadline(time.Time{})
	}
}

// Longest error text an answer carries: in clear before authentication,
// sealed after.
const (
	maxPlainError  = 256
	maxSealedError = 4 << 10
)

type errorBody struct {
	Code  gapsync.Code `json:"code"`
	Error string       `json:"error"`
}

func (s *Server) plainError(w http.ResponseWriter, err error) {
	b, _ := json.Marshal(errorBody{Code: gapsync.CodeOf(err), Error: clip(err.Error(), maxPlainError)})
	if errors.Is(err, gapsync.ErrBusy) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.opts.RetryAfter.Seconds()))))
	}
	s.send(w, statusOf(err), "application/json", b, true)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, gapsync.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, gapsync.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, gapsync.ErrTooSlow):
		return http.StatusRequestTimeout
	case errors.Is(err, gapsync.ErrBadEnvelope), errors.Is(err, gapsync.ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, gapsync.ErrTampered), errors.Is(err, gapsync.ErrUnknownKey), errors.Is(err, gapsync.ErrStale):
		return http.StatusUnauthorized
	case errors.Is(err, gapsync.ErrReplayed), errors.Is(err, gapsync.ErrLeaseHeld):
		return http.StatusConflict
	case errors.Is(err, gapsync.ErrUnknownTable), errors.Is(err, gapsync.ErrUnknownColumn), errors.Is(err, gapsync.ErrBadIdentifier),
		errors.Is(err, gapsync.ErrRejected), errors.Is(err, gapsync.ErrDigestMismatch):
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// firstPiece is the buffer a body starts in; it doubles as bytes arrive.
const firstPiece = 32 << 10

// readBody reads a request body of at most MaxBody bytes. The buffer
// grows as bytes arrive (doubling, never past the announced length), so
// memory follows what the caller has actually sent, not what it claims;
// a body over firstPiece starts in a buffer an earlier one left (bodies).
// The body must arrive within ReadTimeout of start and, after BodyGrace,
// at MinBodyRate or faster: each byte received extends the read deadline
// by 1/MinBodyRate seconds, up to BodyGrace ahead.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, start time.Time) ([]byte, error) {
	rc := http.NewResponseController(w)
	hard := start.Add(s.opts.ReadTimeout)
	credit := start.Add(s.opts.BodyGrace)
	rate := s.opts.MinBodyRate
	deadlines := true
	setDeadline := func(t time.Time) {
		if deadlines && rc.SetReadDeadline(t) != nil {
			deadlines = false // not supported: the http.Server's ReadTimeout is all there is
		}
	}
	limit := s.opts.MaxBody + 1 // one byte past the cap shows a body without a length is over it
	if r.ContentLength >= 0 {
		limit = r.ContentLength + 1 // room for the read that sees EOF
	}
	buf := getBody(limit)
	for {
		room := min(int64(cap(buf)), limit)
		if int64(len(buf)) == room {
			nb := make([]byte, len(buf), min(2*int64(cap(buf)), limit))
			copy(nb, buf)
			buf, room = nb, int64(cap(nb))
		}
		d := hard
		if rate > 0 && credit.Before(d) {
			d = credit
		}
		setDeadline(d)
		n, err := r.Body.Read(buf[len(buf):room])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > s.opts.MaxBody {
			return nil, fmt.Errorf("%w: request body over the %d-byte cap", gapsync.ErrTooLarge, s.opts.MaxBody)
		}
		if n > 0 && rate > 0 {
			now := time.Now()
			credit = credit.Add(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
			if lim := now.Add(s.opts.BodyGrace); credit.After(lim) {
				credit = lim
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			// Lift the deadline: net/http now watches the connection for
			// the client going away, and a deadline would cancel the
			// handler's context.
			setDeadline(time.Time{})
			return buf, nil
		case isTimeout(err):
			if !time.Now().Before(hard) {
				return nil, fmt.Errorf("%w: request body not complete within %v (%d bytes received)", gapsync.ErrTooSlow, s.opts.ReadTimeout, len(buf))
			}
			return nil, fmt.Errorf("%w: request body slower than %d bytes/s (%d bytes received in %v)", gapsync.ErrTooSlow, rate, len(buf), time.Since(start).Round(time.Millisecond))
		default:
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, fmt.Errorf("%w: request body over %d bytes", gapsync.ErrTooLarge, mbe.Limit)
			}
			return nil, fmt.Errorf("%w: request body cut short after %d bytes: %v", gapsync.ErrBadEnvelope, len(buf), err)
		}
	}
}

// bodies holds request body buffers between requests (a *[]byte each):
// a page of a first load is a few megabytes, and a new buffer a request,
// doubled as it fills, costs the allocations, the clearing and the
// copies.
var bodies sync.Pool

// maxPooledBody is the largest body buffer bodies keeps.
const maxPooledBody = 64 << 20

// getBody returns an empty buffer to read a body of up to limit bytes
// into (readBody reads no further than limit whatever its capacity): for
// more than firstPiece a pooled one where there is one, else a new one
// of firstPiece at most.
func getBody(limit int64) []byte {
	if limit > firstPiece {
		if p, _ := bodies.Get().(*[]byte); p != nil {
			return (*p)[:0]
		}
	}
	return make([]byte, 0, min(limit, firstPiece))
}

// putBody gives buf back once nothing refers to it.
func putBody(buf []byte) {
	if c := cap(buf); c >= firstPiece && c <= maxPooledBody {
		buf = buf[:0]
		bodies.Put(&buf)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// clip returns s cut to at most n bytes on a rune boundary, with invalid
// UTF-8 and control characters replaced, and says how much was cut: error
// text from the other side goes into logs and the sync log.
func clip(s string, n int) string {
	total, cut := len(s), len(s) > n
	if cut {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\t' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if cut {
		s += fmt.Sprintf("… (%d bytes in all)", total)
	}
	return s
}
