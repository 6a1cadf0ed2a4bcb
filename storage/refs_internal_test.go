package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

func eachEngine(t *testing.T, fn func(t *testing.T, db *DB)) {
	EachEngine(t, &Options{Lag: time.Millisecond}, fn)
}

const docsDDL = "CREATE TABLE docs (id BIGINT PRIMARY KEY, title VARCHAR(100), path VARCHAR(300), updated_at DATETIME(6))"

var raceDocs = gapsync.Table{Name: "docs", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", FileColumns: []string{"path"}, Enabled: true}

// docBatch is a push batch of docs rows (id, title, path).
func docBatch(id string, rows ...[]any) *batch.Batch {
	b := &batch.Batch{ID: id, Table: "docs", Direction: string(gapsync.Push),
		Columns: []batch.Column{{Name: "id", Key: true}, {Name: "title"}, {Name: "path"}, {Name: "updated_at"}}}
	for _, r := range rows {
		b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: append(r, "2026-01-01 00:00:00.000000")})
	}
	return b
}

// An application's edit that lands between the rewrite finding a row and
// rewriting it is kept: an edit of another column stays, with the rewrite
// done, and still travels (its ledger entry is not moved onto it); an edit
// of the reference itself wins over the rewrite.
func TestRewriteRacingEdit(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *DB) {
		is := is.New(t)
		ctx := context.Background()
		MustExec(t, db, docsDDL)
		is.NoErr(db.Configure(ctx, raceDocs))
		_, err := db.Apply(ctx, docBatch("b1", []any{int64(1), "synced", "a.png"}, []any{int64(2), "synced", "b.png"}))
		is.NoErr(err)
		t.Cleanup(func() { testHookRewriteFound = nil })
		travels := func(id int64) bool {
			b, _, _, err := db.ReadPage(ctx, raceDocs, gapsync.Window{To: "9999-12-31 00:00:00.000000"}, nil, gapsync.Page{})
			is.NoErr(err)
			for _, r := range b.Rows {
				if text(r.Values[0]) == fmt.Sprint(id) {
					return true
				}
			}
			return false
		}
		is.True(!travels(1)) // arrived by sync

		testHookRewriteFound = func() {
			_, err := db.sql.Exec("UPDATE docs SET title = 'edited meanwhile' WHERE id = 1")
			is.NoErr(err)
		}
		n, err := db.RewriteRefsMany(ctx, map[string]string{"a.png": "from-internet/a.png"})
		is.NoErr(err)
		is.Equal(n, 1)
		var title, path string
		is.NoErr(db.sql.QueryRow("SELECT title, path FROM docs WHERE id = 1").Scan(&title, &path))
		is.Equal(title, "edited meanwhile")
		is.Equal(path, "from-internet/a.png")
		is.True(travels(1)) // the edit is a local change: it goes

		testHookRewriteFound = func() {
			_, err := db.sql.Exec("UPDATE docs SET path = 'mine.png' WHERE id = 2")
			is.NoErr(err)
		}
		n, err = db.RewriteRefsMany(ctx, map[string]string{"b.png": "from-internet/b.png"})
		is.NoErr(err)
		is.Equal(n, 0)
		is.NoErr(db.sql.QueryRow("SELECT path FROM docs WHERE id = 2").Scan(&path))
		is.Equal(path, "mine.png") // the application's reference won
		is.True(travels(2))
	})
}

func text(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}
