package syncer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
	"github.com/gapsync/gapsync/throttle"
	"github.com/gapsync/gapsync/transport"
)

// VerifyOptions tune Coordinator.Verify. Nil gives the defaults.
type VerifyOptions struct {
	// RangeRows, when set, is how many rows each first-level range holds,
	// fixed. By default ranges are sized to RangeTime instead.
	RangeRows int
	// RangeTime is the time one first-level range should take to hash on
	// both sides, as pt-table-checksum sizes its chunks: the rows of the
	// next ranges follow the rate measured so far (a weighted average),
	// within MinRangeRows and MaxRangeRows. Default 500ms.
	RangeTime time.Duration
	// MinRangeRows and MaxRangeRows bound the sized ranges. Defaults
	// 1,000 and 10,000.
	MinRangeRows, MaxRangeRows int
	// Fanout is how many parts a differing range is split into. Default
	// 16.
	Fanout int
	// LeafRows: a differing range of at most this many rows is compared
	// row by row (a hash per row, then the values of the rows that
	// differ). Default 64.
	LeafRows int
	// Budget is the most rows one request to the gateway reads. Default
	// 100,000.
	Budget int
	// RowsPerSecond caps how many rows each side reads a second, on
	// average over the table (0: no cap), so that a verification of a
	// large table loads neither database more than that.
	RowsPerSecond int
	// Fresh starts a new verification even when the last one of the same
	// tables stopped before its end; by default Verify continues it
	// (when the internet database is a VerifyLog).
	Fresh bool
	// Until, when set, stops the verification at the first range that
	// ends after it: the progress is kept, the table reached is returned
	// with Unfinished set, and the next Verify of the same tables
	// continues there. Run verifies between cycles this way.
	Until time.Time
	// CheckpointEvery is how often the progress is kept while a table is
	// compared. Default 2s: a verification killed loses at most that.
	CheckpointEvery time.Duration
	// Throttle's busy pause is waited out after each read: while a
	// database it probes is over its limits, the verification pauses.
	// Default: the coordinator's CoordinatorOptions.Throttle.
	Throttle *throttle.Throttler
}

func (o *VerifyOptions) defaults() VerifyOptions {
	var opts VerifyOptions
	if o != nil {
		opts = *o
	}
	if opts.RangeTime <= 0 {
		opts.RangeTime = 500 * time.Millisecond
	}
	if opts.MinRangeRows <= 0 {
		opts.MinRangeRows = 1000
	}
	if opts.MaxRangeRows < opts.MinRangeRows {
		opts.MaxRangeRows = max(10_000, opts.MinRangeRows)
	}
	if opts.Fanout < 2 {
		opts.Fanout = 16
	}
	if opts.LeafRows <= 0 {
		opts.LeafRows = 64
	}
	if opts.Budget <= 0 {
		opts.Budget = 100_000
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 2 * time.Second
	}
	return opts
}

// VerifyColumner names the columns of a table that a verification
// hashes. storage's *DB is one.
type VerifyColumner interface {
	VerifyColumns(ctx context.Context, t gapsync.Table) ([]string, error)
}

// VerifyLog keeps verifications and their progress (storage's *DB keeps
// them in sync_verify and sync_verify_progress), so that one stopped
// midway, by a kill or by VerifyOptions.Until, continues where it
// stopped.
type VerifyLog interface {
	// SaveVerify keeps cp, and the rows found differing since the
	// previous checkpoint of its table (diffs), at once: after an error
	// nothing of it is kept.
	SaveVerify(ctx context.Context, cp gapsync.VerifyCheckpoint, diffs []gapsync.RowDiff) error
	// UnfinishedVerify returns the checkpoints of the newest run when it
	// was over exactly tables and stopped before its end (each with
	// every row found differing so far), nil when there is none.
	UnfinishedVerify(ctx context.Context, tables []string) ([]gapsync.VerifyCheckpoint, error)
	// LastVerify returns when the newest verification of a table
	// finished (zero when none has).
	LastVerify(ctx context.Context) (time.Time, error)
}

