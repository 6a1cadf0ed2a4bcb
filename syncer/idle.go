package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/transport"
)

// A cycle over many tables with nothing to move asks for all of them at
// once before any table runs: the open checkpoints, the last good
// windows, and, per side, which next windows are empty (the bound taken
// as a run takes it, then the window looked at). The empty ones are
// logged in one insert, as runs that moved nothing; only the others run
// their windows. A table with a checkpoint, columns awaited on the
// receiving side (drift.go), no good run yet or a reload runs its window
// the usual way, as does every table when a batched read fails.

// Batcher is implemented by an internet database that answers for many
// tables at once (storage's *DB is one); with it, and a Transport that is
// a RemoteEmpty for the pulled tables, idle tables cost a bounded number
// of statements and requests per cycle instead of several per table.
type Batcher interface {
	// LastWindows is Journal.LastWindow for many tables in direction d:
	// the bound of each one's newest good run (or reload), keyed by
	// table; a table without one is absent.
	LastWindows(ctx context.Context, tables []string, d gapsync.Direction) (map[string]string, error)
	// Checkpoints returns every stored checkpoint (Checkpointer), not
	// validated: the tables with a window in progress.
	Checkpoints(ctx context.Context) ([]gapsync.Checkpoint, error)
	// RecordAll is Journal.Record for many entries; durable when it
	// returns.
	RecordAll(ctx context.Context, es []gapsync.LogEntry) error
	EmptyChecker
}

// EmptyChecker tells which tables' next windows hold nothing to move.
// storage's *DB is one; a gateway whose intranet database is one answers
// RemoteEmpty requests.
type EmptyChecker interface {
	// EmptyWindows returns, for each table ts[i] whose last good bound
	// is from[i], the bound Bound would return now when the window from
	// from[i] to it holds no change to send, else "" (the window must
	// run: it may hold changes, or the table cannot be told this way).
	// The bound must hold back before open writers as Bound does, and
	// the window must be looked at after the bound is taken. Retrying is
	// safe.
	EmptyWindows(ctx context.Context, ts []gapsync.Table, from []string) ([]string, error)
}

// RemoteEmpty is implemented by a Transport whose gateway answers
// EmptyChecker for the intranet's pulled tables, by their intranet names
// (transport's *Client is one).
type RemoteEmpty interface {
	EmptyWindows(ctx context.Context, probes []transport.WindowProbe) ([]string, error)
}

// quietRuns finds the tables and directions of this cycle whose windows
// are empty, records their runs in one insert and returns them keyed by
// "direction table". A table synced both ways whose pull has something
// to move runs its push the usual way too, after the pull, as before.
// On any error it logs and returns what it recorded (nothing).
func (c *Coordinator) quietRuns(ctx context.Context, runID string, tables []gapsync.Table, parked map[string]gapsync.Parked,
	open map[string][]gapsync.MissingColumn) map[string]gapsync.LogEntry {
	b, ok := c.db.(Batcher)
	if !ok || len(tables) == 0 {
		return nil
	}
	start := time.Now()
	cps, err := b.Checkpoints(ctx)
	if err != nil {
		c.opts.Logger.Warn("batched check of idle tables skipped; every table runs its window", "err", err)
		return nil
	}
	busy := map[string]bool{}
	for _, cp := range cps {
		busy[string(cp.Direction)+" "+cp.Table] = true
	}
	quiet := map[string]bool{}
	var es []gapsync.LogEntry
	for _, d := range []gapsync.Direction{gapsync.Pull, gapsync.Push} {
		var cand []gapsync.Table
		for _, t := range tables {
			k := string(d) + " " + t.Name
			if !t.Allows(d) || busy[k] || len(open[driftKey(string(d), t.Name)]) > 0 {
				continue
			}
			if _, ok := parked[k]; ok {
				continue
			}
			if pk := string(gapsync.Pull) + " " + t.Name; d == gapsync.Push && t.Allows(gapsync.Pull) && !quiet[pk] {
				if _, ok := parked[pk]; !ok {
					continue // its pull runs first, then its push
				}
			}
			cand = append(cand, t)
		}
		if len(cand) == 0 {
			continue
		}
		e, err := c.emptyWindows(ctx, b, d, cand)
		if err != nil {
			c.opts.Logger.Warn("batched check of idle tables skipped; every table runs its window", "dir", d, "err", err)
			return nil
		}
		for _, x := range e {
			x.RunID, x.StartedAt = runID, start
			quiet[string(d)+" "+x.Table] = true
			es = append(es, x)
		}
	}
	if len(es) == 0 {
		return nil
	}
	now := time.Now()
	for i := range es {
		es[i].FinishedAt = now
	}
	if ctx.Err() != nil { // the lease was lost, or the cycle stopped: its tables log that
		return nil
	}
	if err := b.RecordAll(ctx, es); err != nil {
		c.opts.Logger.Warn("record the idle tables' runs; every table runs its window", "err", err)
		return nil
	}
	out := make(map[string]gapsync.LogEntry, len(es))
	for _, e := range es {
		out[string(e.Direction)+" "+e.Table] = e
		c.synced(e)
		c.opts.Logger.Debug("table synced", "run", e.RunID, "table", e.Table, "dir", e.Direction,
			"window_from", e.Window.From, "window_to", e.Window.To, "rows", 0)
	}
	c.opts.Logger.Info("tables with nothing to move", "run", runID, "runs", len(es), "took", time.Since(start))
	return out
}

