package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/throttle"
	"github.com/gapsync/gapsync/transport"
)

// CoordinatorOptions tune a Coordinator. Nil gives the defaults.
type CoordinatorOptions struct {
	// Page bounds each batch: rows and payload bytes. Defaults 5,000
	// rows, 4 MiB. Keep Bytes under the gateway's body cap. Pages of
	// 1,000 made a cycle of the newest 10,000 rows of a million about
	// 1.5 times as long (a commit and a checkpoint on each side a page;
	// BenchmarkIncrementalNewest).
	Page gapsync.Page
	// LoadRows bounds the rows of each batch of a table's first load (a
	// window from the table's start, a reload included), whose pages are
	// applied where the far side can by its fastest insert path (see
	// batch.FlagLoad): larger pages cost fewer round trips and commits.
	// Page.Bytes still bounds each one. Default: 10,000 where Page.Rows
	// is left to its default, Page.Rows where it is set. Negative:
	// Page.Rows.
	LoadRows int
	// Tables is how many tables sync at once. Default 4.
	Tables int
	// InFlight is how many batches of one table may be on their way at
	// once: the next page is read while earlier ones are being applied.
	// Default 3. 1 sends strictly one after another.
	InFlight int
	// Interval is the pause between cycles in Run. Default 1 minute.
	Interval time.Duration
	// Resolver settles a key changed on both sides. Default
	// gapsync.NewestWins (the later cursor wins; a tie goes to the internet).
	Resolver gapsync.Resolver
	// LeaseName names the lease in sync_lease; coordinators that share it
	// take turns. Default "coordinator".
	LeaseName string
	// LeaseTTL is how long a lease lasts unless renewed; a coordinator
	// renews it every third of that while it works, and a dead one's
	// lease lapses after it. Default 1 minute.
	LeaseTTL time.Duration
	// Holder names this instance in the lease. Default: random.
	Holder string
	// LeaseWait is how long RunOnce waits for a lease that another
	// holder keeps (a coordinator killed without releasing it keeps it
	// for up to LeaseTTL), trying again every few seconds and logging
	// what it waits for. Default 0: RunOnce returns ErrLeaseHeld at once.
	LeaseWait time.Duration
	// Files configures the file flow (seed 1.1.4, 1.3, 1.4) on the
	// internet side. Nil, or no Store: rows only.
	Files *FileOptions
	// VerifyEvery, when set, makes Run verify every enabled table (see
	// Coordinator.Verify) once per VerifyEvery, between cycles and under
	// the lease, one Interval at a time (see verifyrun.go). Results go to
	// sync_verify and to Metrics. Verify tunes it; Until and Fresh are
	// Run's.
	VerifyEvery time.Duration
	Verify      *VerifyOptions
	// LogRetention is how long Run keeps sync_log entries that a newer
	// good run of the same table and direction has made history (see
	// LogPruner): once an hour, between cycles, older ones are deleted, a
	// few thousand at a time within about a second. The newest good
	// window of every table and direction, and any failure after it, stay
	// however old. Default 180 days (the six months of logs that audit
	// rules commonly ask for); negative: keep every entry.
	LogRetention time.Duration
	// Metrics, when set, counts cycles, rows, bytes, conflicts and files
	// (a *metrics.Metrics exports them to Prometheus).
	Metrics Recorder
	// Throttle, when set, is asked before each page of rows goes, either
	// way (rows and bytes per second, per table and overall, and a pause
	// while a probed database is busy), and before each batch of file
	// chunks (its file bandwidth). Nil: no limits.
	Throttle *throttle.Throttler
	// Logger; default discards.
	Logger *slog.Logger
}

// Coordinator is the internet zone's role. Every exchange starts here: it
// reads changed rows from the internet database and sends them sealed to
// the gateway (push, seed 1.1), asks the gateway for the intranet's changed
// rows and applies them here (pull, seed 1.2), settles conflicts, and keeps
// the sync log. A lease in the internet database lets one instance work at
// a time.
type Coordinator struct {
	db       InternetDB
	tr       Transport
	opts     CoordinatorOptions
	fileFlow *fileFlow
	drift    drift     // schema drift seen in this process (drift.go)
	pruned   time.Time // when Run last pruned sync_log (prune.go)
}

