package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/pathmap"
)

// Plan is what an adapter's Check and Ready learn of an arriving batch
// before anything is written: the configured table, the batch's columns
// as they will be written, and what the two-way rules need to know about
// the table here.
type Plan struct {
	// Table is the table's configuration on this side.
	Table gapsync.Table
	// Names are the batch's column names after Check: columns the table
	// lacks here are taken out of the batch and listed in Missing.
	Names   []string
	Missing []string
	// Load is whether the batch is a page of a first load
	// (batch.FlagLoad), set by Apply before BeginApply: its transaction
	// may then be given rows to InsertNew.
	Load bool

	// The rest is set by Ready, for a table synced both ways only.

	// Sent are the columns this side reads of the table for sending (the
	// form its page reader hashes rows in, and so the form the version
	// ledger holds); they may be more than Names.
	Sent []string
	// Tombstones is whether the table has a tombstone table here.
	Tombstones bool
	// IntegerCursor is whether the table's cursor is an integer: its
	// tombstones then carry the deleted row's last cursor after the
	// deletion time (see ApplyTx.Tombstones).
	IntegerCursor bool
	// ReadBack is whether rows written must be read back before they are
	// hashed, because the table may change what was written (a trigger,
	// an ON UPDATE clause, a generated column, a default for a column the
	// batch lacks, a column type that alters values).
	ReadBack bool
}

// Applier is what a database adapter offers Apply: the checks and reads
// that come before the transaction, and the transaction itself. Methods
// may be called concurrently for different batches.
type Applier interface {
	// Check validates b against this side's configuration and the target
	// table, and returns the plan with Table, Names and Missing set. It
	// refuses, with the matching gapsync sentinel: a batch without an id
	// or direction (ErrMalformed), a table not enabled here for b's
	// direction (ErrUnknownTable), invalid identifiers (ErrBadIdentifier),
	// a column named twice or rows that do not fit the columns
	// (ErrMalformed), a key flag that disagrees with the configuration
	// (ErrMalformed), and a missing key column, or the missing cursor of a
	// two-way table (ErrUnknownColumn). Other columns the table lacks are
	// taken out of b (columns and values) and listed in Plan.Missing. It
	// writes nothing.
	Check(ctx context.Context, b *batch.Batch) (Plan, error)
	// Applied returns the result MarkApplied recorded for batch id, with
	// Duplicate set, and false when id was never applied here.
	Applied(ctx context.Context, id string) (gapsync.Result, bool, error)
	// Ready puts b's values in this engine's form (the form its page
	// reader reads back, so that hashes agree), refusing a value a column
	// cannot hold exactly, and refuses a batch older than the replay
	// horizon; for a two-way table it sets the rest of p. It writes
	// nothing. Everything it reads is read before BeginApply: a
	// transaction that waits for a second pooled connection can deadlock
	// on some engines.
	Ready(ctx context.Context, p *Plan, b *batch.Batch) error
	// MapForeign maps references to the other side's files to this
	// side's published copies (the path mapping); a reference with no
	// copy here is absent from the map.
	MapForeign(ctx context.Context, refs []string) (map[string]string, error)
	// BeginApply starts the transaction that every write of one batch
	// shares. Rollback after Commit is a no-op.
	BeginApply(ctx context.Context, p Plan) (ApplyTx, error)
}

// ApplyTx is one batch's transaction: the primitives Apply runs the rules
// over. Keys are a row's key values in configured key order; rows come
// back by KeyHash of their key. Nothing is visible to others before
// Commit, and nothing remains after Rollback.
type ApplyTx interface {
	// Rows returns the rows of table whose key columns key hold keys,
	// the columns names in order, in the form the page reader reads them. With lock,
	// the rows are locked against concurrent writers until the end of the
	// transaction where the engine can.
	Rows(ctx context.Context, table string, names, key []string, keys [][]any, lock bool) (map[string][]any, error)
	// Tombstones returns t's tombstones for keys: the key values, the
	// deletion time and, for an integer cursor, the deleted row's last
	// cursor value. A key without one is absent.
	Tombstones(ctx context.Context, t gapsync.Table, keys [][]any) (map[string][]any, error)
	// WriteTombstones upserts t's tombstones, each laid out as Tombstones
	// returns them.
	WriteTombstones(ctx context.Context, t gapsync.Table, rows [][]any) error
	// Versions returns the version ledger's state hashes for the key
	// hashes khs of table; a key without an entry is absent.
	Versions(ctx context.Context, table string, khs []string) (map[string]string, error)
	// RecordVersions sets the ledger's state hash hashes[i] for khs[i].
	RecordVersions(ctx context.Context, table string, khs, hashes []string) error
	// Upsert inserts or replaces rows (values in the order of names) by
	// key and returns the count the engine reports. It sizes statements
	// to its own limits, and refuses a row larger than one statement may
	// be with gapsync.ErrTooLarge.
	Upsert(ctx context.Context, table string, names, key []string, rows []batch.Row) (int64, error)
	// Delete deletes the rows with keys and returns how many there were.
	Delete(ctx context.Context, table string, key []string, keys [][]any) (int64, error)
	// RefOrigins returns, for the key hashes khs of table, the RefHash of
	// every file reference recorded as having arrived from the other side
	// in that row.
	RefOrigins(ctx context.Context, table string, khs []string) (map[string]map[string]bool, error)
	// ChangeRefOrigins deletes the recorded origins drop (key hash, ref
	// hash) of table and records add.
	ChangeRefOrigins(ctx context.Context, table string, drop [][2]string, add []RefOrigin) error
	// MarkApplied records res (its batch id) in the applied-batch ledger
	// and returns the time it records, in the form Result.AppliedAt takes.
	// false means the id is there already: a concurrent delivery of the
	// same batch committed first, and the caller rolls back.
	MarkApplied(ctx context.Context, b *batch.Batch, res gapsync.Result) (at string, ok bool, err error)
	Commit() error
	Rollback() error
}

