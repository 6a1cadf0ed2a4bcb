package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/syncer"
)

// Health answers the two questions an orchestrator asks of a process:
// /healthz, is it alive (always 200 while it serves), and /readyz, can it
// do its work now (200 when every check passes, else 503 naming the checks
// that failed). Checks run when asked, each bounded by Timeout. It is an
// http.Handler for those two paths; mount it beside the gateway or the
// metrics handler.
type Health struct {
	// Timeout bounds each check. Default 2 s.
	Timeout time.Duration
	// Terse leaves the errors out of /readyz (only "fail NAME"), for an
	// address that callers outside the zone can reach: a database error
	// names hosts and addresses an attacker should not learn.
	Terse  bool
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// Check adds a readiness check under name (replacing one of that name).
func (h *Health) Check(name string, fn func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.checks == nil {
		h.checks = map[string]func(context.Context) error{}
	}
	h.checks[name] = fn
}

// Mount registers /healthz and /readyz on mux.
func (h *Health) Mount(mux interface {
	Handle(string, http.Handler)
}) {
	mux.Handle("GET /healthz", h)
	mux.Handle("GET /readyz", h)
}

// ServeHTTP answers /healthz and /readyz; any other path is 404.
func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case "/healthz":
		fmt.Fprintln(w, "ok")
	case "/readyz":
		failed, report := h.Ready(r.Context())
		if failed {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, report)
	default:
		http.NotFound(w, r)
	}
}

// Ready runs every check and returns whether any failed and a report, a
// line per check ("ok NAME" or "fail NAME: error"), sorted by name.
func (h *Health) Ready(ctx context.Context) (failed bool, report string) {
	h.mu.Lock()
	names := make([]string, 0, len(h.checks))
	for n := range h.checks {
		names = append(names, n)
	}
	checks := h.checks
	h.mu.Unlock()
	sort.Strings(names)
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	lines := make([]string, len(names))
	var wg sync.WaitGroup
	var bad atomic.Bool
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := checks[n](cctx); err != nil {
				bad.Store(true)
				lines[i] = "fail " + n
				if !h.Terse {
					lines[i] += ": " + strings.ReplaceAll(err.Error(), "\n", " ")
				}
			} else {
				lines[i] = "ok " + n
			}
		}()
	}
	wg.Wait()
	if len(lines) == 0 {
		return false, "ok\n"
	}
	return bad.Load(), strings.Join(lines, "\n") + "\n"
}

// CycleClock passes everything to the Recorder it wraps and remembers when
// the role last finished a cycle without error, for a readiness check that
// the role is still making progress.
type CycleClock struct {
	syncer.Recorder
	last atomic.Int64 // unix nanoseconds of the last good cycle
	born time.Time
}

// NewCycleClock wraps r (which must not be nil).
func NewCycleClock(r syncer.Recorder) *CycleClock {
	return &CycleClock{Recorder: r, born: time.Now()}
}

// Cycle records the cycle and, when it succeeded, its time.
func (c *CycleClock) Cycle(role string, took time.Duration, err error) {
	if err == nil {
		c.last.Store(time.Now().UnixNano())
	}
	c.Recorder.Cycle(role, took, err)
}

// TableSynced and TableParked pass per-table health on to the wrapped
// Recorder when it keeps it (syncer.TableRecorder; *metrics.Metrics does).
func (c *CycleClock) TableSynced(table, direction string) {
	if tr, ok := c.Recorder.(syncer.TableRecorder); ok {
		tr.TableSynced(table, direction)
	}
}

func (c *CycleClock) TableParked(table, direction string, parked bool) {
	if tr, ok := c.Recorder.(syncer.TableRecorder); ok {
		tr.TableParked(table, direction, parked)
	}
}

// MissingColumn passes schema drift gauges on to the wrapped Recorder
// when it keeps them (syncer.DriftRecorder).
func (c *CycleClock) MissingColumn(table, direction, column string, missing bool) {
	if dr, ok := c.Recorder.(syncer.DriftRecorder); ok {
		dr.MissingColumn(table, direction, column, missing)
	}
}

// RequestDuration passes gateway request timings on to the wrapped
// Recorder when it takes them (syncer.RequestTimer).
func (c *CycleClock) RequestDuration(path string, took time.Duration) {
	if rt, ok := c.Recorder.(syncer.RequestTimer); ok {
		rt.RequestDuration(path, took)
	}
}

// Register adds a collector to the wrapped Recorder's registry when it
// has one (*metrics.Metrics does), and does nothing otherwise.
func (c *CycleClock) Register(col prometheus.Collector) error {
	if r, ok := c.Recorder.(interface {
		Register(prometheus.Collector) error
	}); ok {
		return r.Register(col)
	}
	return nil
}

var (
	_ syncer.TableRecorder = (*CycleClock)(nil)
	_ syncer.RequestTimer  = (*CycleClock)(nil)
)

// Fresh returns a check that fails when no cycle succeeded within max
// (counted from the start for a process that has not had one yet).
func (c *CycleClock) Fresh(max time.Duration) func(context.Context) error {
	return func(context.Context) error {
		at := c.born
		if n := c.last.Load(); n != 0 {
			at = time.Unix(0, n)
		}
		if age := time.Since(at); age > max {
			if c.last.Load() == 0 {
				return fmt.Errorf("no cycle has succeeded in the %s since start (the limit is %s)", age.Round(time.Second), max)
			}
			return fmt.Errorf("the last good cycle ended %s ago (the limit is %s)", age.Round(time.Second), max)
		}
		return nil
	}
}

// Observe is what a main calls for its -metrics address: with addr set it
// serves the role's Prometheus metrics (metrics.Start) and /healthz and
// /readyz there, and returns the Recorder to give the role; with addr
// empty it returns nil, which records nothing. checks are the readiness
// checks (the database, say); with fresh > 0, /readyz also fails once no
// cycle of the role has succeeded for that long.
func Observe(ctx context.Context, addr string, log *slog.Logger, fresh time.Duration, checks map[string]func(context.Context) error) syncer.Recorder {
	m := metrics.Start(ctx, addr, log)
	if m == nil {
		return nil
	}
	clock := NewCycleClock(m)
	h := &Health{}
	for name, fn := range checks {
		h.Check(name, fn)
	}
	if fresh > 0 {
		h.Check("last-cycle", clock.Fresh(fresh))
	}
	h.Mount(m)
	return clock
}
