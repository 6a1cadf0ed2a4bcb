package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/storage"
)

// TestReplayWatermarkSurvivesPurge: once a message id is purged, an
// envelope sealed before the purge is refused as stale, also by a new
// process (the watermark lives in the database), and the watermark never
// falls.
func TestReplayWatermarkSurvivesPurge(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		t0 := time.Now().Add(-3 * time.Hour).UTC()
		is.NoErr(db.Remember(ctx, "m-old", t0))
		// Two hours later by the envelopes' time the old id is purged.
		is.NoErr(db.Remember(ctx, "m-new", t0.Add(2*time.Hour)))
		is.NoErr(db.Purge(ctx))
		var n int
		is.NoErr(db.Bun().DB.QueryRow("SELECT COUNT(*) FROM sync_message WHERE message_id = 'm-old'").Scan(&n))
		is.Equal(n, 0) // purged
		w, err := db.Watermark(ctx)
		is.NoErr(err)
		is.True(w.After(t0))

		err = db.Remember(ctx, "m-old", t0)
		is.True(errors.Is(err, gapsync.ErrStale)) // replay of a forgotten id
		// A purge with an older newest time never lowers it.
		is.NoErr(db.Remember(ctx, "m-third", t0.Add(2*time.Hour+time.Second)))
		w2, err := db.Watermark(ctx)
		is.NoErr(err)
		is.True(!w2.Before(w))
		is.True(errors.Is(db.Remember(ctx, "m-new", t0.Add(2*time.Hour)), gapsync.ErrReplayed))
	})
}

// TestAppliedLedgerPurged: applied batch ids are purged once the replay
// watermark passes their time, and a retry of a purged batch is refused as
// stale, never applied again; ids without a time are kept, and a marked id
// that does not parse is refused.
func TestAppliedLedgerPurged(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		storage.MustExec(t, db, `CREATE TABLE items (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(200) NULL, updated_at DATETIME(6) NULL)`)
		is.NoErr(db.Configure(ctx, gapsync.Table{Name: "items", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}))
		mk := func(id, name string) *batch.Batch {
			return &batch.Batch{ID: id, Table: "items", Direction: "push",
				Columns: []batch.Column{{Name: "id", Key: true}, {Name: "name"}, {Name: "updated_at"}},
				Rows:    []batch.Row{{Op: batch.OpUpsert, Values: []any{int64(1), name, "2020-01-01 00:00:00.000000"}}}}
		}
		t0 := time.Now().Add(-3 * time.Hour)
		old := gapsync.NewBatchPrefix(t0) + "-0"
		_, err := db.Apply(ctx, mk(old, "first"))
		is.NoErr(err)
		_, err = db.Apply(ctx, mk("legacy-1", "legacy"))
		is.NoErr(err)
		// A retry while the ledger holds it is a duplicate, as before.
		r, err := db.Apply(ctx, mk(old, "first"))
		is.NoErr(err)
		is.True(r.Duplicate)

		_, err = db.Apply(ctx, mk(gapsync.NewBatchPrefix(t0.Add(2*time.Hour))+"-0", "second"))
		is.NoErr(err)
		is.NoErr(db.Purge(ctx))
		ids := func() map[string]bool {
			rows, err := db.Bun().DB.Query("SELECT batch_id FROM sync_applied")
			is.NoErr(err)
			defer rows.Close()
			m := map[string]bool{}
			for rows.Next() {
				var s string
				is.NoErr(rows.Scan(&s))
				m[s] = true
			}
			return m
		}
		got := ids()
		is.True(!got[old])       // purged
		is.True(got["legacy-1"]) // no time: kept
		is.Equal(len(got), 2)    // legacy and the new one

		// The row changed since; a late retry of the purged batch must not
		// overwrite it.
		_, err = db.Bun().DB.Exec("UPDATE items SET name = 'local' WHERE id = 1")
		is.NoErr(err)
		_, err = db.Apply(ctx, mk(old, "first"))
		is.True(errors.Is(err, gapsync.ErrStale))
		var name string
		is.NoErr(db.Bun().DB.QueryRow("SELECT name FROM items WHERE id = 1").Scan(&name))
		is.Equal(name, "local")
		is.True(!ids()[old]) // nothing recorded either

		_, err = db.Apply(ctx, mk("GS1.0000000000000000.x-0", "x"))
		is.True(errors.Is(err, gapsync.ErrMalformed))
		_, err = db.Apply(ctx, mk("gs1.00ab-0", "x"))
		is.True(errors.Is(err, gapsync.ErrMalformed))
	})
}