// Verify compares tables (names; none: every enabled table) between the
// internet database and the intranet's, through the gateway, and returns
// what differs. Each side hashes its rows by key range (only hashes cross
// the gateway); ranges that differ are split until the differing keys are
// known, and only for rows on both sides with other values do the values
// cross, to name the columns. It reads only: nothing is repaired.
//
// When the internet database is a VerifyLog, the result is kept there and
// so is the progress, every CheckpointEvery: a verification of the same
// tables after one that stopped (a process killed, or Until) continues
// from the last range kept, with the same salt, and returns the same
// report as one run in one go (TableVerify.Resumed says how much was
// carried over). Rows compared before the stop are not read again.
//
// Both sides hash values in one canonical form (rules.Canonical, by the
// column classes each side's shape gives), so the two databases may be of
// different engines (see storage.DB.HashRanges).
//
// Verify holds the coordinator's lease while it runs, as a cycle does (a
// cycle that moves rows while they are compared would make them look
// different): it returns an error wrapping gapsync.ErrLeaseHeld, having
// compared nothing, when another coordinator holds it.
func (c *Coordinator) Verify(ctx context.Context, tables []string, o *VerifyOptions) (out []gapsync.TableVerify, err error) {
	err = c.underLease(ctx, "Verify", func(ctx context.Context) error {
		out, err = c.verify(ctx, tables, o)
		return err
	})
	return out, err
}

func (c *Coordinator) verify(ctx context.Context, tables []string, o *VerifyOptions) ([]gapsync.TableVerify, error) {
	opts := o.defaults()
	if opts.Throttle == nil {
		opts.Throttle = c.opts.Throttle
	}
	local, ok1 := c.db.(RangeHasher)
	cols, ok2 := c.db.(VerifyColumner)
	remote, ok3 := c.tr.(RangeHasher)
	if !ok1 || !ok2 {
		return nil, errors.New("syncer: Verify: the internet database cannot hash ranges")
	}
	if !ok3 {
		return nil, errors.New("syncer: Verify: the transport cannot ask the gateway for range hashes")
	}
	pick, err := c.verifyTables(ctx, tables)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(pick))
	columns := map[string][]string{}
	for i, t := range pick {
		names[i] = t.Name
		if columns[t.Name], err = cols.VerifyColumns(ctx, t); err != nil {
			return nil, err
		}
	}
	sides := map[string][2]RangeHasher{}
	for _, t := range pick {
		l, r, err := renamedSides(t, columns[t.Name], local, remote)
		if err != nil {
			return nil, err
		}
		sides[t.Name] = [2]RangeHasher{l, r}
	}
	classes, sums, err := c.verifyShapes(ctx, pick, columns)
	if err != nil {
		return nil, err
	}
	runID := newID()
	vlog, _ := c.db.(VerifyLog)
	resume := map[string]gapsync.VerifyCheckpoint{}
	if vlog != nil && !opts.Fresh {
		cps, err := vlog.UnfinishedVerify(ctx, names)
		if err != nil {
			return nil, err
		}
		for _, cp := range cps {
			resume[cp.Table] = cp
			if !slices.Equal(cp.Columns, columns[cp.Table]) { // altered since: start again
				clear(resume)
				break
			}
		}
		for _, cp := range resume {
			runID = cp.RunID
		}
	}
	vr, _ := c.opts.Metrics.(VerifyRecorder)
	var out []gapsync.TableVerify
	for _, t := range pick {
		cp, resumed := resume[t.Name]
		if resumed && cp.Done {
			out = append(out, cp.TableVerify)
			continue
		}
		v := &tableVerifier{t: t, cols: columns[t.Name], classes: classes[t.Name], local: sides[t.Name][0], remote: sides[t.Name][1], opts: opts, vr: vr,
			save: func(ctx context.Context, cp gapsync.VerifyCheckpoint, diffs []gapsync.RowDiff) error { return nil }}
		if vlog != nil {
			v.save = vlog.SaveVerify
		}
		v.cp = gapsync.VerifyCheckpoint{RunID: runID, Tables: names}
		if resumed {
			v.cp, v.saved = cp, len(cp.Diffs)
			v.cp.Resumed = cp.Rows
			c.opts.Logger.Info("continuing a verification", "run", runID, "table", t.Name, "rows_before", cp.Rows, "differ_before", len(cp.Diffs))
		} else {
			salt := make([]byte, 16)
			rand.Read(salt)
			v.cp.TableVerify = gapsync.TableVerify{Table: t.Name, Columns: v.cols, Salt: salt}
		}
		if v.sum, err = v.probeSum(ctx, sums[t.Name]); err != nil {
			return out, fmt.Errorf("syncer: verify %s: %w", t.Name, err)
		}
		tv, err := v.run(ctx)
		if err != nil {
			return out, fmt.Errorf("syncer: verify %s: %w", t.Name, err)
		}
		out = append(out, tv)
		if tv.Unfinished {
			c.opts.Logger.Info("verification paused", "run", runID, "table", t.Name, "rows", tv.Rows, "differ", len(tv.Diffs))
			break
		}
		c.opts.Logger.Info("verified table", "run", runID, "table", t.Name, "ranges", tv.Ranges, "rows", tv.Rows, "differ", len(tv.Diffs), "took", tv.Took)
		if vr != nil {
			vr.TableVerified(t.Name, tv.Rows, len(tv.Diffs), time.Now())
		}
	}
	return out, nil
}