// emptyWindows returns the log entries (window set, nothing moved) of
// the tables of cand whose next window in d is empty.
func (c *Coordinator) emptyWindows(ctx context.Context, b Batcher, d gapsync.Direction, cand []gapsync.Table) ([]gapsync.LogEntry, error) {
	names := make([]string, len(cand))
	for i, t := range cand {
		names[i] = t.Name
	}
	last, err := b.LastWindows(ctx, names, d)
	if err != nil {
		return nil, err
	}
	// A table with no window logged yet (its first load to come) has
	// nothing to ask about: it runs its window.
	var from []string
	logged := cand[:0:0]
	for _, t := range cand {
		if f := last[t.Name]; f != "" {
			logged, from = append(logged, t), append(from, f)
		}
	}
	if cand = logged; len(cand) == 0 {
		return nil, nil
	}
	var bounds []string
	if d == gapsync.Push {
		bounds, err = b.EmptyWindows(ctx, cand, from)
	} else {
		re, ok := c.tr.(RemoteEmpty)
		if !ok {
			return nil, nil
		}
		probes := make([]transport.WindowProbe, 0, len(cand))
		for i, t := range cand {
			probes = append(probes, transport.WindowProbe{Table: t.Wire(), From: from[i]})
		}
		bounds, err = re.EmptyWindows(ctx, probes)
	}
	if err != nil {
		return nil, err
	}
	if len(bounds) != len(cand) {
		return nil, fmt.Errorf("%w: %d answers for %d tables", gapsync.ErrMalformed, len(bounds), len(cand))
	}
	var out []gapsync.LogEntry
	for i, t := range cand {
		if bounds[i] == "" || from[i] == "" || !gapsync.ValidBound(bounds[i]) {
			continue
		}
		out = append(out, gapsync.LogEntry{Table: t.Name, Direction: d, Window: window(from[i], bounds[i])})
	}
	return out, nil
}

// empty answers a RemoteEmpty request: which pulled tables' next windows
// hold nothing to move, from the intranet database (SELECT only). A
// table not enabled for pull here, and every table when the intranet
// database is no EmptyChecker, gets "": its window runs, and its own
// requests say what is wrong.
func (g *Gateway) empty(ctx context.Context, body []byte) ([]byte, error) {
	var r transport.EmptyRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: empty windows request: %v", gapsync.ErrMalformed, err)
	}
	if len(r.Tables) > transport.MaxWindowProbes {
		return nil, fmt.Errorf("%w: empty windows request for %d tables, over %d", gapsync.ErrMalformed, len(r.Tables), transport.MaxWindowProbes)
	}
	for _, p := range r.Tables {
		if err := gapsync.ValidIdentifier(p.Table); err != nil {
			return nil, err
		}
		if p.From == "" || !gapsync.ValidBound(p.From) {
			return nil, fmt.Errorf("%w: empty windows request: bound %.64q of %s", gapsync.ErrMalformed, p.From, p.Table)
		}
	}
	out := make([]string, len(r.Tables))
	ec, ok := g.db.(EmptyChecker)
	if !ok || len(r.Tables) == 0 {
		return json.Marshal(transport.EmptyResponse{Bounds: out})
	}
	conf := map[string]gapsync.Table{}
	if l, ok := g.db.(interface {
		Tables(ctx context.Context, d gapsync.Direction) ([]gapsync.Table, error)
	}); ok {
		ts, err := l.Tables(ctx, gapsync.Pull)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			conf[t.Name] = t
		}
	} else {
		for _, p := range r.Tables {
			if t, err := g.db.Table(ctx, p.Table, gapsync.Pull); err == nil {
				conf[p.Table] = t
			}
		}
	}
	var (
		ts   []gapsync.Table
		from []string
		at   []int
	)
	for i, p := range r.Tables {
		if t, ok := conf[p.Table]; ok {
			ts, from, at = append(ts, t), append(from, p.From), append(at, i)
		}
	}
	bounds, err := ec.EmptyWindows(ctx, ts, from)
	if err != nil {
		return nil, err
	}
	if len(bounds) != len(ts) {
		return nil, fmt.Errorf("syncer: EmptyWindows gave %d answers for %d tables", len(bounds), len(ts))
	}
	quiet := 0
	for k, i := range at {
		out[i] = bounds[k]
		if out[i] != "" {
			quiet++
		}
	}
	g.opts.Logger.Info("served empty windows", "tables", len(r.Tables), "empty", quiet)
	return json.Marshal(transport.EmptyResponse{Bounds: out})
}
