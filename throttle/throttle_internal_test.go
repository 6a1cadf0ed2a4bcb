package throttle

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// clock is a fake time: sleeping moves it on at once, so the tests
// check the accounting, not the speed of the machine.
type clock struct {
	mu    sync.Mutex
	t     time.Time
	slept time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
	return nil
}

func (c *clock) total() time.Duration { c.mu.Lock(); defer c.mu.Unlock(); return c.slept }

// fake builds a Throttler on a fake clock.
func fake(t *testing.T, o *Options) (*Throttler, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	// New reads the clock once for the buckets; build through it so the
	// checks run, then swap the clock in and rebuild the buckets on it.
	th, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	th.now, th.sleep = c.now, c.sleep
	th.overall = newBucket(th.opts.Overall, c.t)
	for name, l := range th.opts.Tables {
		th.tables[name] = newBucket(l, c.t)
	}
	th.files = newLimiter(th.opts.FileBytes, c.t)
	return th, c
}

type rec struct {
	mu     sync.Mutex
	held   map[string]time.Duration // table+" "+reason
	busy   []string                 // "db true", "db false"
	probed int
}

func (r *rec) Throttled(table, reason string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held == nil {
		r.held = map[string]time.Duration{}
	}
	r.held[table+" "+reason] += d
}

func (r *rec) Busy(db string, busy bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if busy {
		r.busy = append(r.busy, db+" true")
	} else {
		r.busy = append(r.busy, db+" false")
	}
}

func (r *rec) Probed(string, Load) { r.mu.Lock(); r.probed++; r.mu.Unlock() }

func near(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) < float64(time.Millisecond)
}

func TestRowsPerSecondPacesPages(t *testing.T) {
	is := is.New(t)
	r := &rec{}
	th, c := fake(t, &Options{Overall: Limits{Rows: 20000}, Recorder: r})
	for range 200 {
		is.NoErr(th.Wait(context.Background(), "orders", 1000, 0))
	}
	// The bucket starts empty: 200,000 rows at 20,000/s cost ten seconds.
	is.True(near(c.total(), 10*time.Second))
	is.True(near(r.held["orders rows"], 10*time.Second))
}

func TestIdleBuysATenthOfASecond(t *testing.T) {
	is := is.New(t)
	th, c := fake(t, &Options{Overall: Limits{Rows: 1000}})
	c.t = c.t.Add(time.Hour) // a long idle moment fills the bucket
	is.NoErr(th.Wait(context.Background(), "t", 100, 0))
	is.Equal(c.total(), time.Duration(0)) // a tenth of a second's worth is there
	is.NoErr(th.Wait(context.Background(), "t", 100, 0))
	is.True(near(c.total(), 100*time.Millisecond)) // and no more
}

func TestZeroIsUnlimited(t *testing.T) {
	is := is.New(t)
	for _, o := range []*Options{nil, {}, {Tables: map[string]Limits{"other": {Rows: 1}}}} {
		th, c := fake(t, o)
		for range 100 {
			is.NoErr(th.Wait(context.Background(), "t", 1_000_000, 1<<30))
			is.NoErr(th.WaitFiles(context.Background(), 1<<30))
		}
		is.Equal(c.total(), time.Duration(0))
	}
	var nilT *Throttler
	is.NoErr(nilT.Wait(context.Background(), "t", 1, 1))
	is.NoErr(nilT.WaitFiles(context.Background(), 1))
}

func TestPerTableAndOverall(t *testing.T) {
	is := is.New(t)
	// A table limit holds that table only.
	th, c := fake(t, &Options{Tables: map[string]Limits{"a": {Rows: 1000}}})
	for range 30 {
		is.NoErr(th.Wait(context.Background(), "b", 100, 0))
	}
	is.Equal(c.total(), time.Duration(0))
	for range 30 {
		is.NoErr(th.Wait(context.Background(), "a", 100, 0))
	}
	is.True(near(c.total(), 3*time.Second))

	// With an overall limit too, the tables share it: 6,000 rows at
	// 1,500/s take four seconds, more than a's own 3,000 at 1,000/s.
	th, c = fake(t, &Options{Overall: Limits{Rows: 1500}, Tables: map[string]Limits{"a": {Rows: 1000}}})
	for range 30 {
		is.NoErr(th.Wait(context.Background(), "a", 100, 0))
		is.NoErr(th.Wait(context.Background(), "b", 100, 0))
	}
	is.True(near(c.total(), 4*time.Second))
}

func TestBytesLargerThanTheBucket(t *testing.T) {
	is := is.New(t)
	r := &rec{}
	th, c := fake(t, &Options{Overall: Limits{Bytes: 1 << 20}, FileBytes: 1 << 20, Recorder: r})
	// A 4 MiB page is ten times a 1 MiB/s bucket's size: paid in full.
	is.NoErr(th.Wait(context.Background(), "docs", 10, 4<<20))
	is.True(near(c.total(), 4*time.Second))
	is.True(near(r.held["docs bytes"], 4*time.Second))
	// Files and rows are paced apart: the file bucket refilled its tenth
	// of a second while the rows waited.
	is.NoErr(th.WaitFiles(context.Background(), 2<<20))
	is.True(near(r.held[" file_bandwidth"], 1900*time.Millisecond))
	is.True(near(c.total(), 5900*time.Millisecond))
}

