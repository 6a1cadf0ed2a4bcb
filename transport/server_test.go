package transport_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/transport"
)

// memGuard is an in-memory replay guard; err, when set, is what Remember
// fails with (a database that is down).
type memGuard struct {
	mu   sync.Mutex
	seen map[string]bool
	err  error
}

func (g *memGuard) Remember(_ context.Context, id string, _ time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	if g.seen[id] {
		return fmt.Errorf("%w: %s", gapsync.ErrReplayed, id)
	}
	g.seen[id] = true
	return nil
}

// results counts what Observe was told, by wire code ("ok" for nil).
type results struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *results) observe(_ string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	code := "ok"
	if err != nil {
		code = string(gapsync.CodeOf(err))
	}
	r.n[code]++
}

// get returns the count of code once it has reached want, or after a
// second: Observe runs once the answer is written, so a little after the
// client has read it.
func (r *results) get(code string, want int) int {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		n := r.n[code]
		r.mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			return n
		}
	}
}

type fixture struct {
	srv   *httptest.Server
	keys  *crypto.Keyring
	guard *memGuard
	res   *results
}

func echo(_ context.Context, body []byte) ([]byte, error) { return body, nil }

// start serves fn at PathApply behind a Server with options o.
func start(t *testing.T, o transport.ServerOptions, fn transport.HandlerFunc) *fixture {
	t.Helper()
	key, err := crypto.GenerateKey("t1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{keys: keys, guard: &memGuard{seen: map[string]bool{}}, res: &results{n: map[string]int{}}}
	o.Observe = f.res.observe
	s, err := transport.NewServer(keys, f.guard, &o)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle(transport.PathApply, fn)
	f.srv = httptest.NewUnstartedServer(s)
	f.srv.Config = transport.NewHTTPServer("", s, &o)
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) client(t *testing.T, o *transport.ClientOptions) *transport.Client {
	t.Helper()
	if o == nil {
		o = &transport.ClientOptions{}
	}
	if o.RetryMax == 0 {
		o.RetryMax = -1
	}
	c, err := transport.NewClient(f.srv.URL, f.keys, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawPost opens a connection and sends the headers of a POST to PathApply
// that announces a body of announced bytes, and then the first bytes of it.
func (f *fixture) rawPost(t *testing.T, announced int64, first []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", transport.PathApply, announced)
	if len(first) > 0 {
		if _, err := conn.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return conn
}

// answer reads one response from conn within d.
func answer(t *testing.T, conn net.Conn, d time.Duration) (*http.Response, []byte, *bufio.Reader) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", d, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, br
}

// closedWithin says whether the server closes conn within d.
func closedWithin(conn net.Conn, br *bufio.Reader, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// A body that announces 60 MiB and sends 1 KiB costs the gateway about
// what was sent, not what was announced, and is cut off once it stalls.
func TestAnnouncedLengthIsNotAllocated(t *testing.T) {
	is := is.New(t)
	f := start(t, transport.ServerOptions{MaxBody: 64 << 20, MaxInFlightBytes: 1 << 30, BodyGrace: 300 * time.Millisecond}, echo)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var conns []net.Conn
	for i := 0; i < 4; i++ {
		conns = append(conns, f.rawPost(t, 60<<20, make([]byte, 1024)))
	}
	for _, c := range conns {
		resp, body, br := answer(t, c, 10*time.Second)
		is.Equal(resp.StatusCode, http.StatusRequestTimeout)
		is.True(strings.Contains(string(body), `"too_slow"`))
		is.True(closedWithin(c, br, 2*time.Second))
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("4 bodies announcing 60 MiB each allocated %d KiB in all", alloc>>10)
	is.True(alloc < 16<<20) // announced: 240 MiB
	is.Equal(f.res.get("too_slow", 4), 4)
}

// A length over the cap is refused before a byte of the body is read, and
// the connection is closed.
func TestOverCapRefusedBeforeReading(t *testing.T) {
	is := is.New(t)
	f := start(t, transport.ServerOptions{MaxBody: 1 << 20}, echo)
	c := f.rawPost(t, 1<<20+1, nil)
	resp, body, br := answer(t, c, 3*time.Second)
	is.Equal(resp.StatusCode, http.StatusRequestEntityTooLarge)
	is.True(strings.Contains(string(body), `"too_large"`))
	is.True(resp.Close) // Connection: close
	is.True(closedWithin(c, br, 2*time.Second))

	// Without a length, the body is read up to the cap and no further.
	r, err := http.Post(f.srv.URL+transport.PathApply, "application/octet-stream", io.LimitReader(zeros{}, 2<<20))
	is.NoErr(err)
	r.Body.Close()
	is.Equal(r.StatusCode, http.StatusRequestEntityTooLarge)
	is.Equal(f.res.get("too_large", 2), 2)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A body that sends a burst and then trickles is cut off once its banked
// time runs out, and one that keeps above the rate but never ends is cut
// off at ReadTimeout.
func TestSlowBodiesAreCutOff(t *testing.T) {
	is := is.New(t)
	trickle := func(c net.Conn, stop <-chan struct{}) {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if _, err := c.Write([]byte{0}); err != nil {
					return
				}
			}
		}
	}
	f := start(t, transport.ServerOptions{BodyGrace: 500 * time.Millisecond, MinBodyRate: 64 << 10}, echo)
	began := time.Now()
	c := f.rawPost(t, 1<<20, make([]byte, 512<<10))
	stop := make(chan struct{})
	defer close(stop)
	go trickle(c, stop)
	resp, _, br := answer(t, c, 10*time.Second)
	took := time.Since(began)
	t.Logf("burst-then-trickle body cut off after %v", took)
	is.Equal(resp.StatusCode, http.StatusRequestTimeout)
	is.True(took < 4*time.Second) // 500 ms of grace after the burst
	is.True(closedWithin(c, br, 2*time.Second))

	// With the rate check off, ReadTimeout still ends it.
	f = start(t, transport.ServerOptions{MinBodyRate: -1, ReadTimeout: 700 * time.Millisecond}, echo)
	began = time.Now()
	c = f.rawPost(t, 1<<20, []byte{1})
	go trickle(c, stop)
	resp, body, _ := answer(t, c, 10*time.Second)
	took = time.Since(began)
	is.Equal(resp.StatusCode, http.StatusRequestTimeout)
	is.True(strings.Contains(string(body), "within"))
	is.True(took >= 700*time.Millisecond && took < 4*time.Second)
	is.Equal(f.res.get("too_slow", 1), 1)
}

// Past MaxConcurrent a request gets 503 with Retry-After before its body
// is read; once a slot is free, requests are served again.
func TestBusyPastConcurrencyLimit(t *testing.T) {
	is := is.New(t)
	entered, release := make(chan struct{}, 2), make(chan struct{})
	f := start(t, transport.ServerOptions{MaxConcurrent: 2, RetryAfter: 3 * time.Second}, func(ctx context.Context, body []byte) ([]byte, error) {
		if string(body) == "hold" {
			entered <- struct{}{}
			<-release
		}
		return body, nil
	})
	c := f.client(t, nil)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Call(context.Background(), transport.PathApply, []byte("hold"))
			if err != nil {
				t.Error(err)
			}
		}()
	}
	<-entered
	<-entered
	conn := f.rawPost(t, 100, make([]byte, 100))
	resp, body, br := answer(t, conn, 3*time.Second)
	is.Equal(resp.StatusCode, http.StatusServiceUnavailable)
	is.Equal(resp.Header.Get("Retry-After"), "3")
	is.True(strings.Contains(string(body), `"busy"`))
	is.True(closedWithin(conn, br, 2*time.Second))
	_, err := c.Call(context.Background(), transport.PathApply, []byte("x"))
	is.True(errors.Is(err, gapsync.ErrBusy))
	close(release)
	wg.Wait()
	out, err := c.Call(context.Background(), transport.PathApply, []byte("again"))
	is.NoErr(err)
	is.Equal(string(out), "again")
	is.Equal(f.res.get("busy", 2), 2)
	is.Equal(f.res.get("ok", 3), 3)
}

// Large bodies that fill MaxInFlightBytes turn other large bodies away,
// while small requests still pass.
func TestInFlightBytesBudget(t *testing.T) {
	is := is.New(t)
	f := start(t, transport.ServerOptions{MaxBody: 1 << 20, MaxInFlightBytes: 2 << 20, BodyGrace: 30 * time.Second}, echo)
	a := f.rawPost(t, 1<<20, []byte{1})
	b := f.rawPost(t, 1<<20, []byte{1})
	time.Sleep(200 * time.Millisecond) // both admitted and reading
	third := f.rawPost(t, 1<<20, []byte{1})
	resp, _, _ := answer(t, third, 3*time.Second)
	is.Equal(resp.StatusCode, http.StatusServiceUnavailable)
	out, err := f.client(t, nil).Call(context.Background(), transport.PathApply, []byte("small"))
	is.NoErr(err)
	is.Equal(string(out), "small")
	a.Close()
	b.Close()
}

// After a refusal in clear the server closes the connection instead of
// keeping it for another request.
func TestRefusalClosesKeepAlive(t *testing.T) {
	is := is.New(t)
	f := start(t, transport.ServerOptions{}, echo)
	c := f.rawPost(t, 100, bytes.Repeat([]byte("x"), 100))
	resp, body, br := answer(t, c, 3*time.Second)
	is.Equal(resp.StatusCode, http.StatusBadRequest)
	is.True(strings.Contains(string(body), `"bad_envelope"`))
	is.True(resp.Close) // Connection: close
	is.True(closedWithin(c, br, 2*time.Second))
}

// An idle keep-alive connection is closed after IdleTimeout.
func TestIdleConnectionClosed(t *testing.T) {
	is := is.New(t)
	f := start(t, transport.ServerOptions{IdleTimeout: 300 * time.Millisecond}, echo)
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	is.NoErr(err)
	defer conn.Close()
	fmt.Fprintf(conn, "GET /nothing HTTP/1.1\r\nHost: gw\r\n\r\n")
	resp, _, br := answer(t, conn, 3*time.Second)
	is.Equal(resp.StatusCode, http.StatusNotFound)
	is.True(closedWithin(conn, br, 3*time.Second))
}

// WriteTimeout bounds each answer but does not linger on the connection:
// a keep-alive connection reused after a pause longer than it still works.
func TestWriteDeadlineDoesNotLinger(t *testing.T) {
	is := is.New(t)
	o := transport.ServerOptions{WriteTimeout: 200 * time.Millisecond}
	f := start(t, o, echo)
	// A Server mounted on an http.Server without timeouts of its own.
	s, err := transport.NewServer(f.keys, f.guard, &o)
	is.NoErr(err)
	s.Handle(transport.PathApply, echo)
	bare := httptest.NewServer(s)
	defer bare.Close()
	for _, url := range []string{f.srv.URL, bare.URL} {
		c, err := transport.NewClient(url, f.keys, &transport.ClientOptions{RetryMax: -1})
		is.NoErr(err)
		for i := 0; i < 2; i++ {
			out, err := c.Call(context.Background(), transport.PathApply, []byte("hi"))
			is.NoErr(err)
			is.Equal(string(out), "hi")
			time.Sleep(400 * time.Millisecond)
		}
		c.Close()
	}
}

// A failure of the replay guard comes after authentication: it is sealed,
// so the database's error text does not travel in clear.
func TestReplayGuardFailureIsSealed(t *testing.T) {
	is := is.New(t)
	f := start(t, transport.ServerOptions{}, echo)
	f.guard.err = errors.New("dial tcp 10.9.8.7:3306: access denied for user 'gw'")
	env, _, err := f.keys.Seal(nil, crypto.Header{Sender: transport.ZoneInternet, Endpoint: "POST " + transport.PathApply}, []byte("x"))
	is.NoErr(err)
	resp, err := http.Post(f.srv.URL+transport.PathApply, "application/octet-stream", bytes.NewReader(env))
	is.NoErr(err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	is.Equal(resp.StatusCode, http.StatusInternalServerError)
	is.True(!bytes.Contains(raw, []byte("10.9.8.7")))
	is.True(!bytes.Contains(raw, []byte("internal")))

	_, err = f.client(t, nil).Call(context.Background(), transport.PathApply, []byte("x"))
	is.True(errors.Is(err, gapsync.ErrRemote))
	is.True(strings.Contains(err.Error(), "10.9.8.7")) // the coordinator, holding the key, can read it
}

// Sealed errors keep their wire codes, lease and table sentinels too.
func TestSealedErrorsKeepCodes(t *testing.T) {
	is := is.New(t)
	var next error
	f := start(t, transport.ServerOptions{}, func(context.Context, []byte) ([]byte, error) { return nil, next })
	c := f.client(t, nil)
	for _, e := range []error{gapsync.ErrUnknownTable, gapsync.ErrLeaseHeld, gapsync.ErrMalformed, gapsync.ErrTooLarge, gapsync.ErrBadPath} {
		next = fmt.Errorf("%w: table x", e)
		_, err := c.Call(context.Background(), transport.PathApply, []byte("x"))
		is.True(errors.Is(err, e))
	}
	next = fmt.Errorf("%w: %s", gapsync.ErrUnknownTable, strings.Repeat("long ", 10_000))
	_, err := c.Call(context.Background(), transport.PathApply, []byte("x"))
	is.True(errors.Is(err, gapsync.ErrUnknownTable))
	is.True(len(err.Error()) < 5<<10)
}

// The client refuses to send a request larger than the gateway accepts,
// with an error that says which setting to change.
func TestClientRefusesOversizedRequest(t *testing.T) {
	is := is.New(t)
	f := start(t, transport.ServerOptions{}, echo)
	c := f.client(t, &transport.ClientOptions{MaxRequest: 1024})
	_, err := c.Call(context.Background(), transport.PathApply, make([]byte, 2048))
	is.True(errors.Is(err, gapsync.ErrTooLarge))
	is.True(strings.Contains(err.Error(), "MaxRequest"))
	is.Equal(f.res.get("ok", 1)+f.res.get("too_large", 1), 0) // nothing was sent
	_, err = c.Call(context.Background(), transport.PathApply, make([]byte, 512))
	is.NoErr(err)
}

// fakeGateway answers every request with status and body, in clear, as an
// on-path attacker without a key could.
func fakeGateway(t *testing.T, status int, body []byte) *transport.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	key, _ := crypto.GenerateKey("t1")
	keys, _ := crypto.NewKeyring(key)
	c, err := transport.NewClient(srv.URL, keys, &transport.ClientOptions{RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// An answer in clear cannot carry a lease or table sentinel: only the
// gateway, after authenticating the request, can say those, and it seals
// them.
func TestUnsealedSentinelsNotBelieved(t *testing.T) {
	is := is.New(t)
	for _, tc := range []struct {
		status int
		code   string
		bad    error
	}{
		{http.StatusConflict, "lease_held", gapsync.ErrLeaseHeld},
		{http.StatusUnprocessableEntity, "unknown_table", gapsync.ErrUnknownTable},
		{http.StatusBadRequest, "bad_path", gapsync.ErrBadPath},
		{http.StatusUnauthorized, "checksum_mismatch", gapsync.ErrChecksumMismatch},
		{http.StatusConflict, "tampered", gapsync.ErrTampered}, // an envelope code with the wrong status
	} {
		c := fakeGateway(t, tc.status, []byte(`{"code":"`+tc.code+`","error":"held by mallory"}`))
		_, err := c.Call(context.Background(), transport.PathApply, []byte("x"))
		is.True(err != nil)
		is.True(!errors.Is(err, tc.bad))
		is.True(errors.Is(err, gapsync.ErrRemote))
		is.True(strings.Contains(err.Error(), "not believed"))
	}
	// Envelope-level refusals in clear are what they say.
	c := fakeGateway(t, http.StatusUnauthorized, []byte(`{"code":"stale","error":"clock"}`))
	_, err := c.Call(context.Background(), transport.PathApply, []byte("x"))
	is.True(errors.Is(err, gapsync.ErrStale))
}

// The text of an answer in clear is cut and cleaned before it reaches a
// log or the sync log.
func TestUnsealedTextTruncated(t *testing.T) {
	is := is.New(t)
	long := strings.Repeat("A", 40<<10)
	for _, body := range []string{
		`{"code":"tampered","error":"evil\n` + long + `"}`,
		`{"code":"lease_held","error":"` + long + `"}`,
		"<html>\x1b[31m" + long,
		"<html>" + strings.Repeat(long, 30), // 1.2 MiB
	} {
		status := http.StatusUnauthorized
		c := fakeGateway(t, status, []byte(body))
		_, err := c.Call(context.Background(), transport.PathApply, []byte("x"))
		is.True(err != nil)
		msg := err.Error()
		t.Logf("%d bytes: %.120s…", len(msg), msg)
		is.True(len(msg) < 1024)
		is.True(!strings.ContainsAny(msg, "\n\x1b"))
	}
}

// Retries are logged where an operator sees them by default: a warning
// for each 5xx answer and for each retry, none at debug only.
func TestClientLogsRetriesAtWarn(t *testing.T) {
	is := is.New(t)
	var calls sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		calls.Lock()
		n++
		calls.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	key, _ := crypto.GenerateKey("t1")
	keys, _ := crypto.NewKeyring(key)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := transport.NewClient(srv.URL, keys, &transport.ClientOptions{Logger: log, RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	is.NoErr(err)
	defer c.Close()
	_, err = c.Call(context.Background(), transport.PathApply, []byte("x"))
	is.True(err != nil)
	calls.Lock()
	is.Equal(n, 3)
	calls.Unlock()
	out := logs.String()
	t.Log(out)
	is.Equal(strings.Count(out, `level=WARN msg="retrying a request to the gateway" path=/v1/apply`), 2)
	is.Equal(strings.Count(out, `level=WARN msg="the gateway answered with an error" path=/v1/apply status=503`), 3)
}
