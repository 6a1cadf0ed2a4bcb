package throttle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Reasons a copier was held back, as Recorder.Throttled receives them.
const (
	ReasonRows    = "rows"            // a rows-per-second limit
	ReasonBytes   = "bytes"           // a bytes-per-second limit
	ReasonFiles   = "file_bandwidth"  // Options.FileBytes
	ReasonRunning = "threads_running" // a database ran more than MaxRunning statements
	ReasonLatency = "latency"         // a database answered slower than MaxLatency
)

// Limits cap one flow. Zero (in either field) means no limit.
type Limits struct {
	Rows  float64 // rows per second
	Bytes float64 // payload bytes per second
}

func (l Limits) check(what string) error {
	for _, v := range []struct {
		name string
		n    float64
	}{{"rows", l.Rows}, {"bytes", l.Bytes}} {
		if v.n < 0 || math.IsNaN(v.n) || math.IsInf(v.n, 0) {
			return fmt.Errorf("throttle: %s %s per second is %v: want 0 (no limit) or a positive number", what, v.name, v.n)
		}
	}
	return nil
}

// Load is one reading of a Probe.
type Load struct {
	// Running is how many statements run on the database now, the
	// probe's own included (MySQL's Threads_running, PostgreSQL's active
	// client backends); -1 when the engine cannot tell.
	Running int64
	// Latency is how long the reading took, from the question to the
	// answer: the latency of a trivial statement.
	Latency time.Duration
}

// Probe measures how busy a database is. *storage.DB is one.
type Probe interface {
	// Load reads the database's load now. It is called from one
	// goroutine at a time per Throttler, and should be quick: its ctx
	// carries a timeout. An error is logged, and the database then
	// counts as not busy (unless ctx's deadline passed and MaxLatency
	// is set). Safe to retry.
	Load(ctx context.Context) (Load, error)
}

// Recorder receives what a Throttler does, for a host to export. Its
// methods are called from several goroutines.
type Recorder interface {
	// Throttled adds d to the time a copier of table ("" for files) was
	// held back for reason (one of the Reason constants).
	Throttled(table, reason string, d time.Duration)
	// Busy tells whether the database named database (a key of
	// Options.Probes) is over a limit now.
	Busy(database string, busy bool)
	// Probed gives the database's last reading.
	Probed(database string, l Load)
}

// Options configure a Throttler. The zero value limits nothing.
type Options struct {
	// Overall limits all tables together.
	Overall Limits
	// Tables limits single tables, by name, on top of Overall.
	Tables map[string]Limits
	// FileBytes caps the file chunk bytes moved per second, all files
	// together. 0: no limit.
	FileBytes float64

	// Probes measure the databases a copy loads, by a name used in logs
	// and metrics ("internet", "intranet"). While any of them reads over
	// a limit below, every Wait and WaitFiles pauses.
	Probes map[string]Probe
	// MaxRunning: busy while more than this many statements run at once
	// on a probed database. 0: not checked.
	MaxRunning int64
	// MaxLatency: busy while a probe takes longer than this. 0: not
	// checked.
	MaxLatency time.Duration
	// Interval is how long a reading holds: Wait probes again when the
	// last reading is older, and a paused copier re-checks this often.
	// Default 1 s.
	Interval time.Duration

	// Recorder, when set, receives the time spent held back and the
	// busy state (a *metrics.Metrics is one).
	Recorder Recorder
	// Logger; default discards.
	Logger *slog.Logger
}

