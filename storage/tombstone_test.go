package storage_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

func envInt(t *testing.T, name string, def int) int {
	if s := os.Getenv(name); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive integer", name, s)
		}
		return n
	}
	return def
}

var gone = gapsync.Table{Name: "gone", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}

// fillGone creates table gone with n rows.
func fillGone(t *testing.T, db *storage.DB, n int) {
	t.Helper()
	ctx := context.Background()
	ddl := "CREATE TABLE gone (id BIGINT PRIMARY KEY, v INT, updated_at DATETIME(6), ver BIGINT)"
	if db.Dialect() == "sqlite" {
		ddl = "CREATE TABLE gone (id INTEGER PRIMARY KEY, v INTEGER, updated_at DATETIME(6), ver BIGINT)"
	}
	storage.MustExec(t, db, ddl)
	for start := 0; start < n; start += 1000 {
		var vals []string
		for i := start; i < min(start+1000, n); i++ {
			vals = append(vals, fmt.Sprintf("(%d, %d, '2026-01-01 00:00:00.000000', %d)", i+1, i, i+1))
		}
		if _, err := db.Bun().ExecContext(ctx, "INSERT INTO gone (id, v, updated_at, ver) VALUES "+strings.Join(vals, ",")); err != nil {
			t.Fatal(err)
		}
	}
}

func triggerBody(t *testing.T, db *storage.DB) string {
	t.Helper()
	q := "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'gone'"
	switch db.Dialect() {
	case "mysql":
		q = "SELECT ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'gone'"
	case "postgres": // the body is the trigger function's
		q = "SELECT p.prosrc FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid " +
			"WHERE c.relname = 'gone' AND NOT t.tgisinternal"
	}
	rows, err := db.Bun().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var bodies []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	if len(bodies) != 1 {
		t.Fatalf("table gone has %d delete triggers, want 1: %q", len(bodies), bodies)
	}
	return bodies[0]
}

func count(t *testing.T, db *storage.DB, table string) int {
	t.Helper()
	var n int
	if err := db.Bun().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTombstoneReinstallKeepsEveryDelete: the mains install the tombstone
// triggers at every start, while the application deletes rows. Every one
// of 30,000 deletes, made one at a time by concurrent deleters on their
// own connections, leaves a tombstone, while the trigger is reinstalled
// 40 times: every other time with a changed definition (it must be
// replaced with no moment without a trigger), else the same (it must be
// left alone). Each DELETE statement removes 10 rows, to keep the run
// short; GAPSYNC_TOMBSTONE_DELETES, GAPSYNC_TOMBSTONE_REINSTALLS and
// GAPSYNC_TOMBSTONE_PER_DELETE (1 for one row a statement) make a longer
// run. Under the race detector, SQLite deletes 5,000 rows unless told.
// It runs for a time cursor and for an integer one (whose tombstones keep
// the row's last version as well).
func TestTombstoneReinstallKeepsEveryDelete(t *testing.T) {
	for _, cursor := range []string{"updated_at", "ver"} {
		gone := gone
		gone.Cursor = cursor
		t.Run(cursor, func(t *testing.T) { testReinstallKeepsEveryDelete(t, gone) })
	}
}

func testReinstallKeepsEveryDelete(t *testing.T, gone gapsync.Table) {
	n := envInt(t, "GAPSYNC_TOMBSTONE_DELETES", 30000)
	reinstalls := envInt(t, "GAPSYNC_TOMBSTONE_REINSTALLS", 40)
	per := envInt(t, "GAPSYNC_TOMBSTONE_PER_DELETE", 10) // rows per DELETE
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		defer storage.SetTombstoneMark("")()
		n := n
		if raceEnabled && db.Dialect() == "sqlite" && os.Getenv("GAPSYNC_TOMBSTONE_DELETES") == "" {
			n /= 6 // the race detector slows the pure-Go SQLite some fortyfold
		}
		fillGone(t, db, n)
		is.NoErr(db.InstallTombstones(ctx, gone))

		deleters := 4
		if db.Dialect() == "sqlite" {
			deleters = 1 // SQLite has one writer at a time: more only wait in its busy handler
		}
		var deleted atomic.Int64
		errs := make(chan error, deleters)
		var wg sync.WaitGroup
		for g := 0; g < deleters; g++ {
			conn, err := db.Bun().DB.Conn(ctx) // a connection of its own
			is.NoErr(err)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				// Deleter g deletes the ids g+1, g+1+deleters, …, per
				// statement (one transaction each).
				for id := g + 1; id <= n; {
					var ids []string
					for ; id <= n && len(ids) < per; id += deleters {
						ids = append(ids, strconv.Itoa(id))
					}
					if _, err := conn.ExecContext(ctx, "DELETE FROM gone WHERE id IN ("+strings.Join(ids, ",")+")"); err != nil {
						errs <- err
						return
					}
					deleted.Add(int64(len(ids)))
				}
			}()
		}
		changed, kept := 0, 0
		mark := ""
		for i := 0; i < reinstalls; i++ {
			for deleted.Load() < int64((i+1)*n/(reinstalls+1)) && len(errs) == 0 {
				time.Sleep(time.Millisecond)
			}
			if i%2 == 0 {
				mark = fmt.Sprintf(" /* revision %d */", i)
				storage.SetTombstoneMark(mark)
				changed++
			} else {
				kept++
			}
			is.NoErr(db.InstallTombstones(ctx, gone))
			// The trigger now in place is the current definition, and a
			// second install has nothing to change.
			is.True(strings.Contains(triggerBody(t, db), mark))
			ddl, err := db.TombstoneDDL(ctx, gone)
			is.NoErr(err)
			for _, q := range ddl {
				is.True(!strings.Contains(q, "TRIGGER")) // a current trigger is left alone
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			is.NoErr(err)
		}
		is.Equal(count(t, db, "gone"), 0)
		if got := count(t, db, "gst_gone"); got != n {
			t.Fatalf("%d of %d deletes left no tombstone across %d reinstalls (%d changed, %d the same)", n-got, n, reinstalls, changed, kept)
		}
		if gone.Cursor == "ver" { // each keeps the deleted row's last version
			is.Equal(count(t, db, "gst_gone WHERE deleted_cursor = id"), n)
		}
		t.Logf("%d deletes (%d rows a statement) by %d deleters, %d reinstalls (%d changed, %d the same): every delete has its tombstone", n, per, deleters, reinstalls, changed, kept)
	})
}