// NewRowInserter is an ApplyTx that can write rows expected to have no
// row here yet faster than Upsert (PostgreSQL's COPY). Apply gives it the
// rows of a first load's page (batch.FlagLoad) that have no row here.
type NewRowInserter interface {
	// InsertNew writes rows as Upsert does, for rows whose keys are
	// expected to have no row in table: where one has after all, the
	// result is Upsert's (the row is replaced), at about the cost of an
	// Upsert more. It returns the count the engine reports.
	InsertNew(ctx context.Context, table string, names, key []string, rows []batch.Row) (int64, error)
}

// RefOrigin records that the file reference Ref, in the row whose key
// hashes to KeyHash, arrived from the other side (so it is the other
// side's file, whatever its text).
type RefOrigin struct {
	KeyHash, RefHash, Ref string
}

// Apply writes an arriving batch through a, by the rules: idempotently by
// batch id (a batch applied already returns its first result with
// Duplicate set); references to the other side's files published here
// become this side's; for a table synced both ways, a row whose key has a
// local change that has not travelled is a conflict, left as it is and
// returned in Result.Conflicts (unless the batch is forced), the version
// ledger learns the state of each row written (so that it is not sent
// back), and tombstones of applied deletions are stamped with the
// deletion's own cursor. The rows, the ledgers and the batch id commit
// together or not at all. In a page of a first load, the rows with no row
// here go to the transaction's InsertNew where it has one
// (NewRowInserter).
//
// Errors from a are wrapped once with the table and batch id; a refusal
// from Check comes back as it is.
func Apply(ctx context.Context, a Applier, b *batch.Batch) (gapsync.Result, error) {
	res := gapsync.Result{BatchID: b.ID, Table: b.Table, Rows: len(b.Rows), Bytes: b.Bytes()}
	p, err := a.Check(ctx, b)
	if err != nil {
		return res, err
	}
	res.Missing = p.Missing
	if prev, ok, err := a.Applied(ctx, b.ID); err != nil {
		return res, err
	} else if ok {
		prev.Missing = p.Missing
		return prev, nil
	}
	fail := func(err error) (gapsync.Result, error) {
		return res, fmt.Errorf("apply %s batch %s: %w", b.Table, b.ID, err)
	}
	if err := a.Ready(ctx, &p, b); err != nil {
		return fail(err)
	}
	t, names := p.Table, p.Names
	// The references as they arrived are the other side's (origins);
	// those published here become this side's addresses before anything
	// is hashed or written.
	arrived := arrivingRefs(t, names, b)
	if f, ok := finderOf(t); ok {
		m, err := a.MapForeign(ctx, refsOf(f, names, b.Rows))
		if err != nil {
			return fail(err)
		}
		mapRefs(f, names, b.Rows, m)
	}
	p.Load = b.Flags&batch.FlagLoad != 0
	tx, err := a.BeginApply(ctx, p)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	rows := b.Rows
	two := t.Direction == gapsync.Both
	var local map[string][]any // the rows here before the batch (two-way tables)
	if two {
		var conflicts []batch.Row
		if rows, conflicts, local, err = settle(ctx, tx, p, b); err != nil {
			return fail(err)
		}
		if len(conflicts) > 0 {
			cb := &batch.Batch{ID: b.ID, Table: b.Table, Columns: b.Columns, Rows: conflicts}
			if res.Conflicts, err = cb.MarshalBinary(); err != nil {
				return fail(err)
			}
		}
	}
	keyPos := Positions(names, t.Key)
	var upserts []batch.Row
	var deletes [][]any
	for _, r := range rows {
		if r.Op == batch.OpDelete {
			deletes = append(deletes, Pick(r.Values, keyPos))
		} else {
			upserts = append(upserts, r)
		}
	}
	n, err := write(ctx, tx, p, upserts, local)
	if err != nil {
		return fail(err)
	}
	res.Written += n
	if n, err = tx.Delete(ctx, t.Name, t.Key, deletes); err != nil {
		return fail(err)
	}
	res.Written += n
	if err := recordOrigins(ctx, tx, t, names, rows, arrived, local); err != nil {
		return fail(err)
	}
	if two {
		if err := recordStates(ctx, tx, p, rows); err != nil {
			return fail(err)
		}
	}
	at, ok, err := tx.MarkApplied(ctx, b, res)
	if err != nil {
		return fail(fmt.Errorf("ledger: %w", err))
	}
	if !ok {
		// A concurrent delivery of the same batch committed first.
		tx.Rollback()
		prev, _, err := a.Applied(ctx, b.ID)
		return prev, err
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	res.AppliedAt = at
	return res, nil
}

// write upserts rows. In a page of a first load (batch.FlagLoad) the
// rows without a row here (all of them for a table synced one way, which
// keeps no record of what arrived) go to the transaction's InsertNew
// where it has one; what the rows become is the same either way.
func write(ctx context.Context, tx ApplyTx, p Plan, rows []batch.Row, local map[string][]any) (int64, error) {
	t, names := p.Table, p.Names
	ins, ok := tx.(NewRowInserter)
	if !ok || !p.Load || len(rows) == 0 {
		return tx.Upsert(ctx, t.Name, names, t.Key, rows)
	}
	fresh, known := rows, []batch.Row(nil)
	if t.Direction == gapsync.Both {
		fresh = nil
		keyPos := Positions(names, t.Key)
		for _, r := range rows {
			if _, here := local[KeyHash(Pick(r.Values, keyPos))]; here {
				known = append(known, r)
			} else {
				fresh = append(fresh, r)
			}
		}
	}
	var n int64
	if len(known) > 0 {
		var err error
		if n, err = tx.Upsert(ctx, t.Name, names, t.Key, known); err != nil {
			return n, err
		}
	}
	if len(fresh) == 0 {
		return n, nil
	}
	m, err := ins.InsertNew(ctx, t.Name, names, t.Key, fresh)
	return n + m, err
}

// settle splits the arriving rows of a two-way table into those to apply
// and the local versions of those in conflict (see Apply and Conflicts),
// and returns the local rows it read, by key hash, over the batch's
// columns.
func settle(ctx context.Context, tx ApplyTx, p Plan, b *batch.Batch) (apply, conflicts []batch.Row, local map[string][]any, err error) {
	t, names := p.Table, p.Names
	keyPos := Positions(names, t.Key)
	curPos := Positions(names, []string{t.Cursor})[0]
	keys := make([][]any, len(b.Rows))
	khs := make([]string, len(b.Rows))
	for i, r := range b.Rows {
		keys[i] = Pick(r.Values, keyPos)
		khs[i] = KeyHash(keys[i])
	}
	led, err := tx.Versions(ctx, t.Name, khs)
	if err != nil {
		return nil, nil, nil, err
	}
	// The ledger holds rows in the form this side reads them for
	// sending, which may be wider than the batch (a column added here
	// only).
	wide := len(p.Sent) > 0 && !sameSet(p.Sent, names)
	look := names
	if wide {
		look = p.Sent
	}
	if local, err = tx.Rows(ctx, t.Name, look, t.Key, keys, false); err != nil {
		return nil, nil, nil, err
	}
	namePos := Positions(look, names)
	tombs := map[string][]any{}
	if p.Tombstones {
		if tombs, err = tx.Tombstones(ctx, t, keys); err != nil {
			return nil, nil, nil, err
		}
	}
	force := b.Flags&batch.FlagForce != 0
	for i, r := range b.Rows {
		in := StateHash(r.Op, names, r.Values, keyPos, curPos)
		var l Local
		var lv batch.Row
		if vals, ok := local[khs[i]]; ok {
			if wide {
				l.Stored = RowHash(p.Sent, vals)
				vals = Pick(vals, namePos)
				local[khs[i]] = vals
			}
			l.Found, l.State, l.Cursor = true, RowHash(names, vals), vals[curPos]
			lv = batch.Row{Op: batch.OpUpsert, Values: vals}
		} else if tv, ok := tombs[khs[i]]; ok {
			// Whether it travelled is told by its time; its cursor is
			// the last of the tombstone's values (the time, or the
			// deleted row's last integer cursor).
			vals := make([]any, len(names))
			for j, kp := range keyPos {
				vals[kp] = tv[j]
			}
			vals[curPos] = tv[len(tv)-1]
			lv = batch.Row{Op: batch.OpDelete, Values: vals}
			l.Found, l.Cursor = true, tv[len(t.Key)]
			l.State = StateHash(batch.OpDelete, names, vals, keyPos, curPos)
		}
		if Conflicts(in, l, led[khs[i]], b.Since, force) {
			conflicts = append(conflicts, lv)
			continue
		}
		apply = append(apply, r)
	}
	return apply, conflicts, local, nil
}

// recordStates records in the version ledger the state of every row of a
// two-way table just written, as the next scan here will read it, and
// restamps the tombstones of applied deletions.
func recordStates(ctx context.Context, tx ApplyTx, p Plan, rows []batch.Row) error {
	t, names := p.Table, p.Names
	keyPos := Positions(names, t.Key)
	curPos := Positions(names, []string{t.Cursor})[0]
	// Where the table may change what was written, the rows are read
	// back in this transaction; elsewhere what was written is what is
	// stored.
	var stored map[string][]any
	hashed := names
	if p.ReadBack {
		if len(p.Sent) > 0 {
			hashed = p.Sent
		}
		var keys [][]any
		for _, r := range rows {
			if r.Op == batch.OpUpsert {
				keys = append(keys, Pick(r.Values, keyPos))
			}
		}
		var err error
		if stored, err = tx.Rows(ctx, t.Name, hashed, t.Key, keys, true); err != nil {
			return err
		}
	}
	khs, hs := make([]string, len(rows)), make([]string, len(rows))
	var stamps [][]any
	for i, r := range rows {
		key := Pick(r.Values, keyPos)
		khs[i] = KeyHash(key)
		hs[i] = StateHash(r.Op, names, r.Values, keyPos, curPos)
		if vals, ok := stored[khs[i]]; ok && r.Op == batch.OpUpsert {
			hs[i] = RowHash(hashed, vals)
		}
		if r.Op == batch.OpDelete && p.Tombstones {
			stamps = append(stamps, append(key, r.Values[curPos]))
		}
	}
	if err := tx.RecordVersions(ctx, t.Name, khs, hs); err != nil {
		return err
	}
	return stampTombstones(ctx, tx, p, stamps)
}

// stampTombstones gives the tombstones of applied deletions (key values
// followed by the deletion's cursor) that cursor: the local trigger
// stamped them with this side's clock, and the ledger must recognise
// them as the deletion that arrived. For a time cursor the cursor is the
// deletion time. For an integer cursor it is the deleted row's last
// cursor value, and the deletion time stays this side's own (the
// deletions' window here runs by this clock): the tombstones the trigger
// just wrote are read back and get the cursor; a key with none (nothing
// was deleted here) needs none.
func stampTombstones(ctx context.Context, tx ApplyTx, p Plan, stamps [][]any) error {
	if len(stamps) == 0 {
		return nil
	}
	nk := len(p.Table.Key)
	if p.IntegerCursor {
		keys := make([][]any, len(stamps))
		for i, r := range stamps {
			keys[i] = r[:nk]
		}
		local, err := tx.Tombstones(ctx, p.Table, keys)
		if err != nil {
			return fmt.Errorf("stamp tombstones: %w", err)
		}
		out := stamps[:0:0]
		for _, r := range stamps {
			if lv, ok := local[KeyHash(r[:nk])]; ok {
				out = append(out, append(append([]any{}, lv[:nk+1]...), r[nk]))
			}
		}
		if stamps = out; len(stamps) == 0 {
			return nil
		}
	}
	if err := tx.WriteTombstones(ctx, p.Table, stamps); err != nil {
		return fmt.Errorf("stamp tombstones: %w", err)
	}
	return nil
}

// sameSet reports whether a and b hold the same names, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]bool, len(a))
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}

