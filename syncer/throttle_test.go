package syncer_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/throttle"
)

// lockedBuffer is a log sink for several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *lockedBuffer) Reset()         { l.mu.Lock(); defer l.mu.Unlock(); l.b.Reset() }

// busyNote passes the throttle's metrics on and notes when the database
// turned busy.
type busyNote struct {
	*metrics.Metrics
	busy atomic.Bool
}

func (b *busyNote) Busy(db string, busy bool) { b.busy.Store(busy); b.Metrics.Busy(db, busy) }

// Must-show 2, the busy pause: connections running SELECT SLEEP hold
// MariaDB's Threads_running over the limit; the coordinator applies no
// page while they run, logs and counts the pause, and copies everything
// once they stop.
func TestBusyDatabasePausesCopying(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "mysql", zoneOpts{})
	z.both(items, itemsDDL)
	z.insertItems(0, 200)
	z.waitLag()

	// The server is shared: the limit sits above what runs on it now,
	// and far below what the sleepers add.
	base, err := z.inet.Load(ctx)
	is.NoErr(err)
	const sleepers = 24
	limit := base.Running + 8

	load, err := sql.Open("mysql", testdb.MySQL(t)) // a private database for the load
	is.NoErr(err)
	defer load.Close()
	load.SetMaxOpenConns(sleepers)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range sleepers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				// Long sleeps: between two of them a connection does not
				// count as running, and on a loaded machine those gaps
				// would let a re-check see the server idle.
				if _, err := load.ExecContext(ctx, "SELECT SLEEP(2)"); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	waitUntil(t, "Threads_running over the limit", func() bool {
		l, err := z.inet.Load(ctx)
		return err == nil && l.Running > limit
	})

	var logs lockedBuffer
	rec := &busyNote{Metrics: metrics.New()}
	th, err := throttle.New(&throttle.Options{Probes: map[string]throttle.Probe{"internet": z.inet}, MaxRunning: limit,
		Interval: 100 * time.Millisecond, Recorder: rec, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	is.NoErr(err)
	coord, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Page: gapsync.Page{Rows: 20}, InFlight: 1, Throttle: th})
	is.NoErr(err)
	done := make(chan error, 1)
	var report *syncer.Report
	go func() {
		r, err := coord.RunOnce(ctx)
		report = r
		done <- err
	}()

	waitUntil(t, "the pause", rec.busy.Load)
	is.True(strings.Contains(logs.String(), "database busy; copying paused"))
	time.Sleep(time.Second) // ten re-checks, all busy
	is.True(rec.busy.Load())
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM items"), 0) // no page applied while busy
	select {
	case err := <-done:
		t.Fatalf("the cycle ended while the database was busy: %v", err)
	default:
	}

	stop.Store(true)
	wg.Wait()
	select {
	case err := <-done:
		is.NoErr(err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the cycle did not resume")
	}
	is.Equal(report.Rows(gapsync.Push), int64(200))
	z.assertSame("items", "id")
	is.True(!rec.busy.Load())
	is.True(strings.Contains(logs.String(), "copying resumes"))

	srv := httptest.NewServer(rec.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	is.NoErr(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	is.True(strings.Contains(string(body), `gapsync_throttled_seconds_total{reason="threads_running",table="items"}`))
	is.True(strings.Contains(string(body), `gapsync_throttle_busy{database="internet"} 0`))
	is.True(strings.Contains(string(body), `gapsync_database_running_statements{database="internet"}`))
}

// waitUntil polls cond for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("no %s within a minute", what)
}

// switchProbe reads busy while on is set.
type switchProbe struct{ on atomic.Bool }

func (p *switchProbe) Load(context.Context) (throttle.Load, error) {
	if p.on.Load() {
		return throttle.Load{Running: 100}, nil
	}
	return throttle.Load{Running: 1}, nil
}

// The gateway waits out a busy intranet database before it applies a
// batch or reads a pull page.
func TestGatewayWaitsOutABusyIntranet(t *testing.T) {
	is := is.New(t)
	probe := &switchProbe{}
	probe.on.Store(true)
	rec := &busyNote{Metrics: metrics.New()}
	th, err := throttle.New(&throttle.Options{Probes: map[string]throttle.Probe{"intranet": probe}, MaxRunning: 10,
		Interval: 20 * time.Millisecond, Recorder: rec})
	is.NoErr(err)
	z := newZones(t, "sqlite", zoneOpts{gw: &syncer.GatewayOptions{Throttle: th}, page: gapsync.Page{Rows: 10}})
	z.both(items, itemsDDL)
	z.insertItems(0, 50)
	z.waitLag()
	done := make(chan error, 1)
	go func() { _, err := z.runOnce(); done <- err }()
	waitUntil(t, "the pause", rec.busy.Load)
	time.Sleep(300 * time.Millisecond)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM items"), 0) // nothing applied while busy
	probe.on.Store(false)
	select {
	case err := <-done:
		is.NoErr(err)
	case <-time.After(time.Minute):
		t.Fatal("the cycle did not resume")
	}
	z.assertSame("items", "id")
	is.True(!rec.busy.Load())
}

// A verification waits out a busy database too (VerifyOptions.Throttle).
func TestVerifyWaitsOutABusyDatabase(t *testing.T) {
	is := is.New(t)
	z := newZones(t, "sqlite", zoneOpts{})
	z.both(items, itemsDDL)
	z.insertItems(0, 30)
	z.waitLag()
	_, err := z.runOnce()
	is.NoErr(err)

	probe := &switchProbe{}
	probe.on.Store(true)
	rec := &busyNote{Metrics: metrics.New()}
	th, err := throttle.New(&throttle.Options{Probes: map[string]throttle.Probe{"internet": probe}, MaxRunning: 10,
		Interval: 20 * time.Millisecond, Recorder: rec})
	is.NoErr(err)
	done := make(chan []gapsync.TableVerify, 1)
	go func() {
		vs, err := z.coord.Verify(context.Background(), nil, &syncer.VerifyOptions{Throttle: th})
		if err != nil {
			t.Error(err)
		}
		done <- vs
	}()
	waitUntil(t, "the pause", rec.busy.Load)
	time.Sleep(200 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the verification ended while the database was busy")
	default:
	}
	probe.on.Store(false)
	vs := <-done
	is.Equal(len(vs), 1)
	is.Equal(len(vs[0].Diffs), 0)
	is.Equal(vs[0].Rows, int64(30))
}

// The file bandwidth is asked before chunks cross the gateway (the
// coordinator) and before they are staged into the intranet database
// (the worker); files still arrive whole.
func TestFileBandwidthPacesChunks(t *testing.T) {
	is := is.New(t)
	const cs = 16 << 10
	z := newFileZones(t, "sqlite", "local", cs)
	mc, mw := metrics.New(), metrics.New()
	newTh := func(m *metrics.Metrics) *throttle.Throttler {
		th, err := throttle.New(&throttle.Options{FileBytes: 64 << 10, Recorder: m}) // a bucket of 6.5 KiB: every 16 KiB chunk waits
		is.NoErr(err)
		return th
	}
	var err error
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Throttle: newTh(mc),
		Files: &syncer.FileOptions{Store: z.inetStore, ChunkSize: cs, Retention: -1}})
	is.NoErr(err)
	z.worker, err = syncer.NewIntranetWorker(z.intra, &syncer.WorkerOptions{Throttle: newTh(mw),
		Files: syncer.FileOptions{Store: z.intraStore, ChunkSize: cs, Retention: -1}})
	is.NoErr(err)
	put(t, z.inetStore, "out.bin", randBytes(41, 3*cs))
	put(t, z.intraStore, "in.bin", randBytes(42, 2*cs))
	z.doc(gapsync.Internet, 1, "out.bin")
	z.doc(gapsync.Intranet, 2, "in.bin")
	for range 3 { // the worker stages in.bin, the coordinator fetches it the round after
		r, _ := z.round()
		is.NoErr(r.Err())
	}
	held := map[string]string{"table": "", "reason": throttle.ReasonFiles}
	is.True(counter(t, mc, "gapsync_throttled_seconds_total", held) > 0) // the coordinator's transfers waited
	is.True(counter(t, mw, "gapsync_throttled_seconds_total", held) > 0) // and the worker's staging
	n := count(t, z.src(), "SELECT COUNT(*) FROM file_record WHERE status = 'published'")
	is.True(n >= 1)
}
