package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

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

// ServerOptions tune a Server. Nil gives the defaults.
type ServerOptions struct {
	// MaxBody caps a request body in bytes. Default 64 MiB.
	MaxBody int64
	// MaxSkew is how far an envelope's timestamp may be from this host's
	// clock. Default 5 minutes.
	MaxSkew time.Duration
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Observe, when set, is told of every request to a registered path
	// once it is answered: err is nil, or the refusal or failure (for
	// counters; keep it quick).
	Observe func(path string, err error)
}

// Server is the gateway side of the protocol: an http.Handler that opens
// sealed requests, refuses bad ones, dispatches the rest, and seals the
// answers.
type Server struct {
	keys   *crypto.Keyring
	guard  ReplayGuard
	opts   ServerOptions
	routes map[string]HandlerFunc
}

// NewServer returns a Server. keys and guard are required.
func NewServer(keys *crypto.Keyring, guard ReplayGuard, o *ServerOptions) (*Server, error) {
	if keys == nil || guard == nil {
		return nil, errors.New("transport: NewServer needs a keyring and a replay guard")
	}
	s := &Server{keys: keys, guard: guard, routes: map[string]HandlerFunc{}}
	if o != nil {
		s.opts = *o
	}
	if s.opts.MaxBody <= 0 {
		s.opts.MaxBody = 64 << 20
	}
	if s.opts.MaxSkew <= 0 {
		s.opts.MaxSkew = 5 * time.Minute
	}
	if s.opts.Logger == nil {
		s.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	return s, nil
}

// Handle registers fn for POST requests to path.
func (s *Server) Handle(path string, fn HandlerFunc) { s.routes[path] = fn }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	var result error
	if s.opts.Observe != nil {
		defer func() { s.opts.Observe(r.URL.Path, result) }()
	}
	body, err := readBody(w, r, s.opts.MaxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = fmt.Errorf("%w: request body over %d bytes", gapsync.ErrTooLarge, s.opts.MaxBody)
		}
		log.Warn("refused request", "err", err)
		result = err
		plainError(w, err)
		return
	}
	now := s.opts.Now()
	h, plain, err := s.keys.Open(nil, body, &crypto.OpenOptions{
		Now: now, MaxSkew: s.opts.MaxSkew, Endpoint: "POST " + r.URL.Path, Sender: ZoneInternet,
	})
	if err == nil {
		// The envelope's own sealed time, not this host's clock: ids are
		// purged and refused by it (a clock step here changes nothing).
		err = s.guard.Remember(r.Context(), h.MessageID, h.Time)
	}
	if err != nil {
		log.Warn("refused request", "err", err)
		result = err
		plainError(w, err)
		return
	}
	log = log.With("msg", h.MessageID)
	out, err := fn(r.Context(), plain)
	status := http.StatusOK
	if err != nil {
		log.Warn("request failed", "err", err)
		result = err
		status = statusOf(err)
		out, _ = json.Marshal(errorBody{Code: gapsync.CodeOf(err), Error: err.Error()})
	}
	// Answer under the request's key, so that a peer that does not hold
	// a newer active key yet (mid-rotation) can still open the answer.
	env, _, err := s.keys.SealWith(nil, h.KeyID, crypto.Header{
		Sender: ZoneExternal, Endpoint: "RESP " + r.URL.Path, ReplyTo: h.MessageID,
	}, out)
	if err != nil {
		log.Error("seal response", "err", err)
		result = err
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(status)
	w.Write(env)
}

type errorBody struct {
	Code  gapsync.Code `json:"code"`
	Error string       `json:"error"`
}

func plainError(w http.ResponseWriter, err error) {
	b, _ := json.Marshal(errorBody{Code: gapsync.CodeOf(err), Error: err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(statusOf(err))
	w.Write(b)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, gapsync.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, gapsync.ErrBadEnvelope), errors.Is(err, gapsync.ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, gapsync.ErrTampered), errors.Is(err, gapsync.ErrUnknownKey), errors.Is(err, gapsync.ErrStale):
		return http.StatusUnauthorized
	case errors.Is(err, gapsync.ErrReplayed), errors.Is(err, gapsync.ErrLeaseHeld):
		return http.StatusConflict
	case errors.Is(err, gapsync.ErrUnknownTable), errors.Is(err, gapsync.ErrUnknownColumn), errors.Is(err, gapsync.ErrBadIdentifier):
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// readBody reads a request body of at most max bytes into one buffer of
// the announced length, instead of growing one by doubling.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	if n := r.ContentLength; n > 0 && n <= max {
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(body)
}