// RefHash identifies one spelling of a file reference (the ledgers key
// references by it).
func RefHash(ref string) string {
	h := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(h[:])
}

// finderOf returns the reference finder of t, or false when t has no file
// columns.
func finderOf(t gapsync.Table) (pathmap.Finder, bool) { return pathmap.TableFinder(t) }

// refsOf returns the distinct references in the upserts of rows.
func refsOf(f pathmap.Finder, names []string, rows []batch.Row) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rows {
		if r.Op != batch.OpUpsert {
			continue
		}
		for _, ref := range f.Find(names, r.Values) {
			if !seen[ref] {
				seen[ref] = true
				out = append(out, ref)
			}
		}
	}
	return out
}

// mapRefs rewrites, in place, the references in the upserts of rows that
// m maps.
func mapRefs(f pathmap.Finder, names []string, rows []batch.Row, m map[string]string) {
	if len(m) == 0 {
		return
	}
	for _, r := range rows {
		if r.Op != batch.OpUpsert {
			continue
		}
		for i, n := range names {
			if slices.Contains(f.Columns, n) {
				r.Values[i], _ = f.RewriteAll(r.Values[i], m)
			}
		}
	}
}

// arrivingRefs returns, by key hash, the references in the upserts of an
// arriving batch, as they arrived (before they are mapped to this side's
// copies).
func arrivingRefs(t gapsync.Table, names []string, b *batch.Batch) map[string][]string {
	f, ok := finderOf(t)
	if !ok {
		return nil
	}
	keyPos := Positions(names, t.Key)
	out := map[string][]string{}
	for _, r := range b.Rows {
		if r.Op == batch.OpUpsert {
			if refs := f.Find(names, r.Values); len(refs) > 0 {
				kh := KeyHash(Pick(r.Values, keyPos))
				out[kh] = append(out[kh], refs...)
			}
		}
	}
	return out
}

