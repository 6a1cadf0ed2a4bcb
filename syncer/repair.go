package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
)

// DeletesTraveler tells whether deletions of a table's rows travel from
// this side (storage's *DB: the table has a tombstone table).
type DeletesTraveler interface {
	DeletesTravel(ctx context.Context, t gapsync.Table) (bool, error)
}

// Repair makes the far side match for the rows that vs (from Verify)
// found differing, by each table's direction: a row missing or different
// there is sent again from its origin through the normal idempotent apply
// (conflict checks included, for a table synced both ways), and an extra
// row there is deleted when deletions travel from the origin (see
// deletesTravel; it is left alone, and says so, when they do not). A row whose hash on either side
// is no longer what the verification saw (the application changed it
// since) is left for the next ordinary cycle. Every repair, done or not,
// is logged and returned. Verify again to see the result.
//
// Repair holds the coordinator's lease while it runs, as Verify does; it
// returns an error wrapping gapsync.ErrLeaseHeld, having repaired
// nothing, when another coordinator holds it.
func (c *Coordinator) Repair(ctx context.Context, vs []gapsync.TableVerify) (out []gapsync.Repair, err error) {
	err = c.underLease(ctx, "Repair", func(ctx context.Context) error {
		out, err = c.repair(ctx, vs)
		return err
	})
	return out, err
}

func (c *Coordinator) repair(ctx context.Context, vs []gapsync.TableVerify) ([]gapsync.Repair, error) {
	localDB, ok1 := c.db.(RangeHasher)
	remoteTr, ok2 := c.tr.(RangeHasher)
	if !ok1 || !ok2 {
		return nil, errors.New("syncer: Repair: a side cannot read rows by key")
	}
	all, err := c.tables(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]gapsync.Table{}
	for _, t := range all {
		byName[t.Name] = t
	}
	runID := newID()
	var out []gapsync.Repair
	for _, v := range vs {
		if len(v.Diffs) == 0 {
			continue
		}
		t, ok := byName[v.Table]
		if !ok {
			return out, fmt.Errorf("%w: %q is no longer enabled in the internet's sync_config", gapsync.ErrUnknownTable, v.Table)
		}
		local, remote, err := renamedSides(t, v.Columns, localDB, remoteTr)
		if err != nil {
			return out, err
		}
		rs, err := c.repairTable(ctx, runID, t, v, local, remote)
		out = append(out, rs...)
		for _, r := range rs {
			if r.Done {
				c.opts.Logger.Info("repaired row", "table", r.Table, "key", r.KeyText(), "was", r.Kind, "side", r.Side, "action", r.Action)
			} else {
				c.opts.Logger.Warn("row not repaired", "table", r.Table, "key", r.KeyText(), "was", r.Kind, "side", r.Side, "reason", r.Reason)
			}
		}
		if err != nil {
			return out, fmt.Errorf("syncer: repair %s: %w", t.Name, err)
		}
	}
	return out, nil
}

