package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// A cursor whose type cannot carry every change is refused at Configure,
// with the types that work, and also before a read when sync_config was
// written some other way. Time and integer cursors are accepted.
func TestUnsupportedCursorRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		var err error
		storage.MustExec(t, db, "CREATE TABLE odd (id BIGINT PRIMARY KEY, label VARCHAR(30), score FLOAT, ver BIGINT, at DATETIME(6))")
		for _, col := range []string{"label", "score"} {
			tb := gapsync.Table{Name: "odd", Direction: gapsync.Both, Key: []string{"id"}, Cursor: col, Enabled: true}
			err = db.Configure(ctx, tb)
			is.True(errors.Is(err, gapsync.ErrUnsupportedCursor))
			msg := err.Error()
			is.True(strings.Contains(msg, "odd") && strings.Contains(msg, col))                 // which table and column
			is.True(strings.Contains(msg, "DATETIME or TIMESTAMP"))                             // the types that work
			is.True(strings.Contains(msg, "BIGINT") && strings.Contains(msg, "AUTO_INCREMENT")) // and the integer kind
			_, err = db.Table(ctx, "odd", gapsync.Push)
			is.True(errors.Is(err, gapsync.ErrUnknownTable)) // nothing was written
			// Written past Configure, it is refused before a read.
			_, err = db.Bound(ctx, tb)
			is.True(errors.Is(err, gapsync.ErrUnsupportedCursor))
			_, _, _, err = db.ReadPage(ctx, tb, gapsync.Window{To: "1"}, nil, gapsync.Page{})
			is.True(errors.Is(err, gapsync.ErrUnsupportedCursor))
		}
		for _, col := range []string{"ver", "at"} {
			is.NoErr(db.Configure(ctx, gapsync.Table{Name: "odd", Direction: gapsync.Both, Key: []string{"id"}, Cursor: col, Enabled: true}))
		}
		// An integer cursor has tombstones too, with the row's last cursor.
		odd := gapsync.Table{Name: "odd", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "ver", Enabled: true}
		is.NoErr(db.InstallTombstones(ctx, odd))
		bound, err := db.Bound(ctx, odd)
		is.NoErr(err)
		rows, dels := gapsync.SplitBound(bound)
		is.True(gapsync.IsIntegerBound(rows)) // the live rows' window in numbers
		_, err = time.Parse("2006-01-02 15:04:05.000000", dels)
		is.NoErr(err) // the deletions' window in time
	})
}

// An integer cursor's bound is one past its maximum, less the margin, and
// compares as a number.
func TestIntegerBound(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		storage.MustExec(t, db, "CREATE TABLE v (id BIGINT PRIMARY KEY, ver BIGINT)")
		tb := gapsync.Table{Name: "v", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "ver", Enabled: true}
		is.NoErr(db.Configure(ctx, tb))
		empty, err := db.Bound(ctx, tb)
		is.NoErr(err)
		_, err = db.Bun().ExecContext(ctx, "INSERT INTO v VALUES (1, 9), (2, 99)")
		is.NoErr(err)
		b, err := db.Bound(ctx, tb)
		is.NoErr(err)
		is.Equal(b, "100")
		is.True(gapsync.CompareBounds(empty, b) < 0)
		// Rows 9 and 99 lie in [empty, 100); only 99 in [10, 100).
		page, _, _, err := db.ReadPage(ctx, tb, gapsync.Window{From: "10", To: b}, nil, gapsync.Page{})
		is.NoErr(err)
		is.Equal(len(page.Rows), 1)
		_, n, err := db.Checksum(ctx, tb) // every row, whatever its version
		is.NoErr(err)
		is.Equal(n, int64(2))
	})
}