// verifyTables resolves the tables a verification names (none: every
// enabled table).
func (c *Coordinator) verifyTables(ctx context.Context, tables []string) ([]gapsync.Table, error) {
	all, err := c.tables(ctx)
	if err != nil {
		return nil, err
	}
	if len(tables) == 0 {
		return all, nil
	}
	byName := map[string]gapsync.Table{}
	for _, t := range all {
		byName[t.Name] = t
	}
	var pick []gapsync.Table
	for _, n := range tables {
		t, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("%w: %q is not enabled in the internet's sync_config", gapsync.ErrUnknownTable, n)
		}
		pick = append(pick, t)
	}
	return pick, nil
}

// verifyClasses returns, per table, the class of each of its columns
// (rules.Canonical) on the internet side and on the intranet's, as each
// side's shape says (none where a side cannot tell): the hashes of both
// sides are taken over canonical forms, and so are the comparisons here.
func (c *Coordinator) verifyClasses(ctx context.Context, tables []gapsync.Table, columns map[string][]string) (map[string][2][]string, error) {
	out, _, err := c.verifyShapes(ctx, tables, columns)
	return out, err
}

// verifyShapes is verifyClasses, and also the checksum algorithm each
// table can be compared with on the database servers (sumAlgorithm), ""
// where it cannot.
func (c *Coordinator) verifyShapes(ctx context.Context, tables []gapsync.Table, columns map[string][]string) (map[string][2][]string, map[string]string, error) {
	out, sums := map[string][2][]string{}, map[string]string{}
	local, ok1 := c.db.(ShapeReader)
	remote, ok2 := c.tr.(ShapeTransport)
	if !ok1 || !ok2 || len(tables) == 0 {
		return out, sums, nil
	}
	names, wire := make([]string, len(tables)), make([]string, len(tables))
	byWire := map[string]gapsync.Table{}
	for i, t := range tables {
		names[i], wire[i] = t.Name, t.Wire()
		byWire[t.Wire()] = t
	}
	mine, err := local.Shapes(ctx, names)
	if err != nil {
		return nil, nil, fmt.Errorf("syncer: verify: %w", err)
	}
	theirs, err := remote.Shapes(ctx, wire) // in the intranet's names
	if err != nil {
		return nil, nil, fmt.Errorf("syncer: verify: %w", err)
	}
	for i, s := range theirs {
		if t, ok := byWire[s.Name]; ok {
			theirs[i] = shapeFromWire(t, s)
		} else {
			theirs[i].Name = "" // not asked for
		}
	}
	for side, shapes := range [][]gapsync.Shape{mine, theirs} {
		for _, s := range shapes {
			cols, ok := columns[s.Name]
			if !ok {
				continue
			}
			classes := make([]string, len(cols))
			for i, col := range cols {
				cs, _ := s.Column(col)
				classes[i] = cs.Class
			}
			both := out[s.Name]
			both[side] = classes
			out[s.Name] = both
		}
	}
	byName := func(shapes []gapsync.Shape, name string) gapsync.Shape {
		for _, s := range shapes {
			if s.Name == name {
				return s
			}
		}
		return gapsync.Shape{}
	}
	for _, t := range tables {
		sums[t.Name] = c.sumAlgorithm(t, columns[t.Name], byName(mine, t.Name), byName(theirs, t.Name))
	}
	return out, sums, nil
}