// recordOrigins replaces the recorded origins of the rows written with
// the references each upsert brought (arrived): they are the other
// side's. One exception, for a table synced both ways: a reference that
// the row already held here, as typed here (local holds the rows as they
// were before the batch, and the reference is not recorded as arrived),
// is this side's own one coming back, and stays this side's. Only entries
// that change are written.
func recordOrigins(ctx context.Context, tx ApplyTx, t gapsync.Table, names []string, rows []batch.Row, arrived map[string][]string, local map[string][]any) error {
	f, ok := finderOf(t)
	if !ok || len(rows) == 0 {
		return nil
	}
	keyPos := Positions(names, t.Key)
	khs := make([]string, len(rows))
	for i, r := range rows {
		khs[i] = KeyHash(Pick(r.Values, keyPos))
	}
	held, err := tx.RefOrigins(ctx, t.Name, khs)
	if err != nil {
		return err
	}
	want := map[string]map[string]RefOrigin{} // key hash → ref hash → entry
	for i, r := range rows {
		kh := khs[i]
		want[kh] = map[string]RefOrigin{} // a deletion, or an upsert, replaces the row's entries
		if r.Op != batch.OpUpsert {
			continue
		}
		own := map[string]bool{}
		if vals, ok := local[kh]; ok {
			for _, ref := range f.Find(names, vals) {
				if !held[kh][RefHash(ref)] {
					own[ref] = true
				}
			}
		}
		for _, ref := range arrived[kh] {
			if !own[ref] {
				rh := RefHash(ref)
				want[kh][rh] = RefOrigin{KeyHash: kh, RefHash: rh, Ref: ref}
			}
		}
	}
	var drop [][2]string
	var add []RefOrigin
	for kh, w := range want {
		for rh := range held[kh] {
			if _, ok := w[rh]; !ok {
				drop = append(drop, [2]string{kh, rh})
			}
		}
		for rh, e := range w {
			if !held[kh][rh] {
				add = append(add, e)
			}
		}
	}
	if len(drop) == 0 && len(add) == 0 {
		return nil
	}
	return tx.ChangeRefOrigins(ctx, t.Name, drop, add)
}