// Throttler paces copiers; see the package comment. It is safe for
// concurrent use; one Throttler serves every table of a role. A nil
// *Throttler never waits.
type Throttler struct {
	opts    Options
	overall bucket
	tables  map[string]bucket
	files   *rate.Limiter
	probes  []string // names of opts.Probes, sorted

	mu      sync.Mutex // held while probing, so that one probe runs at a time
	checked time.Time  // when the readings below were taken
	reason  string     // why the databases are busy ("" when not)
	busy    map[string]bool

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

type bucket struct{ rows, bytes *rate.Limiter } // nil: no limit

// New returns a Throttler, or an error naming the setting that makes no
// sense (a negative or infinite limit). A nil o limits nothing.
func New(o *Options) (*Throttler, error) {
	t := &Throttler{now: time.Now, sleep: sleep, busy: map[string]bool{}}
	if o != nil {
		t.opts = *o
	}
	if err := t.opts.Overall.check("overall"); err != nil {
		return nil, err
	}
	if err := (Limits{Bytes: t.opts.FileBytes}).check("file"); err != nil {
		return nil, err
	}
	if t.opts.MaxRunning < 0 || t.opts.MaxLatency < 0 || t.opts.Interval < 0 {
		return nil, errors.New("throttle: MaxRunning, MaxLatency and Interval cannot be negative: use 0 for no limit (or the default interval)")
	}
	if t.opts.Interval == 0 {
		t.opts.Interval = time.Second
	}
	if t.opts.Logger == nil {
		t.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	now := t.now()
	t.overall = newBucket(t.opts.Overall, now)
	t.tables = map[string]bucket{}
	for name, l := range t.opts.Tables {
		if err := l.check("table " + name); err != nil {
			return nil, err
		}
		t.tables[name] = newBucket(l, now)
	}
	t.files = newLimiter(t.opts.FileBytes, now)
	for name, p := range t.opts.Probes {
		if p == nil {
			return nil, fmt.Errorf("throttle: probe %q is nil", name)
		}
		t.probes = append(t.probes, name)
	}
	slices.Sort(t.probes)
	return t, nil
}

func newBucket(l Limits, now time.Time) bucket {
	return bucket{rows: newLimiter(l.Rows, now), bytes: newLimiter(l.Bytes, now)}
}

// newLimiter returns a bucket of perSec tokens a second that holds a
// tenth of a second's worth and starts empty, or nil for no limit.
func newLimiter(perSec float64, now time.Time) *rate.Limiter {
	if perSec <= 0 {
		return nil
	}
	burst := int(min(math.Ceil(perSec/10), 1<<40))
	l := rate.NewLimiter(rate.Limit(perSec), burst)
	l.ReserveN(now, burst)
	return l
}

// take reserves n tokens of l at now and returns how long until they are
// there. Requests larger than the bucket are taken a bucketful at a time,
// each reservation queued behind the previous one.
func take(l *rate.Limiter, n int64, now time.Time) time.Duration {
	if l == nil || n <= 0 {
		return 0
	}
	var d time.Duration
	for b := int64(l.Burst()); n > 0; n -= b {
		d = l.ReserveN(now, int(min(n, b))).DelayFrom(now)
	}
	return d
}

// Wait holds a copier of table back until a page of rows rows and bytes
// payload bytes may go: until every rate limit that applies has the
// tokens, then for as long as a probed database is busy. Wait(ctx,
// table, 0, 0) only waits out a busy database. It returns early with
// ctx's error when ctx ends (the tokens stay spent).
func (t *Throttler) Wait(ctx context.Context, table string, rows int, bytes int64) error {
	if t == nil {
		return nil
	}
	now := t.now()
	d, reason := time.Duration(0), ""
	for _, b := range []bucket{t.overall, t.tables[table]} {
		if w := take(b.rows, int64(rows), now); w > d {
			d, reason = w, ReasonRows
		}
		if w := take(b.bytes, bytes, now); w > d {
			d, reason = w, ReasonBytes
		}
	}
	if err := t.hold(ctx, table, reason, d); err != nil {
		return err
	}
	return t.pause(ctx, table)
}

// WaitFiles holds a file transfer back until bytes chunk bytes may move
// under Options.FileBytes, then for as long as a probed database is busy.
func (t *Throttler) WaitFiles(ctx context.Context, bytes int64) error {
	if t == nil {
		return nil
	}
	if err := t.hold(ctx, "", ReasonFiles, take(t.files, bytes, t.now())); err != nil {
		return err
	}
	return t.pause(ctx, "")
}

// hold sleeps d and records it.
func (t *Throttler) hold(ctx context.Context, table, reason string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	start := t.now()
	err := t.sleep(ctx, d)
	if t.opts.Recorder != nil {
		t.opts.Recorder.Throttled(table, reason, min(d, t.now().Sub(start)))
	}
	return err
}

// pause returns once no probed database is busy, re-checking every
// Interval.
func (t *Throttler) pause(ctx context.Context, table string) error {
	for {
		reason := t.check(ctx)
		if reason == "" {
			return ctx.Err()
		}
		if err := t.hold(ctx, table, reason, t.opts.Interval); err != nil {
			return err
		}
	}
}

// check returns why the databases are busy ("" when they are not),
// probing them again when the last readings are older than Interval.
func (t *Throttler) check(ctx context.Context) string {
	if len(t.probes) == 0 || (t.opts.MaxRunning == 0 && t.opts.MaxLatency == 0) {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := t.now(); !t.checked.IsZero() && now.Sub(t.checked) < t.opts.Interval {
		return t.reason
	}
	var why []string
	for _, name := range t.probes {
		reason, detail := t.probe(ctx, name)
		if reason != "" && why == nil {
			why = []string{reason}
		}
		if busy := reason != ""; busy != t.busy[name] {
			t.busy[name] = busy
			if busy {
				t.opts.Logger.Warn("database busy; copying paused", "database", name, "reason", reason, "load", detail,
					"max_threads_running", t.opts.MaxRunning, "max_latency", t.opts.MaxLatency, "recheck_every", t.opts.Interval)
			} else {
				t.opts.Logger.Info("database no longer busy; copying resumes", "database", name, "load", detail)
			}
			if t.opts.Recorder != nil {
				t.opts.Recorder.Busy(name, busy)
			}
		}
	}
	t.checked = t.now()
	t.reason = ""
	if why != nil {
		t.reason = why[0]
	}
	return t.reason
}

// probe reads one database and returns why it is busy ("" when it is
// not) and what it read, for the log.
func (t *Throttler) probe(ctx context.Context, name string) (reason, detail string) {
	pctx, cancel := context.WithTimeout(ctx, max(5*time.Second, 4*t.opts.MaxLatency))
	defer cancel()
	start := t.now()
	l, err := t.opts.Probes[name].Load(pctx)
	if err != nil {
		if ctx.Err() == nil && pctx.Err() != nil && t.opts.MaxLatency > 0 {
			return ReasonLatency, fmt.Sprintf("no answer in %v", t.now().Sub(start).Round(time.Millisecond))
		}
		if ctx.Err() == nil {
			t.opts.Logger.Warn("cannot read the database's load; counting it as not busy", "database", name, "err", err)
		}
		return "", ""
	}
	if t.opts.Recorder != nil {
		t.opts.Recorder.Probed(name, l)
	}
	detail = fmt.Sprintf("%d running, answered in %v", l.Running, l.Latency.Round(time.Microsecond))
	switch {
	case t.opts.MaxRunning > 0 && l.Running > t.opts.MaxRunning:
		return ReasonRunning, detail
	case t.opts.MaxLatency > 0 && l.Latency > t.opts.MaxLatency:
		return ReasonLatency, detail
	}
	return "", detail
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
