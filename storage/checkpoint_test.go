package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// TestCheckpointEditedInTable: the contract is sqltest's Checkpoints; here,
// a checkpoint edited into nonsense in sync_checkpoint itself is reported
// as malformed (the coordinator then starts the window over).
func TestCheckpointEditedInTable(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		cp := gapsync.Checkpoint{Table: "items", Direction: gapsync.Pull, Window: gapsync.Window{From: "10", To: "20@2026-01-02 03:04:05.000006"},
			After: []byte{9, 9}, Rows: 10, Batches: 1, RunID: "run1", StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		is.NoErr(db.SaveCheckpoint(ctx, cp))
		_, ok, err := db.Checkpoint(ctx, "items", gapsync.Pull)
		is.NoErr(err)
		is.True(ok)
		_, err = db.Bun().DB.ExecContext(ctx, "UPDATE sync_checkpoint SET window_to = 'x' WHERE direction = 'pull'")
		is.NoErr(err)
		_, ok, err = db.Checkpoint(ctx, "items", gapsync.Pull)
		is.True(ok)
		is.True(errors.Is(err, gapsync.ErrMalformed))
	})
}

// TestRemaining: the rows of a window after a page's position, for a
// first load (key order) and a later window (cursor order), with a time
// and with an integer cursor; a position of another shape is refused.
func TestRemaining(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		ddl := "CREATE TABLE rem (id BIGINT PRIMARY KEY, ver BIGINT NOT NULL, at DATETIME(6) NOT NULL)"
		if db.Dialect() == "postgres" {
			ddl = strings.Replace(ddl, "DATETIME(6)", "TIMESTAMP(6)", 1)
		}
		_, err := db.Bun().DB.ExecContext(ctx, ddl)
		is.NoErr(err)
		var vals []string
		for i := range 35 {
			vals = append(vals, fmt.Sprintf("(%d, %d, '2026-01-01 00:00:%02d.000000')", i, 100+i, i))
		}
		_, err = db.Bun().DB.ExecContext(ctx, "INSERT INTO rem VALUES "+strings.Join(vals, ","))
		is.NoErr(err)
		for _, c := range []struct {
			cursor string
			w      gapsync.Window
			rows   int64
		}{
			{"at", gapsync.Window{To: "2026-01-02 00:00:00.000000"}, 35},
			{"at", gapsync.Window{From: "2026-01-01 00:00:05.000000", To: "2026-01-01 00:00:30.000000"}, 25},
			{"ver", gapsync.Window{To: "1000"}, 35},
			{"ver", gapsync.Window{From: "110", To: "130"}, 20},
		} {
			tbl := gapsync.Table{Name: "rem", Direction: gapsync.Push, Key: []string{"id"}, Cursor: c.cursor, Enabled: true}
			is.NoErr(db.Configure(ctx, tbl))
			n, err := db.Remaining(ctx, tbl, c.w, nil)
			is.NoErr(err)
			is.Equal(n, c.rows)
			b, next, more, err := db.ReadPage(ctx, tbl, c.w, nil, gapsync.Page{Rows: 10})
			is.NoErr(err)
			is.True(more)
			if len(b.Rows) == 0 { // the deletions' phase first
				b, next, _, err = db.ReadPage(ctx, tbl, c.w, next, gapsync.Page{Rows: 10})
				is.NoErr(err)
			}
			is.Equal(len(b.Rows), 10)
			n, err = db.Remaining(ctx, tbl, c.w, next)
			is.NoErr(err)
			is.Equal(n, c.rows-10)
			other := tbl
			other.Key = []string{"ver"}
			_, err = db.Remaining(ctx, other, c.w, next)
			is.True(errors.Is(err, gapsync.ErrMalformed))
		}
	})
}