func TestCancelledWaitReturns(t *testing.T) {
	is := is.New(t)
	th, _ := fake(t, &Options{Overall: Limits{Rows: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	is.True(errors.Is(th.Wait(ctx, "t", 100, 0), context.Canceled))
}

func TestNewRefusesNonsense(t *testing.T) {
	is := is.New(t)
	for _, o := range []Options{
		{Overall: Limits{Rows: -1}},
		{Overall: Limits{Bytes: math.NaN()}},
		{Tables: map[string]Limits{"t": {Rows: math.Inf(1)}}},
		{FileBytes: -5},
		{MaxRunning: -1},
		{MaxLatency: -time.Second},
		{Probes: map[string]Probe{"db": nil}},
	} {
		_, err := New(&o)
		is.True(err != nil)
		is.True(strings.HasPrefix(err.Error(), "throttle: "))
	}
}

// readings is a Probe that answers from a list, then repeats the last.
type readings struct {
	mu  sync.Mutex
	ls  []Load
	err error
	n   int
}

func (p *readings) Load(context.Context) (Load, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.err != nil {
		return Load{}, p.err
	}
	l := p.ls[0]
	if len(p.ls) > 1 {
		p.ls = p.ls[1:]
	}
	return l, nil
}

func TestBusyPausesUntilUnderTheLimit(t *testing.T) {
	is := is.New(t)
	var logs bytes.Buffer
	r := &rec{}
	p := &readings{ls: []Load{{Running: 12}, {Running: 9}, {Running: 7}, {Running: 3}}}
	th, c := fake(t, &Options{Probes: map[string]Probe{"intranet": p}, MaxRunning: 5, Interval: time.Second,
		Recorder: r, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	is.NoErr(th.Wait(context.Background(), "orders", 10, 0))
	// Three readings over five, one interval each, then under.
	is.Equal(p.n, 4)
	is.True(near(c.total(), 3*time.Second))
	is.True(near(r.held["orders threads_running"], 3*time.Second))
	is.Equal(r.busy, []string{"intranet true", "intranet false"})
	is.Equal(r.probed, 4)
	is.True(strings.Contains(logs.String(), "database busy; copying paused"))
	is.True(strings.Contains(logs.String(), "load=\"12 running"))
	is.True(strings.Contains(logs.String(), "copying resumes"))

	// A fresh reading is trusted for an interval: no second probe.
	is.NoErr(th.Wait(context.Background(), "orders", 10, 0))
	is.Equal(p.n, 4)
	c.t = c.t.Add(time.Second)
	is.NoErr(th.Wait(context.Background(), "orders", 10, 0))
	is.Equal(p.n, 5)
}

func TestLatencyOverTheLimit(t *testing.T) {
	is := is.New(t)
	r := &rec{}
	p := &readings{ls: []Load{{Running: -1, Latency: 300 * time.Millisecond}, {Running: -1, Latency: time.Millisecond}}}
	th, c := fake(t, &Options{Probes: map[string]Probe{"internet": p}, MaxLatency: 100 * time.Millisecond, Recorder: r})
	is.NoErr(th.Wait(context.Background(), "t", 0, 0))
	is.True(near(c.total(), time.Second)) // the default interval
	is.True(near(r.held["t latency"], time.Second))
}

func TestUncheckedLimitsProbeNothing(t *testing.T) {
	is := is.New(t)
	p := &readings{ls: []Load{{Running: 1000}}}
	th, c := fake(t, &Options{Probes: map[string]Probe{"db": p}})
	is.NoErr(th.Wait(context.Background(), "t", 1, 1))
	is.Equal(p.n, 0)
	is.Equal(c.total(), time.Duration(0))
}

func TestFailingProbeIsNotBusy(t *testing.T) {
	is := is.New(t)
	var logs bytes.Buffer
	p := &readings{err: errors.New("access denied")}
	th, c := fake(t, &Options{Probes: map[string]Probe{"db": p}, MaxRunning: 5, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	is.NoErr(th.Wait(context.Background(), "t", 1, 1))
	is.Equal(c.total(), time.Duration(0))
	is.True(strings.Contains(logs.String(), "access denied"))
}

func TestSeveralDatabasesAllMustBeUnder(t *testing.T) {
	is := is.New(t)
	r := &rec{}
	a := &readings{ls: []Load{{Running: 1}}}
	b := &readings{ls: []Load{{Running: 50}, {Running: 50}, {Running: 1}}}
	th, c := fake(t, &Options{Probes: map[string]Probe{"internet": a, "intranet": b}, MaxRunning: 10, Recorder: r})
	is.NoErr(th.Wait(context.Background(), "t", 0, 0))
	is.True(near(c.total(), 2*time.Second))
	is.Equal(r.busy, []string{"intranet true", "intranet false"})
}