// sumAlgorithm is the checksum algorithm with which t's cols can be
// compared on both database servers, so that no row is read out (see
// storage.DB.SumRanges), or "" when they cannot: the two sides must be
// the same engine, each column of the same declared type and character
// set on both (the servers hash the values as stored, not in the
// canonical form), and none of them a file reference (mapped back to
// its origin only when rows are read) or a binary float where the
// algorithm hashes its text (which could hide a difference in its last
// bits: MySQL's; PostgreSQL's hashes the bits).
func (c *Coordinator) sumAlgorithm(t gapsync.Table, cols []string, mine, theirs gapsync.Shape) string {
	sa, ok := c.db.(interface{ SumAlgorithm() string })
	if !ok || len(t.FileColumns) > 0 || !mine.Exists || !theirs.Exists || mine.Dialect != theirs.Dialect {
		return ""
	}
	exactFloats := false // the algorithm is the one of this side, and by its name the other's
	if ef, ok := c.db.(interface{ SumExactFloats() bool }); ok {
		exactFloats = ef.SumExactFloats()
	}
	if _, ok := c.db.(RangeSummer); !ok {
		return ""
	}
	if _, ok := c.tr.(RangeSummer); !ok {
		return ""
	}
	for _, col := range cols {
		a, ok1 := mine.Column(col)
		b, ok2 := theirs.Column(col)
		if !ok1 || !ok2 || a.Type != b.Type || a.Charset != b.Charset ||
			(!exactFloats && (a.Class == rules.ClassFloat32 || a.Class == rules.ClassFloat64)) {
			return ""
		}
	}
	return sa.SumAlgorithm()
}

// tableVerifier compares one table.
type tableVerifier struct {
	t             gapsync.Table
	cols          []string
	classes       [2][]string // of cols, here and there (rules.Canonical)
	local, remote RangeHasher
	// sum, when set, is the algorithm with which both database servers
	// checksum the ranges above the leaves (sumAlgorithm); "": the rows
	// are read and hashed on each side.
	sum     string
	opts    VerifyOptions
	vr      VerifyRecorder
	save    func(context.Context, gapsync.VerifyCheckpoint, []gapsync.RowDiff) error
	cp      gapsync.VerifyCheckpoint // the progress, and the result so far
	saved   int                      // how many of cp.Diffs are kept
	savedAt time.Time
	start   time.Time
	took    time.Duration // before this call
	read    [2]int64      // rows read here and there, for RowsPerSecond
	paced   time.Duration // waited for RowsPerSecond
}

