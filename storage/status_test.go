package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// TestStatusOfScriptedHistory writes a history (runs good and failed, a
// parked direction, file records, conflicts old and new) and checks what
// Status makes of it; then a reload, which starts the table again
// without erasing a line of its history.
func TestStatusOfScriptedHistory(t *testing.T) {
	open := map[string]func(t *testing.T) (*storage.DB, error){
		"sqlite":   func(t *testing.T) (*storage.DB, error) { return storage.OpenSQLite(testdb.SQLite(t), testOpts) },
		"mariadb":  func(t *testing.T) (*storage.DB, error) { return storage.OpenMySQL(testdb.MySQL(t), testOpts) },
		"postgres": func(t *testing.T) (*storage.DB, error) { return storage.OpenPostgres(testdb.Postgres(t), testOpts) },
	}
	for _, name := range []string{"sqlite", "mariadb", "postgres"} {
		t.Run(name, func(t *testing.T) {
			db, err := open[name](t)
			if err != nil {
				t.Fatal(err)
			}
			target(t, db)
			timeType := "DATETIME(6)"
			if name == "postgres" {
				timeType = "TIMESTAMP(6)"
			}
			testStatus(t, db, timeType)
		})
	}
}

func testStatus(t *testing.T, db *storage.DB, timeType string) {
	is := is.New(t)
	ctx := context.Background()
	for _, q := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, updated_at " + timeType + " NOT NULL)",
		"CREATE TABLE events (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
		"INSERT INTO orders VALUES (1, '2026-01-01 10:00:00.000000'), (2, '2026-01-02 10:00:00.000000'), (3, '2026-01-03 10:00:00.000000')",
		"INSERT INTO events VALUES (1, 5), (2, 6)",
	} {
		_, err := db.Bun().ExecContext(ctx, q)
		is.NoErr(err)
	}
	is.NoErr(db.Configure(ctx, gapsync.Table{Name: "orders", Key: []string{"id"}, Cursor: "updated_at", Direction: gapsync.Push, Enabled: true}))
	is.NoErr(db.Configure(ctx, gapsync.Table{Name: "events", Key: []string{"id"}, Cursor: "version", Direction: gapsync.Both, Enabled: true}))

	now := time.Now().UTC()
	run := func(table string, d gapsync.Direction, to string, rows int64, conflicts int, ago time.Duration, err error) {
		t.Helper()
		is.NoErr(db.Record(ctx, gapsync.LogEntry{RunID: "r", Table: table, Direction: d, Window: gapsync.Window{To: to},
			Rows: rows, Written: rows, Conflicts: conflicts, Err: err, StartedAt: now.Add(-ago - time.Second), FinishedAt: now.Add(-ago)}))
	}
	run("orders", gapsync.Push, "2026-01-01 00:00:00.000000", 40, 7, 48*time.Hour, nil) // old: its conflicts are not today's
	run("orders", gapsync.Push, "2026-01-02 00:00:00.000000", 12, 2, time.Hour, nil)
	run("orders", gapsync.Push, "2026-01-03 00:00:00.000000", 0, 0, time.Minute, errors.New("gateway unreachable"))
	run("events", gapsync.Push, "6", 1, 1, 2*time.Minute, nil)
	run("events", gapsync.Pull, "9", 3, 0, 2*time.Minute, errors.New("rows refused"))
	is.NoErr(db.Park(ctx, "events", gapsync.Pull, "rows refused: charset"))

	recs := []gapsync.FileRecord{
		{ID: "f1", Origin: gapsync.Internet, Ref: "a.png", Status: gapsync.FilePublished, Size: 100},
		{ID: "f2", Origin: gapsync.Internet, Ref: "b.png", Status: gapsync.FilePublished, Size: 50},
		{ID: "f3", Origin: gapsync.Internet, Ref: "c.png", Status: gapsync.FileExtracted},
		{ID: "f4", Origin: gapsync.Internet, Ref: "d.png", Status: gapsync.FileFailed, Error: `stage "d.png": open d.png: no such file or directory`},
		{ID: "f5", Origin: gapsync.Internet, Ref: "e.png", Status: gapsync.FileFailed, Error: `stage "e.png": open e.png: no such file or directory`},
		{ID: "f6", Origin: gapsync.Intranet, Ref: "../x", Status: gapsync.FileRefused, Error: `gapsync: bad path: "../x" leaves the store`},
	}
	is.NoErr(db.PutFileRecords(ctx, recs))

	st, err := db.Status(ctx)
	is.NoErr(err)
	is.Equal(len(st.Tables), 3) // events pull and push, orders push
	byKey := map[string]storage.TableStatus{}
	for _, ts := range st.Tables {
		byKey[ts.Table+" "+ts.Direction] = ts
	}
	o := byKey["orders push"]
	is.Equal(o.Window, "2026-01-02 00:00:00.000000") // the last good one, not the failed one after it
	is.True(o.AgeSeconds > 3590 && o.AgeSeconds < 3700)
	is.Equal(o.LastRun.Status, storage.StatusFailed)
	is.Equal(o.LastError, "gateway unreachable")
	is.Equal(o.ConflictsDay, 2)
	is.Equal(o.Pending, int64(2)) // the rows of Jan 2 and Jan 3
	is.True(o.Parked == nil)
	e := byKey["events pull"]
	is.True(e.Parked != nil)
	is.Equal(e.Parked.Reason, "rows refused: charset")
	is.Equal(e.Window, "")
	is.Equal(e.AgeSeconds, -1.0)
	is.Equal(e.Pending, int64(-1)) // pull rows are counted on the other side
	ep := byKey["events push"]
	is.Equal(ep.Window, "6")
	is.Equal(ep.LastRun.Rows, int64(1))
	is.Equal(ep.Pending, int64(1)) // version 6 is at the bound
	is.Equal(ep.LastError, "")

	files := map[string]storage.FileCount{}
	for _, f := range st.Files {
		files[f.Origin+" "+f.Status] = f
	}
	is.Equal(files["internet published"].Count, int64(2))
	is.Equal(files["internet published"].Bytes, int64(150))
	is.Equal(files["internet failed"].Count, int64(2))
	is.Equal(files["intranet refused"].Count, int64(1))
	is.Equal(len(st.Failures), 2)
	is.Equal(st.Failures[0].Reason, "no such file or directory") // two files, one reason
	is.Equal(st.Failures[0].Count, int64(2))
	is.Equal(st.Failures[1].Reason, "… leaves the store")

	// Reload: the next run starts from the first row, the history stays.
	before, err := db.Log(ctx, "orders", 0)
	is.NoErr(err)
	dirs, err := db.Reload(ctx, "orders", "coordinator", 0)
	is.NoErr(err)
	is.Equal(dirs, []gapsync.Direction{gapsync.Push})
	w, ok, err := db.LastWindow(ctx, "orders", gapsync.Push)
	is.NoErr(err)
	is.True(ok)
	is.Equal(w, "")
	after, err := db.Log(ctx, "orders", 0)
	is.NoErr(err)
	is.Equal(len(after), len(before)+1)
	is.Equal(after[0].Status, storage.StatusReload)
	is.Equal(after[0].WindowFrom, "2026-01-02 00:00:00.000000") // where it stood
	is.Equal(after[1:], before)
	st, err = db.Status(ctx)
	is.NoErr(err)
	for _, ts := range st.Tables {
		if ts.Table == "orders" {
			is.Equal(ts.Pending, int64(3)) // every row again
			is.Equal(ts.Window, "")
		}
	}
	// A lease held by a running cycle holds the reload back.
	is.NoErr(db.Acquire(ctx, "coordinator", "someone", time.Minute))
	_, err = db.Reload(ctx, "events", "coordinator", 0)
	is.True(errors.Is(err, gapsync.ErrLeaseHeld))
	is.NoErr(db.Release(ctx, "coordinator", "someone"))
	dirs, err = db.Reload(ctx, "events", "coordinator", 0, gapsync.Pull)
	is.NoErr(err)
	is.Equal(dirs, []gapsync.Direction{gapsync.Pull})
	_, err = db.Reload(ctx, "orders", "coordinator", 0, gapsync.Pull) // orders is push only
	is.True(errors.Is(err, gapsync.ErrUnknownTable))
	_, err = db.Reload(ctx, "nope", "coordinator", 0)
	is.True(errors.Is(err, gapsync.ErrUnknownTable))
}
