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
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
)

// VerifyOptions tune Coordinator.Verify. Nil gives the defaults.
type VerifyOptions struct {
	// RangeRows is how many rows each first-level range holds. Default
	// 1000.
	RangeRows int
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
}

// VerifyColumner names the columns of a table that a verification
// hashes. storage's *DB is one.
type VerifyColumner interface {
	VerifyColumns(ctx context.Context, t gapsync.Table) ([]string, error)
}

// VerifyLog keeps verification results (storage's *DB keeps them in
// sync_verify).
type VerifyLog interface {
	RecordVerify(ctx context.Context, runID string, v gapsync.TableVerify) error
}

// Verify compares tables (names; none: every enabled table) between the
// internet database and the intranet's, through the gateway, and returns
// what differs. Each side hashes its rows by key range (only hashes cross
// the gateway); ranges that differ are split until the differing keys are
// known, and only for rows on both sides with other values do the values
// cross, to name the columns. The result is kept in the internet
// database when it is a VerifyLog. It reads only: nothing is repaired.
//
// Hashes agree only between two databases of the same engine (see
// storage.DB.HashRanges).
func (c *Coordinator) Verify(ctx context.Context, tables []string, o *VerifyOptions) ([]gapsync.TableVerify, error) {
	var opts VerifyOptions
	if o != nil {
		opts = *o
	}
	if opts.RangeRows <= 0 {
		opts.RangeRows = 1000
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
	local, ok1 := c.db.(RangeHasher)
	cols, ok2 := c.db.(VerifyColumner)
	remote, ok3 := c.tr.(RangeHasher)
	if !ok1 || !ok2 {
		return nil, errors.New("syncer: Verify: the internet database cannot hash ranges")
	}
	if !ok3 {
		return nil, errors.New("syncer: Verify: the transport cannot ask the gateway for range hashes")
	}
	all, err := c.tables(ctx)
	if err != nil {
		return nil, err
	}
	var pick []gapsync.Table
	if len(tables) == 0 {
		pick = all
	} else {
		byName := map[string]gapsync.Table{}
		for _, t := range all {
			byName[t.Name] = t
		}
		for _, n := range tables {
			t, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("%w: %q is not enabled in the internet's sync_config", gapsync.ErrUnknownTable, n)
			}
			pick = append(pick, t)
		}
	}
	if err := c.sameEngines(ctx, pick); err != nil {
		return nil, err
	}
	runID := newID()
	vlog, _ := c.db.(VerifyLog)
	var out []gapsync.TableVerify
	for _, t := range pick {
		names, err := cols.VerifyColumns(ctx, t)
		if err != nil {
			return out, err
		}
		salt := make([]byte, 16)
		rand.Read(salt)
		v := &tableVerifier{t: t, cols: names, local: local, remote: remote, opts: opts, salt: salt}
		start := time.Now()
		tv, err := v.run(ctx)
		tv.Took = time.Since(start)
		if err != nil {
			return out, fmt.Errorf("syncer: verify %s: %w", t.Name, err)
		}
		c.opts.Logger.Info("verified table", "table", t.Name, "ranges", tv.Ranges, "rows", tv.Rows, "differ", len(tv.Diffs), "took", tv.Took)
		if vlog != nil {
			if err := vlog.RecordVerify(ctx, runID, tv); err != nil {
				return out, err
			}
		}
		out = append(out, tv)
	}
	return out, nil
}

// sameEngines refuses tables whose two sides are databases of different
// engines (as the setup check's shapes tell, where both sides can say):
// their hashes would differ for every row.
func (c *Coordinator) sameEngines(ctx context.Context, tables []gapsync.Table) error {
	local, ok1 := c.db.(ShapeReader)
	remote, ok2 := c.tr.(ShapeTransport)
	if !ok1 || !ok2 || len(tables) == 0 {
		return nil
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Name
	}
	mine, err := local.Shapes(ctx, names)
	if err != nil {
		return fmt.Errorf("syncer: verify: %w", err)
	}
	theirs, err := remote.Shapes(ctx, names)
	if err != nil {
		return fmt.Errorf("syncer: verify: %w", err)
	}
	engine := map[string]string{}
	for _, s := range theirs {
		engine[s.Name] = s.Dialect
	}
	for _, s := range mine {
		if e, ok := engine[s.Name]; ok && s.Dialect != "" && e != "" && e != s.Dialect && slices.Contains(names, s.Name) {
			return fmt.Errorf("syncer: verify %s: the internet side is %s and the intranet %s; a verification compares "+
				"databases of the same engine only (each hashes the values in its driver's form)", s.Name, s.Dialect, e)
		}
	}
	return nil
}

// tableVerifier compares one table.
type tableVerifier struct {
	t             gapsync.Table
	cols          []string
	local, remote RangeHasher
	opts          VerifyOptions
	salt          []byte
	res           gapsync.TableVerify
	start         time.Time
	read          [2]int64 // rows read here and there, for RowsPerSecond
}