// NewCoordinator returns a Coordinator over the internet database db (a
// storage.DB) and the gateway at the other end of t.
func NewCoordinator(db InternetDB, t Transport, o *CoordinatorOptions) (*Coordinator, error) {
	if db == nil || t == nil {
		return nil, errors.New("syncer: NewCoordinator needs the internet database and a transport")
	}
	c := &Coordinator{db: db, tr: t}
	if o != nil {
		c.opts = *o
	}
	if c.opts.LoadRows == 0 && c.opts.Page.Rows <= 0 {
		c.opts.LoadRows = 10_000
	}
	if c.opts.Page.Rows <= 0 {
		c.opts.Page.Rows = 5000
	}
	if c.opts.Page.Bytes <= 0 {
		c.opts.Page.Bytes = 4 << 20
	}
	if c.opts.LoadRows <= 0 {
		c.opts.LoadRows = c.opts.Page.Rows
	}
	if c.opts.Tables <= 0 {
		c.opts.Tables = 4
	}
	if c.opts.InFlight <= 0 {
		c.opts.InFlight = 3
	}
	if c.opts.Interval <= 0 {
		c.opts.Interval = time.Minute
	}
	if c.opts.LogRetention == 0 {
		c.opts.LogRetention = 180 * 24 * time.Hour
	}
	if c.opts.Resolver == nil {
		c.opts.Resolver = gapsync.NewestWins{}
	}
	if c.opts.LeaseName == "" {
		c.opts.LeaseName = "coordinator"
	}
	if c.opts.LeaseTTL <= 0 {
		c.opts.LeaseTTL = time.Minute
	}
	if c.opts.Holder == "" {
		c.opts.Holder = newID()
	}
	if c.opts.Logger == nil {
		c.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.opts.Metrics = orNoRecorder(c.opts.Metrics)
	if fo := c.opts.Files; fo != nil && fo.StageTime <= 0 {
		// Files follow the tables in a cycle: their staging starts no new
		// file after an interval, so the next tables wait little longer.
		o := *fo
		o.StageTime = c.opts.Interval
		c.opts.Files = &o
	}
	ff, err := newFileFlow(db, c.opts.Files, gapsync.Internet, c.opts.Logger)
	if err != nil {
		return nil, err
	}
	c.fileFlow = ff
	if lim, ok := t.(interface{ MaxRequest() int64 }); ok {
		if err := c.checkRequestSize(lim.MaxRequest()); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkRequestSize refuses, at configuration, pages and chunk batches that
// the transport would refuse to send, instead of failing every cycle: each
// must fit in half the request cap, which leaves room for the row that
// crosses the page bound and for framing.
func (c *Coordinator) checkRequestSize(max int64) error {
	type size struct {
		name string
		n    int64
	}
	sizes := []size{{"Page.Bytes", int64(c.opts.Page.Bytes)}}
	if c.fileFlow != nil {
		sizes = append(sizes, size{"Files.BatchBytes", c.fileFlow.opts.BatchBytes}, size{"Files.ChunkSize", c.fileFlow.opts.ChunkSize})
	}
	for _, s := range sizes {
		if s.n > max-max/8 {
			return fmt.Errorf("syncer: %s is %d bytes, over 7/8 of the transport's %d-byte request cap (transport.ClientOptions.MaxRequest, equal to the gateway's MaxBody): lower it or raise both caps", s.name, s.n, max)
		}
	}
	return nil
}

// Report sums up one cycle.
type Report struct {
	RunID  string
	Tables []gapsync.LogEntry // one per table and direction, as logged
	Files  FileReport
	// FilesErr is the file flow's error, if any; files are retried next
	// cycle and do not hold back the tables' windows.
	FilesErr error
	// Refused are the file references refused by design this cycle (see
	// IsRefusal): logged and counted, never retried, and not in Err.
	Refused []error
	// Parked are the tables and directions skipped because they are
	// parked (see Coordinator.Resume). A table parked in this cycle is in
	// Tables, with its error.
	Parked []gapsync.Parked
}

// Rows returns the rows moved in direction d (all directions when d is "").
func (r *Report) Rows(d gapsync.Direction) int64 {
	var n int64
	for _, t := range r.Tables {
		if d == "" || t.Direction == d {
			n += t.Rows
		}
	}
	return n
}

// Conflicts returns the conflicts settled in the cycle.
func (r *Report) Conflicts() int {
	n := 0
	for _, t := range r.Tables {
		n += t.Conflicts
	}
	return n
}

// Err joins the errors of the tables that failed and of the file flow.
func (r *Report) Err() error {
	errs := []error{r.FilesErr}
	for _, t := range r.Tables {
		if t.Err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", t.Direction, t.Table, t.Err))
		}
	}
	return errors.Join(errs...)
}

// Run runs a cycle, then one every Interval, until ctx is done. A failed
// cycle is logged (and recorded in the sync log) and retried at the next
// tick; while another instance holds the lease, this one waits its turn.
// On cancellation the cycle in flight stops, is logged as failed (its
// windows do not advance), the lease is released, and Run returns ctx's
// error. With VerifyEvery set, the pause after a cycle verifies the
// tables when a verification is due (see CoordinatorOptions.VerifyEvery).
func (c *Coordinator) Run(ctx context.Context) error {
	for {
		r, err := c.RunOnce(ctx)
		switch {
		case errors.Is(err, gapsync.ErrLeaseHeld):
			c.opts.Logger.Info("another coordinator holds the lease; waiting for the next cycle", "err", err)
		case err != nil:
			c.opts.Logger.Warn("cycle failed", "run", r.RunID, "err", err)
		}
		spent := c.verifyBetweenCycles(ctx) // CoordinatorOptions.VerifyEvery
		spent += c.pruneBetweenCycles(ctx)  // CoordinatorOptions.LogRetention
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.opts.Interval - spent):
		}
	}
}