// TestTombstoneReinstallBehindLock: while a transaction holds the table,
// a reinstall that must change the trigger waits, and a delete queues
// behind it. When the transaction ends, the delete must not run in a gap
// between dropping the old trigger and creating the new one. (MariaDB's
// metadata lock is taken by a read; PostgreSQL's CREATE TRIGGER waits for
// a transaction that has written the table.)
func TestTombstoneReinstallBehindLock(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		if db.Dialect() == "sqlite" {
			t.Skip("SQLite has no table locks to queue behind")
		}
		is := is.New(t)
		ctx := context.Background()
		defer storage.SetTombstoneMark("")()
		fillGone(t, db, 10)
		is.NoErr(db.InstallTombstones(ctx, gone))
		holder, err := db.Bun().DB.Conn(ctx)
		is.NoErr(err)
		defer holder.Close()
		deleter, err := db.Bun().DB.Conn(ctx)
		is.NoErr(err)
		defer deleter.Close()
		_, err = holder.ExecContext(ctx, "BEGIN")
		is.NoErr(err)
		var v int
		is.NoErr(holder.QueryRowContext(ctx, "SELECT v FROM gone WHERE id = 1").Scan(&v))
		waitQuery := "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND " +
			"STATE LIKE 'Waiting for table metadata lock' AND INFO LIKE ?"
		if db.Dialect() == "postgres" {
			_, err = holder.ExecContext(ctx, "UPDATE gone SET v = v WHERE id = 1")
			is.NoErr(err)
			waitQuery = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE ?"
		}

		waiting := func(like string) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				var n int
				is.NoErr(db.Bun().DB.QueryRowContext(ctx, waitQuery, like).Scan(&n))
				if n > 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no statement like %q waits for the table", like)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		storage.SetTombstoneMark(" /* changed */")
		installed := make(chan error, 1)
		go func() { installed <- db.InstallTombstones(ctx, gone) }()
		waiting("%TRIGGER%")
		deletedOne := make(chan error, 1)
		go func() {
			_, err := deleter.ExecContext(ctx, "DELETE FROM gone WHERE id = 2")
			deletedOne <- err
		}()
		waiting("DELETE%")
		_, err = holder.ExecContext(ctx, "COMMIT")
		is.NoErr(err)
		is.NoErr(<-installed)
		is.NoErr(<-deletedOne)
		var tomb int
		is.NoErr(db.Bun().QueryRowContext(ctx, "SELECT COUNT(*) FROM gst_gone WHERE id = 2").Scan(&tomb))
		is.Equal(tomb, 1) // the queued delete left its tombstone
		is.True(strings.Contains(triggerBody(t, db), "changed"))
	})
}