// pace counts rows read on a side (0 here, 1 there) and, under
// RowsPerSecond, waits until the rate is kept.
func (v *tableVerifier) pace(ctx context.Context, side int, rows int64) error {
	v.read[side] += rows
	if err := v.opts.Throttle.Wait(ctx, v.t.Name, 0, 0); err != nil {
		return err
	}
	if v.vr != nil {
		v.vr.VerifyRead([2]string{"internet", "intranet"}[side], rows)
	}
	if v.opts.RowsPerSecond <= 0 {
		return nil
	}
	due := time.Duration(float64(max(v.read[0], v.read[1])) / float64(v.opts.RowsPerSecond) * float64(time.Second))
	wait := time.Until(v.start.Add(due))
	if wait <= 0 {
		return nil
	}
	v.paced += wait
	if v.vr != nil {
		v.vr.VerifyPaced(wait)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

func sumRows(rs []gapsync.RangeHash) int64 {
	var n int64
	for _, r := range rs {
		n += r.Rows
	}
	return n
}

// ranges asks side h for the hashes of r's ranges of per rows: the
// servers' checksums when the table is compared by them (sum), else the
// hashes of its rows read out.
func (v *tableVerifier) ranges(ctx context.Context, h RangeHasher, r gapsync.KeyRange, per, budget int) ([]gapsync.RangeHash, bool, error) {
	if v.sum != "" {
		return h.(RangeSummer).SumRanges(ctx, v.t, v.cols, r, per, budget, v.cp.Salt, v.sum)
	}
	return h.HashRanges(ctx, v.t, v.cols, r, per, budget, v.cp.Salt)
}

// probeSum returns algo when both sides checksum the table's ranges
// with it: a gateway from before, or one whose database cannot, answers
// otherwise (transport.ErrNoSum), and the rows are then hashed instead.
func (v *tableVerifier) probeSum(ctx context.Context, algo string) (string, error) {
	if algo == "" {
		return "", nil
	}
	ls, lok := v.local.(RangeSummer)
	rs, rok := v.remote.(RangeSummer)
	if !lok || !rok {
		return "", nil
	}
	if _, _, err := ls.SumRanges(ctx, v.t, v.cols, gapsync.KeyRange{}, 1, 1, v.cp.Salt, algo); err != nil {
		return "", err
	}
	_, _, err := rs.SumRanges(ctx, v.t, v.cols, gapsync.KeyRange{}, 1, 1, v.cp.Salt, algo)
	switch {
	case errors.Is(err, transport.ErrNoSum):
		return "", nil
	case err != nil:
		return "", err
	}
	return algo, nil
}

// res is the result so far.
func (v *tableVerifier) res() *gapsync.TableVerify { return &v.cp.TableVerify }

// run compares the table from its checkpoint to its end (or to Until),
// keeping the progress as it goes.
func (v *tableVerifier) run(ctx context.Context) (gapsync.TableVerify, error) {
	v.start, v.savedAt = time.Now(), time.Now()
	v.took = v.res().Took
	err := v.scan(ctx)
	v.res().Took = v.took + time.Since(v.start)
	if err == nil {
		v.cp.Done = !v.res().Unfinished
		err = v.checkpoint(ctx)
	}
	out := *v.res()
	out.Diffs = slices.Clone(out.Diffs)
	sortDiffs(out.Diffs)
	return out, err
}

// checkpoint keeps the progress and the diffs found since the last one.
func (v *tableVerifier) checkpoint(ctx context.Context) error {
	v.res().Took = v.took + time.Since(v.start)
	sortDiffs(v.res().Diffs[v.saved:]) // in key order, as the ranges go
	if err := v.save(ctx, v.cp, v.res().Diffs[v.saved:]); err != nil {
		return err
	}
	v.saved, v.savedAt = len(v.res().Diffs), time.Now()
	return nil
}

// scan compares the first-level ranges after the checkpoint, sized to
// RangeTime unless RangeRows fixes them, keeping the progress every
// CheckpointEvery.
func (v *tableVerifier) scan(ctx context.Context) error {
	size := newRangeSizer(v.opts)
	lo := v.cp.After
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // a request asked ahead is not waited for
	type batch struct {
		rs   []gapsync.RangeHash
		more bool
		took time.Duration
		err  error
	}
	// A few ranges a request: the size follows the time soon, and a stop
	// (Until, a kill) wastes little of what was read.
	ask := func(lo []any, per int) <-chan batch {
		ch := make(chan batch, 1)
		go func() {
			t0 := time.Now()
			rs, more, err := v.ranges(ctx, v.remote, gapsync.KeyRange{Lo: lo}, per, min(v.opts.Budget, per*rangesPerRequest))
			ch <- batch{rs, more, time.Since(t0), err}
		}()
		return ch
	}
	next := ask(lo, size.rows())
	for {
		b := <-next
		if b.err != nil {
			return b.err
		}
		// The intranet hashes the next ranges while these are hashed
		// here, unless a pace is kept (it would read ahead of it).
		next = nil
		if b.more && len(b.rs) > 0 && v.opts.RowsPerSecond <= 0 {
			next = ask(b.rs[len(b.rs)-1].Last, size.rows())
		}
		if err := v.pace(ctx, 1, sumRows(b.rs)); err != nil {
			return err
		}
		for _, x := range b.rs {
			v.res().Ranges++
			t1, paced := time.Now(), v.paced
			equal, err := v.compare(ctx, gapsync.KeyRange{Lo: lo, Hi: x.Last}, x.Rows, x.Hash)
			if err != nil {
				return err
			}
			if equal { // a differing range's time is the bisection's, not the range's
				size.observe(x.Rows, b.took/time.Duration(len(b.rs))+time.Since(t1)-(v.paced-paced))
			}
			lo = x.Last
			v.cp.After = lo
			if !v.opts.Until.IsZero() && time.Now().After(v.opts.Until) {
				v.res().Unfinished = true
				return nil
			}
			if time.Since(v.savedAt) >= v.opts.CheckpointEvery {
				if err := v.checkpoint(ctx); err != nil {
					return err
				}
			}
		}
		if !b.more {
			break
		}
		if next == nil {
			next = ask(lo, size.rows())
		}
	}
	// Past the intranet's last row: whatever is here.
	_, err := v.compare(ctx, gapsync.KeyRange{Lo: lo}, 0, nil)
	return err
}

// rangesPerRequest is how many first-level ranges one request asks for.
const rangesPerRequest = 4

// rangeSizer sizes first-level ranges to a time per range, the way
// pt-table-checksum's NibbleIterator sizes chunks: the rate is a
// weighted average of the rows and times seen (each earlier range counts
// 0.75 of the one after it), and the next range holds rate × target
// rows, within [lo, hi].
type rangeSizer struct {
	fixed  int
	target time.Duration
	lo, hi int
	n, t   float64 // weighted rows and seconds
}

func newRangeSizer(o VerifyOptions) *rangeSizer {
	return &rangeSizer{fixed: o.RangeRows, target: o.RangeTime, lo: o.MinRangeRows, hi: o.MaxRangeRows}
}

func (s *rangeSizer) observe(rows int64, took time.Duration) {
	s.n = s.n*0.75 + float64(rows)
	s.t = s.t*0.75 + max(took, time.Microsecond).Seconds()
}

func (s *rangeSizer) rows() int {
	if s.fixed > 0 {
		return s.fixed
	}
	if s.t == 0 {
		return s.lo
	}
	return int(min(max(s.n/s.t*s.target.Seconds(), float64(s.lo)), float64(s.hi)))
}

// walk asks the intranet for the hashes of r's ranges of per rows and
// compares each with the same range here, including what lies here past
// the intranet's last row of r.
func (v *tableVerifier) walk(ctx context.Context, r gapsync.KeyRange, per int) error {
	lo := r.Lo
	for {
		rs, more, err := v.ranges(ctx, v.remote, gapsync.KeyRange{Lo: lo, Hi: r.Hi}, per, v.opts.Budget)
		if err != nil {
			return err
		}
		if err := v.pace(ctx, 1, sumRows(rs)); err != nil {
			return err
		}
		for _, x := range rs {
			if _, err := v.compare(ctx, gapsync.KeyRange{Lo: lo, Hi: x.Last}, x.Rows, x.Hash); err != nil {
				return err
			}
			lo = x.Last
		}
		if !more {
			break
		}
	}
	// Past the intranet's last row of r: whatever is here.
	_, err := v.compare(ctx, gapsync.KeyRange{Lo: lo, Hi: r.Hi}, 0, nil)
	return err
}

// compare hashes r here and, when it differs from the intranet's n rows
// of hash h, splits it or compares it row by row. It reports whether r was equal.
func (v *tableVerifier) compare(ctx context.Context, r gapsync.KeyRange, n int64, h []byte) (bool, error) {
	ls, _, err := v.ranges(ctx, v.local, r, math.MaxInt, math.MaxInt)
	if err != nil {
		return false, err
	}
	if err := v.pace(ctx, 0, sumRows(ls)); err != nil {
		return false, err
	}
	var ln int64
	var lh []byte
	if len(ls) > 0 {
		ln, lh = ls[0].Rows, ls[0].Hash
	}
	if ln == n && (n == 0 || bytes.Equal(lh, h)) {
		v.res().Rows += n
		return true, nil
	}
	size := max(ln, n)
	if size <= int64(v.opts.LeafRows) || n == 0 { // n == 0: nothing there, every row here is missing, listed row by row
		return false, v.leaf(ctx, r)
	}
	per := int((size + int64(v.opts.Fanout) - 1) / int64(v.opts.Fanout))
	return false, v.walk(ctx, r, per)
}

// leaf compares r row by row: a hash per row from each side, then the
// values of the rows on both sides whose hashes differ.
func (v *tableVerifier) leaf(ctx context.Context, r gapsync.KeyRange) error {
	read := func(h RangeHasher, side int) ([]gapsync.RangeHash, error) {
		var all []gapsync.RangeHash
		lo := r.Lo
		for {
			rs, more, err := h.HashRanges(ctx, v.t, v.cols, gapsync.KeyRange{Lo: lo, Hi: r.Hi}, 1, v.opts.Budget, v.cp.Salt)
			if err != nil {
				return nil, err
			}
			if err := v.pace(ctx, side, sumRows(rs)); err != nil {
				return nil, err
			}
			all = append(all, rs...)
			if !more || len(rs) == 0 {
				return all, nil
			}
			lo = rs[len(rs)-1].Last
		}
	}
	mine, err := read(v.local, 0)
	if err != nil {
		return err
	}
	theirs, err := read(v.remote, 1)
	if err != nil {
		return err
	}
	far, near := gapsync.Intranet, gapsync.Internet
	if v.t.Direction == gapsync.Pull {
		far, near = gapsync.Internet, gapsync.Intranet
	}
	onlyKind := func(side gapsync.Side) gapsync.DiffKind { // the row is only on side
		if side == near {
			return gapsync.DiffMissing
		}
		return gapsync.DiffExtra
	}
	// Keys match by their canonical form: the two sides may be engines
	// that read one key in two forms.
	keyPos := rules.Positions(v.cols, v.t.Key)
	keyClasses := [2][]string{make([]string, len(keyPos)), make([]string, len(keyPos))}
	for side := range keyClasses {
		for i, p := range keyPos {
			keyClasses[side][i] = classOf(v.classes[side], p)
		}
	}
	there := map[string][]byte{}
	for _, x := range theirs {
		there[rules.VerifyKey(keyClasses[1], x.Last)] = x.Hash
	}
	here := map[string]bool{}
	var changed [][]any
	var hashes [][2][]byte // of changed: internet's, intranet's
	for _, x := range mine {
		kh := rules.VerifyKey(keyClasses[0], x.Last)
		here[kh] = true
		th, ok := there[kh]
		switch {
		case !ok:
			v.res().Diffs = append(v.res().Diffs, gapsync.RowDiff{Table: v.t.Name, Key: x.Last, Kind: onlyKind(gapsync.Internet), Side: far, InternetHash: x.Hash})
		case !bytes.Equal(th, x.Hash):
			changed = append(changed, x.Last)
			hashes = append(hashes, [2][]byte{x.Hash, th})
		}
	}
	for _, x := range theirs {
		if !here[rules.VerifyKey(keyClasses[1], x.Last)] {
			v.res().Diffs = append(v.res().Diffs, gapsync.RowDiff{Table: v.t.Name, Key: x.Last, Kind: onlyKind(gapsync.Intranet), Side: far, IntranetHash: x.Hash})
		}
	}
	v.res().Rows += int64(len(here))
	for kh := range there {
		if !here[kh] {
			v.res().Rows++
		}
	}
	if len(changed) == 0 {
		return nil
	}
	lv, err := v.local.RowsByKey(ctx, v.t, v.cols, changed)
	if err != nil {
		return err
	}
	rv, err := v.remote.RowsByKey(ctx, v.t, v.cols, changed)
	if err != nil {
		return err
	}
	for i, k := range changed {
		d := gapsync.RowDiff{Table: v.t.Name, Key: k, Kind: gapsync.DiffChanged, Side: far, InternetHash: hashes[i][0], IntranetHash: hashes[i][1]}
		if lv[i] == nil || rv[i] == nil { // changed between the two reads
			d.Kind = onlyKind(gapsync.Intranet)
			d.InternetHash = nil
			if rv[i] == nil {
				d.Kind = onlyKind(gapsync.Internet)
				d.InternetHash, d.IntranetHash = hashes[i][0], nil
			}
		} else {
			d.Columns = differingColumns(v.cols, v.classes, lv[i], rv[i])
		}
		v.res().Diffs = append(v.res().Diffs, d)
	}
	return nil
}

// differingColumns names the columns whose values (a here, b there)
// differ in their canonical form (rules.Canonical, by each side's
// classes).
func differingColumns(cols []string, classes [2][]string, a, b []any) []string {
	var out []string
	for i, c := range cols {
		x, _ := batch.AppendValue(nil, rules.Canonical(classOf(classes[0], i), a[i]))
		y, _ := batch.AppendValue(nil, rules.Canonical(classOf(classes[1], i), b[i]))
		if !bytes.Equal(x, y) {
			out = append(out, c)
		}
	}
	return out
}

func classOf(classes []string, i int) string {
	if i < len(classes) {
		return classes[i]
	}
	return ""
}

// sortDiffs puts diffs in key order (numbers, and text that reads as a
// number, as numbers; other text and bytes as bytes).
func sortDiffs(ds []gapsync.RowDiff) {
	sort.SliceStable(ds, func(i, j int) bool { return compareKeys(ds[i].Key, ds[j].Key) < 0 })
}

func compareKeys(a, b []any) int {
	for i := range min(len(a), len(b)) {
		if c := compareValue(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func compareValue(a, b any) int {
	num := func(v any) (float64, bool) {
		switch x := v.(type) {
		case int64:
			return float64(x), true
		case uint64:
			return float64(x), true
		case float64:
			return x, true
		case string: // an engine that reads numbers as text (PostgreSQL)
			f, err := strconv.ParseFloat(x, 64)
			return f, err == nil
		case []byte:
			f, err := strconv.ParseFloat(string(x), 64)
			return f, err == nil
		}
		return 0, false
	}
	if x, ok := num(a); ok {
		if y, ok := num(b); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return bytes.Compare([]byte(fmt.Sprint(textOf(a))), []byte(fmt.Sprint(textOf(b))))
}

func textOf(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}