// Sender is what Outgoing needs of the sending side's database, outside
// any transaction.
type Sender interface {
	// Versions is ApplyTx.Versions outside a transaction.
	Versions(ctx context.Context, table string, khs []string) (map[string]string, error)
	// MapLocal maps this side's published copies of the other side's
	// files back to the other side's references; a reference that is no
	// such copy is absent from the map.
	MapLocal(ctx context.Context, refs []string) (map[string]string, error)
}

// Outgoing applies the rules to a page of changes read for sending, in
// place: for a table whose soft deletions travel as deletions
// (SoftDeleteAs "delete"), a row marked deleted (SoftDeleted) becomes a
// deletion of its key at its cursor; for a table synced both ways, it
// drops the rows whose state is
// what sync last wrote here (they came from the other side and must not
// go back: IsEcho); then it turns this side's copies of the other side's
// files back into the other side's own references. b's column names are
// those the page reader read, in its form.
func Outgoing(ctx context.Context, s Sender, t gapsync.Table, b *batch.Batch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	names := make([]string, len(b.Columns))
	for i, c := range b.Columns {
		names[i] = c.Name
	}
	keyPos := Positions(names, t.Key)
	curPos := Positions(names, []string{t.Cursor})[0]
	if t.SoftDeleteAs == "delete" {
		if sp := Positions(names, []string{t.SoftDelete})[0]; sp >= 0 && curPos >= 0 {
			for i, r := range b.Rows {
				if r.Op == batch.OpUpsert && SoftDeleted(r.Values[sp]) {
					vals := make([]any, len(names))
					for _, kp := range keyPos {
						vals[kp] = r.Values[kp]
					}
					vals[curPos] = r.Values[curPos]
					b.Rows[i] = batch.Row{Op: batch.OpDelete, Values: vals}
				}
			}
		}
	}
	if t.Direction == gapsync.Both {
		khs := make([]string, len(b.Rows))
		for i, r := range b.Rows {
			khs[i] = KeyHash(Pick(r.Values, keyPos))
		}
		led, err := s.Versions(ctx, t.Name, khs)
		if err != nil {
			return err
		}
		kept := b.Rows[:0]
		for i, r := range b.Rows {
			if !IsEcho(led[khs[i]], StateHash(r.Op, names, r.Values, keyPos, curPos)) {
				kept = append(kept, r)
			}
		}
		b.Rows = kept
	}
	return OriginRefs(ctx, s, t, b)
}