// RunOnce runs one cycle: for every table enabled in the internet
// sync_config, pull (intranet → internet) then push (internet → intranet),
// tables in parallel up to Options.Tables. Each table's run in each
// direction is recorded in the sync log whether it succeeds or fails; the
// error joins the failures. A table whose rows the far database refuses
// for good (gapsync.ErrRejected) is parked in that direction, when the
// internet database is a Parker: later cycles skip it (Report.Parked)
// until Resume, and the other tables go on. The tables and directions
// with nothing to move are found and logged together first, when the
// internet database is a Batcher (idle.go); only the others run their
// windows. When another coordinator holds the lease,
// RunOnce does nothing and returns an error wrapping gapsync.ErrLeaseHeld.
func (c *Coordinator) RunOnce(ctx context.Context) (r *Report, err error) {
	start := time.Now()
	defer func() { recordCycle(c.opts.Metrics, r, time.Since(start), err) }()
	return c.runOnce(ctx)
}

func (c *Coordinator) runOnce(ctx context.Context) (*Report, error) {
	r := &Report{RunID: newID()}
	if err := c.acquire(ctx); err != nil {
		return r, err
	}
	ctx, release := c.keepLease(ctx)
	defer release()

	tables, err := c.tables(ctx)
	if err != nil {
		return r, err
	}
	parked, err := c.parkedSet(ctx)
	if err != nil {
		return r, err
	}
	open, err := c.openDrift(ctx)
	if err != nil {
		return r, err
	}
	quiet := c.quietRuns(ctx, r.RunID, tables, parked, open) // idle.go
	tr, _ := c.opts.Metrics.(TableRecorder)
	var (
		mu sync.Mutex
		g  errgroup.Group
	)
	g.SetLimit(c.opts.Tables)
	for _, t := range tables {
		g.Go(func() error {
			var (
				es   []gapsync.LogEntry
				skip []gapsync.Parked
			)
			for _, d := range []gapsync.Direction{gapsync.Pull, gapsync.Push} {
				if !t.Allows(d) {
					continue
				}
				if p, ok := parked[string(d)+" "+t.Name]; ok { // one poisoned table does not hold up the others
					skip = append(skip, p)
					if tr != nil {
						tr.TableParked(t.Name, string(d), true)
					}
					continue
				}
				if e, ok := quiet[string(d)+" "+t.Name]; ok { // recorded already: nothing to move
					es = append(es, e)
					continue
				}
				// Columns the receiving side lacked and has now: this run
				// reads the table from its start, so that they arrive
				// for the rows sent before (drift.go).
				refill := c.arrived(ctx, t, d, open)
				var e gapsync.LogEntry
				if d == gapsync.Pull {
					e = c.pull(ctx, r.RunID, t, refill != nil)
				} else {
					e = c.push(ctx, r.RunID, t, refill != nil)
				}
				if e.Err == nil {
					c.refilled(ctx, t, d, refill)
				}
				es = append(es, e)
			}
			mu.Lock()
			r.Tables = append(r.Tables, es...)
			r.Parked = append(r.Parked, skip...)
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	for _, p := range r.Parked {
		c.opts.Logger.Warn("table parked; fix the cause, then resume it", "table", p.Table, "dir", p.Direction,
			"since", p.Since, "reason", p.Reason)
	}
	if c.fileFlow != nil && ctx.Err() == nil {
		r.Refused, r.FilesErr = splitRefusals(c.files(ctx, &r.Files))
	}
	return r, r.Err()
}

// keepLease renews the lease this coordinator holds every third of
// LeaseTTL while work goes on under the returned context, which ends
// (its cause says "lease lost") when a renewal fails. release stops the
// renewals and gives the lease back.
func (c *Coordinator) keepLease(ctx context.Context) (_ context.Context, release func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(c.opts.LeaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := c.db.Acquire(ctx, c.opts.LeaseName, c.opts.Holder, c.opts.LeaseTTL); err != nil && ctx.Err() == nil {
					cancel(fmt.Errorf("lease lost: %w", err))
					return
				}
			}
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-renewed
		rctx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer done()
		if err := c.db.Release(rctx, c.opts.LeaseName, c.opts.Holder); err != nil {
			c.opts.Logger.Warn("release lease", "err", err)
		}
	}
}

// acquire takes the lease, waiting up to LeaseWait while another holder
// keeps it.
func (c *Coordinator) acquire(ctx context.Context) error {
	deadline := time.Now().Add(c.opts.LeaseWait)
	var logged time.Time
	for {
		err := c.db.Acquire(ctx, c.opts.LeaseName, c.opts.Holder, c.opts.LeaseTTL)
		left := time.Until(deadline)
		if err == nil || !errors.Is(err, gapsync.ErrLeaseHeld) || left <= 0 {
			return err
		}
		if time.Since(logged) >= 15*time.Second {
			logged = time.Now()
			c.opts.Logger.Info("waiting for the lease", "err", err, "gives_up_in", left.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(min(2*time.Second, left)):
		}
	}
}

// tables lists the internet side's enabled tables, each once.
func (c *Coordinator) tables(ctx context.Context) ([]gapsync.Table, error) {
	var out []gapsync.Table
	seen := map[string]bool{}
	for _, d := range []gapsync.Direction{gapsync.Pull, gapsync.Push} {
		ts, err := c.db.Tables(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("syncer: list tables: %w", err)
		}
		for _, t := range ts {
			if !seen[t.Name] {
				seen[t.Name] = true
				out = append(out, t)
			}
		}
	}
	return out, nil
}

// push is seed flow 1.1 for one table: window, rows, batches, send, log.
// With full it reads the table from its start, whatever the last window.
func (c *Coordinator) push(ctx context.Context, runID string, t gapsync.Table, full bool) gapsync.LogEntry {
	e := gapsync.LogEntry{RunID: runID, Table: t.Name, Direction: gapsync.Push, StartedAt: time.Now()}
	var pr *progress
	e.Err = func() error {
		from, _, err := c.db.LastWindow(ctx, t.Name, gapsync.Push)
		if err != nil {
			return err
		}
		since, _, err := c.db.LastWindow(ctx, t.Name, gapsync.Pull)
		if err != nil {
			return err
		}
		if full {
			from = ""
		}
		scan := func(w gapsync.Window) scanFunc {
			if r, ok := c.db.(PageReader); ok {
				return pages(func(ctx context.Context, after []byte) (*batch.Batch, []byte, bool, error) {
					return r.ReadPage(ctx, t, w, after, c.page(w))
				})
			}
			return func(ctx context.Context, _ []byte, fn func(*batch.Batch, []byte, bool) error) error {
				return c.db.Changes(ctx, t, w, c.page(w), func(b *batch.Batch) error { return fn(b, nil, true) })
			}
		}
		apply := func(ctx context.Context, b *batch.Batch) (gapsync.Result, *batch.Batch, error) {
			wb, err := toWire(t, b) // the intranet's names (rename.go)
			if err != nil {
				return gapsync.Result{}, nil, err
			}
			res, err := c.tr.Apply(ctx, wb)
			if err != nil {
				return res, nil, err
			}
			res.Missing = localNames(t, res.Missing)
			if c.fileFlow != nil {
				if _, err := c.fileFlow.db.NoteBatchFiles(ctx, t, gapsync.Internet, b); err != nil {
					return res, nil, err
				}
			}
			return res, wb, nil
		}
		pr, err = c.syncWindow(ctx, runID, t, &e, from, since, func() (string, error) { return c.db.Bound(ctx, t) }, scan, apply)
		return err
	}()
	e = c.record(ctx, e)
	if e.Err == nil {
		pr.finish(ctx)
	}
	return e
}

// pull is seed flow 1.2 for one table: the window from the intranet clock,
// pages of intranet changes through the gateway, applied here, logged here.
// With full it reads the table from its start, whatever the last window.
func (c *Coordinator) pull(ctx context.Context, runID string, t gapsync.Table, full bool) gapsync.LogEntry {
	e := gapsync.LogEntry{RunID: runID, Table: t.Name, Direction: gapsync.Pull, StartedAt: time.Now()}
	var pr *progress
	e.Err = func() error {
		from, _, err := c.db.LastWindow(ctx, t.Name, gapsync.Pull)
		if err != nil {
			return err
		}
		since, _, err := c.db.LastWindow(ctx, t.Name, gapsync.Push)
		if err != nil {
			return err
		}
		if full {
			from = ""
		}
		scan := func(w gapsync.Window) scanFunc {
			return pages(func(ctx context.Context, after []byte) (*batch.Batch, []byte, bool, error) {
				p, err := c.tr.Pull(ctx, transport.PullRequest{Table: t.Wire(), Window: w, After: after, Page: c.page(w)})
				if err != nil {
					return nil, nil, false, err
				}
				if err := fromWire(t, p.Batch); err != nil { // this side's names (rename.go)
					return nil, nil, false, err
				}
				return p.Batch, p.Next, p.More, nil
			})
		}
		apply := func(ctx context.Context, b *batch.Batch) (gapsync.Result, *batch.Batch, error) {
			res, err := c.db.Apply(ctx, b)
			return res, b, err
		}
		pr, err = c.syncWindow(ctx, runID, t, &e, from, since, func() (string, error) { return c.tr.Bound(ctx, t.Wire()) }, scan, apply)
		return err
	}()
	e = c.record(ctx, e)
	if e.Err == nil {
		pr.finish(ctx)
	}
	return e
}

// page is the page bound of a run over w: LoadRows rows while w is a
// first load (it starts from the table's start), Page otherwise.
func (c *Coordinator) page(w gapsync.Window) gapsync.Page {
	p := c.opts.Page
	if firstLoad(w) {
		p.Rows = c.opts.LoadRows
	}
	return p
}

// firstLoad reports whether w reads its table from the start.
func firstLoad(w gapsync.Window) bool { return w.From == "" }

// window is [from, to), where a bound held back behind from (by a long
// transaction, or a clock stepped back) yields an empty window. Bounds
// compare by kind (integers as numbers); a last bound of another kind
// than the new one (the cursor column changed type) starts the table
// again from its first load, which idempotent apply makes harmless. A
// bound with a deletions part (an integer cursor with tombstones, see
// gapsync.Window) is clamped part by part, so that deletions and rows
// each advance on their own; a new deletions part after a bound without
// one reads every tombstone before it.
func window(from, to string) gapsync.Window {
	fc, fd := gapsync.SplitBound(from)
	tc, td := gapsync.SplitBound(to)
	if fc != "" && gapsync.IsIntegerBound(fc) != gapsync.IsIntegerBound(tc) {
		fc, fd = "", ""
	}
	if fc != "" && gapsync.CompareBounds(tc, fc) < 0 {
		tc = fc
	}
	if td == "" {
		fd = ""
	}
	if fd != "" && gapsync.CompareBounds(td, fd) < 0 {
		td = fd
	}
	if fc == "" {
		return gapsync.Window{To: gapsync.JoinBound(tc, td)}
	}
	return gapsync.Window{From: gapsync.JoinBound(fc, fd), To: gapsync.JoinBound(tc, td)}
}

func account(e *gapsync.LogEntry, b *batch.Batch, res gapsync.Result) {
	e.Batches++
	e.Rows += int64(len(b.Rows))
	e.Bytes += res.Bytes
	e.Written += res.Written
	if res.Duplicate {
		e.Duplicates++
	}
}

// record writes e to the sync log with a context that survives
// cancellation, so that an interrupted run still leaves its trace.
func (c *Coordinator) record(ctx context.Context, e gapsync.LogEntry) gapsync.LogEntry {
	e = c.settleRun(ctx, e) // parks a table whose rows are refused for good
	if e.Err != nil && context.Cause(ctx) != nil && context.Cause(ctx) != ctx.Err() {
		e.Err = fmt.Errorf("%w (%v)", e.Err, context.Cause(ctx))
	}
	e.FinishedAt = time.Now()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := c.db.Record(rctx, e); err != nil {
		e.Err = errors.Join(e.Err, fmt.Errorf("record sync log: %w", err))
	}
	c.synced(e)
	log := c.opts.Logger.With("run", e.RunID, "table", e.Table, "dir", e.Direction,
		"window_from", e.Window.From, "window_to", e.Window.To, "rows", e.Rows)
	if e.Err != nil {
		log.Warn("table sync failed", "err", e.Err)
	} else {
		log.Info("table synced", "batches", e.Batches, "bytes", e.Bytes, "conflicts", e.Conflicts,
			"took", e.FinishedAt.Sub(e.StartedAt))
	}
	return e
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