// pace counts rows read on a side (0 here, 1 there) and, under
// RowsPerSecond, waits until the rate is kept.
func (v *tableVerifier) pace(ctx context.Context, side int, rows int64) error {
	v.read[side] += rows
	if v.opts.RowsPerSecond <= 0 {
		return nil
	}
	due := time.Duration(float64(max(v.read[0], v.read[1])) / float64(v.opts.RowsPerSecond) * float64(time.Second))
	wait := time.Until(v.start.Add(due))
	if wait <= 0 {
		return nil
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

func (v *tableVerifier) run(ctx context.Context) (gapsync.TableVerify, error) {
	v.res.Table, v.res.Columns, v.res.Salt = v.t.Name, v.cols, v.salt
	v.start = time.Now()
	err := v.walk(ctx, gapsync.KeyRange{}, v.opts.RangeRows, true)
	sortDiffs(v.res.Diffs)
	return v.res, err
}

// walk asks the intranet for the hashes of r's ranges of per rows and
// compares each with the same range here, including what lies here past
// the intranet's last row of r.
func (v *tableVerifier) walk(ctx context.Context, r gapsync.KeyRange, per int, top bool) error {
	lo := r.Lo
	for {
		rs, more, err := v.remote.HashRanges(ctx, v.t, v.cols, gapsync.KeyRange{Lo: lo, Hi: r.Hi}, per, v.opts.Budget, v.salt)
		if err != nil {
			return err
		}
		if err := v.pace(ctx, 1, sumRows(rs)); err != nil {
			return err
		}
		for _, x := range rs {
			if top {
				v.res.Ranges++
			}
			if err := v.compare(ctx, gapsync.KeyRange{Lo: lo, Hi: x.Last}, x.Rows, x.Hash); err != nil {
				return err
			}
			lo = x.Last
		}
		if !more {
			break
		}
	}
	// Past the intranet's last row of r: whatever is here.
	return v.compare(ctx, gapsync.KeyRange{Lo: lo, Hi: r.Hi}, 0, nil)
}

// compare hashes r here and, when it differs from the intranet's n rows
// of hash h, splits it or compares it row by row.
func (v *tableVerifier) compare(ctx context.Context, r gapsync.KeyRange, n int64, h []byte) error {
	ls, _, err := v.local.HashRanges(ctx, v.t, v.cols, r, math.MaxInt, math.MaxInt, v.salt)
	if err != nil {
		return err
	}
	if err := v.pace(ctx, 0, sumRows(ls)); err != nil {
		return err
	}
	var ln int64
	var lh []byte
	if len(ls) > 0 {
		ln, lh = ls[0].Rows, ls[0].Hash
	}
	if ln == n && (n == 0 || bytes.Equal(lh, h)) {
		v.res.Rows += n
		return nil
	}
	size := max(ln, n)
	if size <= int64(v.opts.LeafRows) {
		return v.leaf(ctx, r)
	}
	if n == 0 { // nothing there: every row here is missing, listed row by row
		return v.leaf(ctx, r)
	}
	per := int((size + int64(v.opts.Fanout) - 1) / int64(v.opts.Fanout))
	return v.walk(ctx, r, per, false)
}

// leaf compares r row by row: a hash per row from each side, then the
// values of the rows on both sides whose hashes differ.
func (v *tableVerifier) leaf(ctx context.Context, r gapsync.KeyRange) error {
	read := func(h RangeHasher, side int) ([]gapsync.RangeHash, error) {
		var all []gapsync.RangeHash
		lo := r.Lo
		for {
			rs, more, err := h.HashRanges(ctx, v.t, v.cols, gapsync.KeyRange{Lo: lo, Hi: r.Hi}, 1, v.opts.Budget, v.salt)
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
	there := map[string][]byte{}
	for _, x := range theirs {
		there[rules.KeyHash(x.Last)] = x.Hash
	}
	here := map[string]bool{}
	var changed [][]any
	var hashes [][2][]byte // of changed: internet's, intranet's
	for _, x := range mine {
		kh := rules.KeyHash(x.Last)
		here[kh] = true
		th, ok := there[kh]
		switch {
		case !ok:
			v.res.Diffs = append(v.res.Diffs, gapsync.RowDiff{Table: v.t.Name, Key: x.Last, Kind: onlyKind(gapsync.Internet), Side: far, InternetHash: x.Hash})
		case !bytes.Equal(th, x.Hash):
			changed = append(changed, x.Last)
			hashes = append(hashes, [2][]byte{x.Hash, th})
		}
	}
	for _, x := range theirs {
		if !here[rules.KeyHash(x.Last)] {
			v.res.Diffs = append(v.res.Diffs, gapsync.RowDiff{Table: v.t.Name, Key: x.Last, Kind: onlyKind(gapsync.Intranet), Side: far, IntranetHash: x.Hash})
		}
	}
	v.res.Rows += int64(len(here))
	for kh := range there {
		if !here[kh] {
			v.res.Rows++
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
			d.Columns = differingColumns(v.cols, lv[i], rv[i])
		}
		v.res.Diffs = append(v.res.Diffs, d)
	}
	return nil
}

// differingColumns names the columns whose values differ in their wire
// form.
func differingColumns(cols []string, a, b []any) []string {
	var out []string
	for i, c := range cols {
		x, _ := batch.AppendValue(nil, rules.Normalize(a[i]))
		y, _ := batch.AppendValue(nil, rules.Normalize(b[i]))
		if !bytes.Equal(x, y) {
			out = append(out, c)
		}
	}
	return out
}

// sortDiffs puts diffs in key order (numbers as numbers, text and bytes
// as bytes).
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
