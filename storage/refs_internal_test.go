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

// A page of references rewritten in one go: more rows than one statement
// of UpdateMany sets, a composite key, two file columns of which a row may
// name a file in one or both, and a row whose reference an application
// changed between the rewrite finding and rewriting it, which keeps the
// application's value while every other row is rewritten.
func TestRewriteManyRows(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *DB) {
		is := is.New(t)
		ctx := context.Background()
		MustExec(t, db, "CREATE TABLE pics (shelf INT NOT NULL, name VARCHAR(40) NOT NULL, path VARCHAR(300), thumb VARCHAR(300), updated_at DATETIME(6), PRIMARY KEY (shelf, name))")
		tb := gapsync.Table{Name: "pics", Direction: gapsync.Both, Key: []string{"shelf", "name"}, Cursor: "updated_at", FileColumns: []string{"path", "thumb"}, Enabled: true}
		is.NoErr(db.Configure(ctx, tb))
		const n = 2*updateManyRows + 41
		b := &batch.Batch{ID: "many", Table: "pics", Direction: string(gapsync.Push),
			Columns: []batch.Column{{Name: "shelf", Key: true}, {Name: "name", Key: true}, {Name: "path"}, {Name: "thumb"}, {Name: "updated_at"}}}
		refs := map[string]string{}
		for i := 0; i < n; i++ {
			p := fmt.Sprintf("p/%d.png", i)
			var thumb any
			if i%3 == 0 {
				thumb = fmt.Sprintf("t/%d.png", i)
				refs[thumb.(string)] = "local/" + thumb.(string)
			}
			refs[p] = "local/" + p
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: []any{int64(i % 7), fmt.Sprintf("名 %d", i), p, thumb, "2026-01-01 00:00:00.000000"}})
		}
		_, err := db.Apply(ctx, b)
		is.NoErr(err)
		t.Cleanup(func() { testHookRewriteFound = nil })
		testHookRewriteFound = func() {
			_, err := db.sql.Exec("UPDATE pics SET path = 'mine.png' WHERE shelf = 5 AND name = '名 5'")
			is.NoErr(err)
		}
		got, err := db.RewriteRefsMany(ctx, refs)
		is.NoErr(err)
		is.Equal(got, n-1) // all but the edited row
		rows, err := db.sql.Query("SELECT shelf, name, path, thumb FROM pics")
		is.NoErr(err)
		defer rows.Close()
		seen := 0
		for rows.Next() {
			var shelf int
			var name, path string
			var thumb *string
			is.NoErr(rows.Scan(&shelf, &name, &path, &thumb))
			var i int
			_, err := fmt.Sscanf(name, "名 %d", &i)
			is.NoErr(err)
			seen++
			if i == 5 {
				is.Equal(path, "mine.png")
				continue
			}
			is.Equal(path, fmt.Sprintf("local/p/%d.png", i))
			if i%3 == 0 {
				is.True(thumb != nil && *thumb == fmt.Sprintf("local/t/%d.png", i))
			} else {
				is.True(thumb == nil)
			}
		}
		is.NoErr(rows.Err())
		is.Equal(seen, n)
	})
}