func (c *Coordinator) repairTable(ctx context.Context, runID string, t gapsync.Table, v gapsync.TableVerify, local, remote RangeHasher) ([]gapsync.Repair, error) {
	keys := make([][]any, len(v.Diffs))
	for i, d := range v.Diffs {
		keys[i] = d.Key
	}
	classes, err := c.verifyClasses(ctx, []gapsync.Table{t}, map[string][]string{t.Name: v.Columns})
	if err != nil {
		return nil, err
	}
	cls := classes[t.Name]
	here, err := local.RowsByKey(ctx, t, v.Columns, keys)
	if err != nil {
		return nil, err
	}
	there, err := remote.RowsByKey(ctx, t, v.Columns, keys)
	if err != nil {
		return nil, err
	}
	d := gapsync.Push
	origin, far := here, there
	if t.Direction == gapsync.Pull {
		d, origin, far = gapsync.Pull, there, here
	}
	travel, err := c.deletesTravel(ctx, t, d)
	if err != nil {
		return nil, err
	}
	noTravel := "deletions do not travel for this table (no tombstone table on the internet side)"
	if d == gapsync.Pull {
		noTravel = "deletions do not travel for this table (no tombstone table on the intranet side)"
	}
	b := &batch.Batch{ID: "repair-" + runID + "-" + t.Name, Table: t.Name, Direction: string(d)}
	for _, c := range v.Columns {
		b.Columns = append(b.Columns, batch.Column{Name: c, Key: slices.Contains(t.Key, c)})
	}
	hashAs := wireNames(t, v.Columns) // as both sides hashed the rows
	keyPos := rules.Positions(v.Columns, t.Key)
	curPos := rules.Positions(v.Columns, []string{t.Cursor})[0]
	out := make([]gapsync.Repair, len(v.Diffs))
	var sent []int
	for i, diff := range v.Diffs {
		r := gapsync.Repair{RowDiff: diff}
		switch {
		case !sameHash(here[i], diff.InternetHash, v, hashAs, cls[0]) || !sameHash(there[i], diff.IntranetHash, v, hashAs, cls[1]):
			r.Reason = "changed since the verification saw it; the next cycle carries it"
		case origin[i] != nil:
			r.Action = "upsert"
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: origin[i]})
			sent = append(sent, i)
		case !travel:
			r.Action, r.Reason = "delete", noTravel
		default:
			r.Action = "delete"
			vals := make([]any, len(v.Columns))
			for _, p := range keyPos {
				vals[p] = far[i][p]
			}
			if curPos >= 0 {
				vals[curPos] = far[i][curPos]
			}
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpDelete, Values: vals})
			sent = append(sent, i)
		}
		out[i] = r
	}
	if len(b.Rows) == 0 {
		return out, nil
	}
	var res gapsync.Result
	since, _, err := c.db.LastWindow(ctx, t.Name, reverse(d))
	if err != nil {
		return out, err
	}
	b.Since = since
	if d == gapsync.Push {
		var wb *batch.Batch
		if wb, err = toWire(t, b); err == nil { // the gateway knows the intranet's names only
			res, err = c.tr.Apply(ctx, wb)
		}
	} else {
		res, err = c.db.Apply(ctx, b)
	}
	if err != nil {
		for _, i := range sent {
			out[i].Reason = "apply failed: " + err.Error()
		}
		return out, err
	}
	conflicted := map[string]bool{}
	if len(res.Conflicts) > 0 {
		cb, err := batch.Decode(res.Conflicts, nil)
		if err != nil {
			return out, fmt.Errorf("conflicts of batch %s: %w", b.ID, err)
		}
		var kp []int
		for j, col := range cb.Columns {
			if col.Key {
				kp = append(kp, j)
			}
		}
		for _, r := range cb.Rows {
			conflicted[rowKey(r.Values, kp)] = true
		}
	}
	all := make([]int, len(t.Key))
	for j := range all {
		all[j] = j
	}
	for _, i := range sent {
		if conflicted[rowKey(out[i].Key, all)] {
			out[i].Reason = "conflicts with a change not yet synced; the next cycle settles it by the conflict policy"
			continue
		}
		out[i].Done = true
	}
	return out, nil
}

// deletesTravel reports whether deletions of t's rows travel in
// direction d: from the internet when it has the table's tombstones
// (push), from the intranet when the gateway's shape of the table says it
// has them there (pull). A row only on the far side is then one the
// origin deleted (or never had), and a repair deletes it; otherwise the
// far side may keep rows the origin deleted, by design, and the repair
// leaves them.
func (c *Coordinator) deletesTravel(ctx context.Context, t gapsync.Table, d gapsync.Direction) (bool, error) {
	if d == gapsync.Push {
		dt, ok := c.db.(DeletesTraveler)
		if !ok {
			return false, nil
		}
		return dt.DeletesTravel(ctx, t)
	}
	st, ok := c.tr.(ShapeTransport)
	if !ok {
		return false, nil
	}
	shapes, err := st.Shapes(ctx, []string{t.Wire()})
	if err != nil {
		return false, err
	}
	for _, s := range shapes {
		if s.Name == t.Wire() {
			return s.Tombstones, nil
		}
	}
	return false, nil
}

// sameHash reports whether row (nil: none), of columns of classes,
// still has the hash a verification saw (nil: none), each column hashed
// under its name in as.
func sameHash(row []any, seen []byte, v gapsync.TableVerify, as, classes []string) bool {
	if row == nil || seen == nil {
		return row == nil && seen == nil
	}
	return bytes.Equal(rules.RangeHash(v.Salt, rules.VerifyHash(as, classes, row)), seen)
}

func reverse(d gapsync.Direction) gapsync.Direction {
	if d == gapsync.Push {
		return gapsync.Pull
	}
	return gapsync.Push
}
