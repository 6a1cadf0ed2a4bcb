package sqltest

import (
	"context"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
)

// testEmptyWindows: the batched reads of idle tables (syncer.Batcher)
// answer as the one-table reads do. A table whose next window holds a
// change, a deletion, a row of an open writer, no good run yet, or that
// does not exist must never be called empty; the others get the bound
// Bound would give.
func testEmptyWindows(t *testing.T, h Harness) {
	x := h.Open(t)
	b, ok := x.Internet.(syncer.Batcher)
	if !ok {
		t.Skip("the target's internet database is no syncer.Batcher")
	}
	is := is.New(t)
	ctx := context.Background()
	setupItems(t, h, x)
	mustExec(t, x.SQL, "CREATE TABLE e_int (id BIGINT NOT NULL, v BIGINT NULL, PRIMARY KEY (id))")
	ints := gapsync.Table{Name: "e_int", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "v", Enabled: true}
	is.NoErr(x.Configure(ctx, ints))
	mustExec(t, x.SQL, "INSERT INTO e_int (id, v) VALUES (1, 5)")
	insertItem(t, x.SQL, 1, "old", "old", "2020-01-01 00:00:00.000000")
	missing := gapsync.Table{Name: "e_missing", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "v", Enabled: true}

	// The last good windows, as the sync log holds them.
	fromT, err := x.Source.Bound(ctx, items)
	is.NoErr(err)
	fromI, err := x.Source.Bound(ctx, ints)
	is.NoErr(err)
	is.Equal(fromI, "6")
	now := time.Now()
	is.NoErr(b.RecordAll(ctx, []gapsync.LogEntry{
		{RunID: "r", Table: "items", Direction: gapsync.Push, Window: gapsync.Window{To: "2019-01-01 00:00:00.000000"}, StartedAt: now, FinishedAt: now},
		{RunID: "r", Table: "items", Direction: gapsync.Push, Window: gapsync.Window{To: fromT}, StartedAt: now, FinishedAt: now},
		{RunID: "r", Table: "e_int", Direction: gapsync.Push, Window: gapsync.Window{To: fromI}, StartedAt: now, FinishedAt: now},
		{RunID: "r", Table: "e_int", Direction: gapsync.Push, Window: gapsync.Window{From: fromI, To: "9"}, Err: context.Canceled, StartedAt: now, FinishedAt: now},
	}))
	last, err := b.LastWindows(ctx, []string{"items", "e_int", "e_missing"}, gapsync.Push)
	is.NoErr(err)
	is.Equal(last, map[string]string{"items": fromT, "e_int": fromI}) // the newest good run; a failed one does not count
	for _, tb := range []string{"items", "e_int"} {
		one, _, err := x.Journal.LastWindow(ctx, tb, gapsync.Push)
		is.NoErr(err)
		is.Equal(one, last[tb])
	}

	ts := []gapsync.Table{items, ints, missing, items}
	from := []string{fromT, fromI, "1", ""}
	bounds, err := b.EmptyWindows(ctx, ts, from)
	is.NoErr(err)
	is.Equal(len(bounds), 4)
	is.True(bounds[0] >= fromT) // idle: the new bound, not behind the last one
	is.Equal(bounds[1], "6")    // idle: MAX(v)+1 as Bound gives it
	is.Equal(bounds[2], "")     // no such table: its run says so
	is.Equal(bounds[3], "")     // no good run yet: a first load
	bt, err := x.Source.Bound(ctx, items)
	is.NoErr(err)
	is.True(bounds[0] <= bt) // taken as Bound takes it

	// A change in each window: neither is empty any more.
	mustExec(t, x.SQL, "INSERT INTO items (id, k2, updated_at) VALUES (2, 'new', "+h.Now+")")
	mustExec(t, x.SQL, "INSERT INTO e_int (id, v) VALUES (2, 6)")
	time.Sleep(400 * time.Millisecond) // past the lag
	bounds, err = b.EmptyWindows(ctx, ts[:2], from[:2])
	is.NoErr(err)
	is.Equal(bounds, []string{"", ""})
	// A row older than the last window is no change for it.
	bounds, err = b.EmptyWindows(ctx, []gapsync.Table{ints}, []string{"7"})
	is.NoErr(err)
	is.Equal(bounds, []string{"7"})
	// A bound of the other kind than the cursor's: the run starts over.
	bounds, err = b.EmptyWindows(ctx, []gapsync.Table{ints, items}, []string{fromT, "7"})
	is.NoErr(err)
	is.Equal(bounds, []string{"", ""})

	// Deletions: a tombstone in the window makes it not empty.
	if x.Tombstones != nil {
		is.NoErr(x.Tombstones(ctx, ints))
		bi, err := x.Source.Bound(ctx, ints) // "7" joined with the deletions' bound
		is.NoErr(err)
		bounds, err = b.EmptyWindows(ctx, []gapsync.Table{ints}, []string{bi})
		is.NoErr(err)
		is.True(bounds[0] != "")
		mustExec(t, x.SQL, "DELETE FROM e_int WHERE id = 1")
		time.Sleep(400 * time.Millisecond)
		bounds, err = b.EmptyWindows(ctx, []gapsync.Table{ints}, []string{bi})
		is.NoErr(err)
		is.Equal(bounds, []string{""})
		// A last bound from before the tombstones: every deletion counts.
		bounds, err = b.EmptyWindows(ctx, []gapsync.Table{ints}, []string{"7"})
		is.NoErr(err)
		is.Equal(bounds, []string{""})
	}

	// Checkpoints: the windows in progress are listed.
	if cpr, ok := x.Internet.(syncer.Checkpointer); ok {
		cp := gapsync.Checkpoint{Table: "items", Direction: gapsync.Push, Window: gapsync.Window{From: fromT, To: bt}, Config: items.ScanKey(),
			After: []byte("p"), Rows: 1, Batches: 1, Left: -1, RunID: "r", StartedAt: now}
		is.NoErr(cpr.SaveCheckpoint(ctx, cp))
		cps, err := b.Checkpoints(ctx)
		is.NoErr(err)
		is.Equal(len(cps), 1)
		is.Equal(cps[0].Table, "items")
		is.Equal(cps[0].Direction, gapsync.Push)
	}

	// A row of a transaction still open, stamped inside the window, holds
	// the bound before it: the window is not called empty past it.
	if h.Features.ConcurrentWriters {
		fromT, err = x.Source.Bound(ctx, items)
		is.NoErr(err)
		tx, err := x.SQL.BeginTx(ctx, nil)
		is.NoErr(err)
		defer tx.Rollback()
		_, err = tx.Exec("INSERT INTO items (id, k2, updated_at) VALUES (3, 'late', " + h.Now + ")")
		is.NoErr(err)
		var stamped string
		is.NoErr(tx.QueryRow("SELECT "+h.timeText("updated_at")+" FROM items WHERE id = 3 AND 1 = ?", 1).Scan(&stamped))
		time.Sleep(1200 * time.Millisecond) // the open transaction ages past the lag
		bounds, err = b.EmptyWindows(ctx, []gapsync.Table{items}, []string{fromT})
		is.NoErr(err)
		is.True(bounds[0] == "" || bounds[0] <= stamped)
		is.NoErr(tx.Commit())
	}
}
