package syncer

import (
	"context"
	"fmt"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/pathmap"
	"github.com/gapsync/gapsync/transport"
)

// Plan is what one cycle would move now, as DryRun counts it.
type Plan struct {
	Runs []PlannedRun `json:"runs"`
	// FilesWaiting counts this side's file records that the next cycle's
	// file flow would take up, by status (extracted and failed ones are
	// staged, stored ones sent, incoming ones received).
	FilesWaiting map[string]int `json:"files_waiting,omitempty"`
}

// PlannedRun is one table in one direction.
type PlannedRun struct {
	Table     string            `json:"table"`
	Direction gapsync.Direction `json:"direction"`
	Window    gapsync.Window    `json:"window"`
	Rows      int64             `json:"rows"`
	Bytes     int64             `json:"bytes"` // payload bytes of the rows (batch.Bytes)
	// Files counts the distinct file references in the rows; NewFiles
	// those of them this side has no record of yet (push only: a pulled
	// row's files are recorded on the intranet side).
	Files    int `json:"files"`
	NewFiles int `json:"new_files,omitempty"`
	// Parked is set for a parked direction, which the cycle skips.
	Parked bool `json:"parked,omitempty"`
	// Err is why the run could not be counted (a table missing on one
	// side, the gateway unreachable).
	Err string `json:"error,omitempty"`
}

// DryRun counts what one cycle would move, per table and direction, and
// writes nothing on either side: it takes no lease and logs no run; the
// rows of a push are read here and counted, those of a pull are read
// through the gateway, which is told not to record their files. (The
// gateway's replay guard still remembers each request's id, as it does
// for every request.) The windows are the ones the cycle would use if
// it started now.
func (c *Coordinator) DryRun(ctx context.Context) (*Plan, error) {
	tables, err := c.tables(ctx)
	if err != nil {
		return nil, err
	}
	parked, err := c.parkedSet(ctx)
	if err != nil {
		return nil, err
	}
	p := &Plan{}
	for _, t := range tables {
		for _, d := range []gapsync.Direction{gapsync.Pull, gapsync.Push} {
			if !t.Allows(d) {
				continue
			}
			r := PlannedRun{Table: t.Name, Direction: d}
			if _, ok := parked[string(d)+" "+t.Name]; ok {
				r.Parked = true
			} else if err := c.plan(ctx, t, &r); err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				r.Err = err.Error()
			}
			p.Runs = append(p.Runs, r)
		}
	}
	if c.fileFlow != nil {
		p.FilesWaiting = map[string]int{}
		for _, s := range []struct {
			origin gapsync.Side
			status string
		}{{gapsync.Internet, gapsync.FileExtracted}, {gapsync.Internet, gapsync.FileFailed}, {gapsync.Internet, gapsync.FileStored},
			{gapsync.Intranet, gapsync.FileIncoming}, {gapsync.Intranet, gapsync.FilePartial}} {
			recs, err := c.fileFlow.db.FileRecords(ctx, s.origin, 0, s.status)
			if err != nil {
				return nil, err
			}
			if len(recs) > 0 {
				p.FilesWaiting[s.status] += len(recs)
			}
		}
	}
	return p, nil
}

// plan counts one table's run in r.Direction.
func (c *Coordinator) plan(ctx context.Context, t gapsync.Table, r *PlannedRun) error {
	from, _, err := c.db.LastWindow(ctx, t.Name, r.Direction)
	if err != nil {
		return err
	}
	var to string
	if r.Direction == gapsync.Push {
		to, err = c.db.Bound(ctx, t)
	} else {
		to, err = c.tr.Bound(ctx, t.Wire())
	}
	if err != nil {
		return err
	}
	r.Window = window(from, to)
	find, files := pathmap.TableFinder(t)
	refs := map[string]bool{}
	count := func(b *batch.Batch) {
		r.Rows += int64(len(b.Rows))
		r.Bytes += b.Bytes()
		if !files {
			return
		}
		names := make([]string, len(b.Columns))
		for i, col := range b.Columns {
			names[i] = col.Name
		}
		for _, row := range b.Rows {
			if row.Op == batch.OpUpsert {
				for _, ref := range find.Find(names, row.Values) {
					refs[ref] = true
				}
			}
		}
	}
	if r.Direction == gapsync.Push {
		err = c.db.Changes(ctx, t, r.Window, c.opts.Page, func(b *batch.Batch) error { count(b); return nil })
	} else {
		var after []byte
		for {
			pg, err := c.tr.Pull(ctx, transport.PullRequest{Table: t.Wire(), Window: r.Window, After: after, Page: c.opts.Page, DryRun: true})
			if err != nil {
				return err
			}
			if err := fromWire(t, pg.Batch); err != nil {
				return err
			}
			count(pg.Batch)
			if !pg.More {
				break
			}
			after = pg.Next
		}
	}
	if err != nil {
		return err
	}
	r.Files = len(refs)
	if r.Direction == gapsync.Push && c.fileFlow != nil && len(refs) > 0 {
		ids := make([]string, 0, len(refs))
		for ref := range refs {
			ids = append(ids, gapsync.FileID(gapsync.Internet, ref))
		}
		known, err := c.fileFlow.db.FileRecordsByID(ctx, ids)
		if err != nil {
			return fmt.Errorf("read file records: %w", err)
		}
		r.NewFiles = len(ids) - len(known)
	}
	return nil
}
