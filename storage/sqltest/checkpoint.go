package sqltest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// testCheckpoints holds Checkpointer to its contract: a checkpoint is
// stored, replaced and read back whole, per table and direction; one that
// does not validate is refused with gapsync.ErrMalformed before anything
// is written; a dropped one is gone, and dropping with no direction drops
// every direction of the table.
func testCheckpoints(t *testing.T, h Harness) {
	x := h.Open(t)
	if x.Checkpoints == nil {
		t.Skip("the adapter keeps no checkpoints")
	}
	is := is.New(t)
	ctx := context.Background()
	c := x.Checkpoints
	_, ok, err := c.Checkpoint(ctx, "items", gapsync.Push)
	is.NoErr(err)
	is.True(!ok)
	cp := gapsync.Checkpoint{Table: "items", Direction: gapsync.Push, Window: gapsync.Window{To: "2026-01-02 03:04:05.000006"},
		Config: "abc", After: []byte{0, 1, 2, 255}, Rows: 1000, Batches: 1, Left: 5000, RunID: "run1",
		StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	is.NoErr(c.SaveCheckpoint(ctx, cp))
	cp.After, cp.Rows, cp.Batches, cp.Left = []byte{9, 9}, 2000, 2, 4000
	is.NoErr(c.SaveCheckpoint(ctx, cp)) // replaces
	pull := cp
	pull.Direction, pull.Window = gapsync.Pull, gapsync.Window{From: "10", To: "20@2026-01-02 03:04:05.000006"}
	is.NoErr(c.SaveCheckpoint(ctx, pull))

	got, ok, err := c.Checkpoint(ctx, "items", gapsync.Push)
	is.NoErr(err)
	is.True(ok)
	is.Equal(got.After, []byte{9, 9})
	is.Equal(got.Rows, int64(2000))
	is.Equal(got.Batches, 2)
	is.Equal(got.Left, int64(4000))
	is.Equal(got.Window, cp.Window)
	is.Equal(got.Config, "abc")
	is.Equal(got.RunID, "run1")
	is.True(got.StartedAt.Equal(cp.StartedAt))
	got, _, err = c.Checkpoint(ctx, "items", gapsync.Pull)
	is.NoErr(err)
	is.Equal(got.Window, pull.Window)
	is.Equal(got.After, []byte{9, 9})

	for name, bad := range map[string]func(c *gapsync.Checkpoint){
		"table":          func(c *gapsync.Checkpoint) { c.Table = "items; DROP" },
		"direction":      func(c *gapsync.Checkpoint) { c.Direction = gapsync.Both },
		"no bound":       func(c *gapsync.Checkpoint) { c.Window.To = "" },
		"bound":          func(c *gapsync.Checkpoint) { c.Window.To = "tomorrow" },
		"unordered":      func(c *gapsync.Checkpoint) { c.Window = gapsync.Window{From: "30", To: "20"} },
		"no position":    func(c *gapsync.Checkpoint) { c.After = nil },
		"large position": func(c *gapsync.Checkpoint) { c.After = make([]byte, gapsync.MaxCheckpointPosition+1) },
		"counts":         func(c *gapsync.Checkpoint) { c.Rows = -1 },
	} {
		b := cp
		b.Table = "other"
		bad(&b)
		if err := c.SaveCheckpoint(ctx, b); !errors.Is(err, gapsync.ErrMalformed) {
			t.Fatalf("%s: saved, or not refused as malformed: %v", name, err)
		}
	}
	_, ok, err = c.Checkpoint(ctx, "other", gapsync.Push)
	is.NoErr(err)
	is.True(!ok) // nothing written

	is.NoErr(c.DropCheckpoint(ctx, "items", gapsync.Push))
	_, ok, err = c.Checkpoint(ctx, "items", gapsync.Push)
	is.NoErr(err)
	is.True(!ok)
	_, ok, _ = c.Checkpoint(ctx, "items", gapsync.Pull)
	is.True(ok)                                  // the other direction stays
	is.NoErr(c.DropCheckpoint(ctx, "items", "")) // every direction
	_, ok, _ = c.Checkpoint(ctx, "items", gapsync.Pull)
	is.True(!ok)
}