// OriginRefs turns this side's copies of the other side's files, in the
// upserts of b, back into the other side's own references (for sending,
// and for hashing a row as its origin wrote it).
func OriginRefs(ctx context.Context, s Sender, t gapsync.Table, b *batch.Batch) error {
	f, ok := finderOf(t)
	if !ok || len(b.Rows) == 0 {
		return nil
	}
	names := make([]string, len(b.Columns))
	for i, c := range b.Columns {
		names[i] = c.Name
	}
	m, err := s.MapLocal(ctx, refsOf(f, names, b.Rows))
	if err != nil {
		return err
	}
	mapRefs(f, names, b.Rows, m)
	return nil
}

// RefReader is what OwnRefs needs of the sending side's database, outside
// any transaction.
type RefReader interface {
	// RefOrigins is ApplyTx.RefOrigins outside a transaction.
	RefOrigins(ctx context.Context, table string, khs []string) (map[string]map[string]bool, error)
	// MapForeign is Applier.MapForeign.
	MapForeign(ctx context.Context, refs []string) (map[string]string, error)
	// StoredRows returns every column of t (the names) and the rows with
	// keys, as stored here, by key hash.
	StoredRows(ctx context.Context, t gapsync.Table, keys [][]any) ([]string, map[string][]any, error)
}

// OwnRefs returns the distinct file references in the upserts of b, a
// batch sent from this side, that originated here: the files this side
// must send. A reference that arrived from the other side in that row
// (RefOrigins) is the other side's, whatever its text, and is never read
// from this side's store; nor is the other side's reference that a local
// copy was turned back into for sending (OriginRefs). A row that holds,
// as stored here, the same text as a foreign reference published here is
// this side's own file and counts.
func OwnRefs(ctx context.Context, r RefReader, t gapsync.Table, b *batch.Batch) ([]string, error) {
	f, ok := finderOf(t)
	if !ok {
		return nil, nil
	}
	names := make([]string, len(b.Columns))
	for i, c := range b.Columns {
		names[i] = c.Name
	}
	keyPos := Positions(names, t.Key)
	if slices.Contains(keyPos, -1) {
		return nil, fmt.Errorf("%w: batch %s lacks the key of %s", gapsync.ErrUnknownColumn, b.ID, t.Name)
	}
	type rowRefs struct {
		kh   string
		key  []any
		refs []string
	}
	var rows []rowRefs
	var khs []string
	for _, row := range b.Rows {
		if row.Op != batch.OpUpsert {
			continue
		}
		if refs := f.Find(names, row.Values); len(refs) > 0 {
			k := Pick(row.Values, keyPos)
			rows = append(rows, rowRefs{KeyHash(k), k, refs})
			khs = append(khs, rows[len(rows)-1].kh)
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	arrived, err := r.RefOrigins(ctx, t.Name, khs)
	if err != nil {
		return nil, err
	}
	var cands []string
	seen := map[string]bool{}
	for _, row := range rows {
		for _, ref := range row.refs {
			if !arrived[row.kh][RefHash(ref)] && !seen[ref] {
				seen[ref] = true
				cands = append(cands, ref)
			}
		}
	}
	foreign, err := r.MapForeign(ctx, cands)
	if err != nil {
		return nil, err
	}
	// A candidate that is the other side's reference of a file published
	// here is, in most rows, a local copy turned back for sending; it is
	// this side's own only in a row that stores the text itself.
	own := map[string]bool{}
	var recheck [][]any
	for _, row := range rows {
		for _, ref := range row.refs {
			if _, ok := foreign[ref]; ok && !arrived[row.kh][RefHash(ref)] {
				recheck = append(recheck, row.key)
				break
			}
		}
	}
	if len(recheck) > 0 {
		all, stored, err := r.StoredRows(ctx, t, recheck)
		if err != nil {
			return nil, err
		}
		for kh, vals := range stored {
			for _, ref := range f.Find(all, vals) {
				if _, ok := foreign[ref]; ok && !arrived[kh][RefHash(ref)] {
					own[ref] = true
				}
			}
		}
	}
	var mine []string
	for _, ref := range cands {
		if _, ok := foreign[ref]; !ok || own[ref] {
			mine = append(mine, ref)
		}
	}
	return mine, nil
}

// Rewriter is what RewriteRefs needs of the database whose rows name a
// file just published here.
type Rewriter interface {
	// RefOrigins is ApplyTx.RefOrigins outside a transaction.
	RefOrigins(ctx context.Context, table string, khs []string) (map[string]map[string]bool, error)
	// Referring returns every column of t (the names) and the rows whose
	// column col names one of refs: holds it, or for a table with a file
	// pattern (Table.FilePattern) holds it inside its text. A row may come
	// back more than once.
	Referring(ctx context.Context, t gapsync.Table, col string, refs []string) ([]string, [][]any, error)
	// BeginRewrite starts the transaction of one table's rewrite, and
	// says whether an UPDATE there may change more than it sets (a
	// trigger, an ON UPDATE clause, a generated column), so that rows
	// must be read back before they are hashed.
	BeginRewrite(ctx context.Context, t gapsync.Table) (tx RewriteTx, readBack bool, err error)
}

// RewriteTx is one table's rewrite transaction.
type RewriteTx interface {
	// Rows, Versions, RecordVersions, Commit and Rollback are ApplyTx's.
	Rows(ctx context.Context, table string, names, key []string, keys [][]any, lock bool) (map[string][]any, error)
	Versions(ctx context.Context, table string, khs []string) (map[string]string, error)
	RecordVersions(ctx context.Context, table string, khs, hashes []string) error
	// Update sets the columns at positions cols of the row whose values
	// (over names) were old to those of new, only where the row still
	// holds old in those columns; false when it does not (an edit since),
	// and nothing is changed then. The cursor keeps its value.
	Update(ctx context.Context, t gapsync.Table, names []string, old, new []any, cols []int) (bool, error)
	Commit() error
	Rollback() error
}

// ManyUpdater is a RewriteTx that can also set the rewritten columns of
// many rows in one statement, which saves a round trip a row when a page
// of files is published (an optional capability, found by assertion).
type ManyUpdater interface {
	// UpdateMany is Update for every row of rows at once, in one
	// transaction's statements, and returns how many rows it changed.
	// The rules pass only rows they hold locked (RewriteTx.Rows with
	// lock) whose columns at Cols still hold Old, so an adapter that
	// changes fewer than len(rows) lost its guard; the rules then refuse
	// the rewrite and roll it back.
	UpdateMany(ctx context.Context, t gapsync.Table, names []string, rows []RowUpdate) (int, error)
}

// RowUpdate is one row of ManyUpdater.UpdateMany: the values read (over
// the names given beside it), the values to store, and the positions of
// the columns that change.
type RowUpdate struct {
	Old, New []any
	Cols     []int
}

// rowRewrite is one row to rewrite: the values read and the new ones.
type rowRewrite struct {
	old, new []any
	cols     []int // positions of the changed columns
}

// RewriteRefs replaces, in t, each reference of the other side (a key of
// refs, in froms in a fixed order) with its local one (the value), once
// the file is published here (seed 1.3.4 and 1.4.5): also in rows that
// arrived before the file did, and only in rows where that reference
// arrived from the other side (RefOrigins), so a row that names a
// same-named file of this side is left alone. An UPDATE is guarded by
// the values read: a row edited since keeps the edit. For a table synced
// both ways, a row whose state was written by sync stays recognised as
// such (its version-ledger entry follows the rewrite), so the rewrite is
// not sent back as a change; a row edited by an application keeps its
// entry, so its edit still travels. It returns how many rows changed.
func RewriteRefs(ctx context.Context, r Rewriter, t gapsync.Table, froms []string, refs map[string]string) (int, error) {
	f, ok := finderOf(t)
	if !ok {
		return 0, nil
	}
	type hit struct {
		vals []any
		ci   int
		kh   string
	}
	var hits []hit
	var names []string
	var keyPos []int
	for _, col := range t.FileColumns {
		all, found, err := r.Referring(ctx, t, col, froms)
		if err != nil {
			return 0, err
		}
		names, keyPos = all, Positions(all, t.Key)
		ci := Positions(names, []string{col})[0]
		if ci < 0 || slices.Contains(keyPos, -1) {
			return 0, fmt.Errorf("%w: %s lacks file column %s or its key", gapsync.ErrUnknownColumn, t.Name, col)
		}
		for _, vals := range found {
			hits = append(hits, hit{vals, ci, KeyHash(Pick(vals, keyPos))})
		}
	}
	if len(hits) == 0 {
		return 0, nil
	}
	khs := make([]string, len(hits))
	for i, h := range hits {
		khs[i] = h.kh
	}
	slices.Sort(khs)
	arrived, err := r.RefOrigins(ctx, t.Name, slices.Compact(khs))
	if err != nil {
		return 0, err
	}
	byHash := make(map[string]string, len(refs))
	for from := range refs {
		byHash[RefHash(from)] = from
	}
	byKey := map[string]*rowRewrite{}
	var order []string
	for _, h := range hits {
		// Only the references that arrived from the other side in this
		// row: a same-named reference typed here is this side's file.
		mine := map[string]string{}
		for rh := range arrived[h.kh] {
			if from, ok := byHash[rh]; ok {
				mine[from] = refs[from]
			}
		}
		if len(mine) == 0 {
			continue
		}
		rw := byKey[h.kh]
		if rw == nil {
			rw = &rowRewrite{old: h.vals, new: slices.Clone(h.vals)}
		}
		if slices.Contains(rw.cols, h.ci) {
			continue // found again by another reference's query
		}
		// From the values of the first read: the guard of the one
		// UPDATE checks them all.
		nv, changed := f.RewriteAll(rw.old[h.ci], mine)
		if !changed {
			continue
		}
		rw.new[h.ci], rw.cols = nv, append(rw.cols, h.ci)
		if byKey[h.kh] == nil {
			byKey[h.kh] = rw
			order = append(order, h.kh)
		}
	}
	if len(order) == 0 {
		return 0, nil
	}
	tx, readBack, err := r.BeginRewrite(ctx, t)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	keys := make([][]any, len(order))
	for i, kh := range order {
		keys[i] = Pick(byKey[kh].old, keyPos)
	}
	// The rows as they are now, locked until the commit: one that changed
	// since it was found is an application's edit, which the rewrite
	// keeps (the guard) and which must still travel (its ledger entry
	// stays).
	cur, err := tx.Rows(ctx, t.Name, names, t.Key, keys, true)
	if err != nil {
		return 0, err
	}
	two := t.Direction == gapsync.Both
	var led map[string]string
	if two {
		if led, err = tx.Versions(ctx, t.Name, order); err != nil {
			return 0, err
		}
	}
	n := 0
	var moved []string
	var movedKeys [][]any
	many, isMany := tx.(ManyUpdater)
	var pending []RowUpdate
	for i, kh := range order {
		rw := byKey[kh]
		now, ok := cur[kh]
		if !ok {
			continue // deleted since
		}
		if isMany {
			// Locked, so what the guard of the statement would see is what
			// was just read: a row edited since keeps its edit.
			if !sameAt(names, now, rw.old, rw.cols) {
				continue
			}
			pending = append(pending, RowUpdate{Old: rw.old, New: rw.new, Cols: rw.cols})
		} else {
			ok, err := tx.Update(ctx, t, names, rw.old, rw.new, rw.cols)
			if err != nil {
				return 0, err
			}
			if !ok {
				continue
			}
		}
		n++
		if old := RowHash(names, rw.old); two && led[kh] == old && RowHash(names, now) == old {
			moved, movedKeys = append(moved, kh), append(movedKeys, keys[i])
		}
	}
	if len(pending) > 0 {
		k, err := many.UpdateMany(ctx, t, names, pending)
		if err != nil {
			return 0, err
		}
		if k != len(pending) {
			return 0, fmt.Errorf("rewrite references in %s: %d of %d locked rows changed, so the statement's guard disagreed with the rows read; nothing rewritten", t.Name, k, len(pending))
		}
	}
	if len(moved) > 0 {
		// A row whose state was sync's stays sync's: its ledger entry
		// becomes the row as stored now, read back where an UPDATE may
		// change more than it sets; elsewhere the row is the one read,
		// locked, with the rewritten values.
		var after map[string][]any
		if readBack {
			if after, err = tx.Rows(ctx, t.Name, names, t.Key, movedKeys, true); err != nil {
				return 0, err
			}
		} else {
			after = make(map[string][]any, len(moved))
			for _, kh := range moved {
				after[kh] = byKey[kh].new
			}
		}
		var khs, hs []string
		for _, kh := range moved {
			if vals, ok := after[kh]; ok {
				khs, hs = append(khs, kh), append(hs, RowHash(names, vals))
			}
		}
		if err := tx.RecordVersions(ctx, t.Name, khs, hs); err != nil {
			return 0, err
		}
	}
	return n, tx.Commit()
}

// sameAt reports whether a and b hold the same values at the positions
// cols, compared as the row hash compares them.
func sameAt(names []string, a, b []any, cols []int) bool {
	sub := make([]string, len(cols))
	for i, c := range cols {
		sub[i] = names[c]
	}
	return RowHash(sub, Pick(a, cols)) == RowHash(sub, Pick(b, cols))
}
