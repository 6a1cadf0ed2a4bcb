package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/internal/testdb"
)

// A PostgreSQL database whose default time zone is not UTC: its
// applications' sessions stamp a TIMESTAMP WITHOUT TIME ZONE with the
// wall time of that zone (DEFAULT LOCALTIMESTAMP, or now() cast), while
// gapsync's own sessions run in UTC. The bound of such a cursor, and its
// tombstones' times, are that zone's wall time; a TIMESTAMPTZ cursor's are
// UTC. A row stamped by the application lies inside the next window
// either way, and so does its deletion.
func TestPostgresZoneCursors(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	url := testdb.Postgres(t)
	app, err := sql.Open("pgx", url)
	is.NoErr(err)
	defer app.Close()
	var name string
	is.NoErr(app.QueryRow("SELECT current_database()").Scan(&name))
	_, err = app.Exec(`ALTER DATABASE "` + name + `" SET timezone = 'Asia/Shanghai'`)
	is.NoErr(err)
	app.SetMaxIdleConns(0) // the application's next sessions start in the new default
	db, err := OpenPostgres(url, &Options{Lag: 50 * time.Millisecond})
	is.NoErr(err)
	defer db.Close()
	is.NoErr(db.Migrate(ctx))
	is.Equal(db.d.(pgDialect).zone, "Asia/Shanghai")

	for _, q := range []string{
		"CREATE TABLE wall (id BIGINT PRIMARY KEY, v TEXT, updated_at TIMESTAMP(6) NOT NULL DEFAULT LOCALTIMESTAMP)",
		"CREATE TABLE wall_now (id BIGINT PRIMARY KEY, v TEXT, updated_at TIMESTAMP(6) NOT NULL DEFAULT now())",
		"CREATE TABLE instant (id BIGINT PRIMARY KEY, v TEXT, updated_at TIMESTAMPTZ(6) NOT NULL DEFAULT now())",
	} {
		_, err := app.Exec(q)
		is.NoErr(err)
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	is.NoErr(err)
	for _, c := range []struct {
		table string
		zone  *time.Location // of the bound and of the values read
	}{{"wall", shanghai}, {"wall_now", shanghai}, {"instant", time.UTC}} {
		t.Run(c.table, func(t *testing.T) {
			is := is.New(t)
			tb := gapsync.Table{Name: c.table, Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
			is.NoErr(db.Configure(ctx, tb))
			is.NoErr(db.InstallTombstones(ctx, tb))
			b0, err := db.Bound(ctx, tb)
			is.NoErr(err)
			_, err = app.Exec("INSERT INTO " + c.table + " (id, v) VALUES (1, 'by the application')")
			is.NoErr(err)
			time.Sleep(300 * time.Millisecond) // past the lag
			b1, err := db.Bound(ctx, tb)
			is.NoErr(err)
			at, err := time.ParseInLocation(timeLayout, b1, c.zone)
			is.NoErr(err)
			if d := time.Since(at); d < 0 || d > 10*time.Second {
				t.Fatalf("bound %s is %v from now in %s", b1, d, c.zone)
			}
			rows := readAll(t, db, tb, gapsync.Window{From: b0, To: b1})
			is.Equal(len(rows), 1) // the application's row is in the window
			stamp, err := time.ParseInLocation(timeLayout, text(rows[0].Values[2]), c.zone)
			is.NoErr(err)
			is.True(time.Since(stamp) < 10*time.Second && !stamp.After(at)) // read in the bound's zone

			_, err = app.Exec("DELETE FROM " + c.table + " WHERE id = 1")
			is.NoErr(err)
			time.Sleep(300 * time.Millisecond)
			b2, err := db.Bound(ctx, tb)
			is.NoErr(err)
			rows = readAll(t, db, tb, gapsync.Window{From: b1, To: b2})
			is.Equal(len(rows), 1)
			is.Equal(rows[0].Op, batch.OpDelete) // the deletion is in the next window
		})
	}
}

// Keys of text with spaces, Chinese and mixed case, in a composite key
// under the database's collation, page by keyset one row at a time with
// every row once; a table or column name outside the identifier rules is
// refused, not quoted.
func TestPostgresCompositeTextKeys(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	db := openEngine(t, "postgres", &Options{Lag: time.Millisecond})
	is.NoErr(db.Migrate(ctx))
	MustExec(t, db, "CREATE TABLE kv (a TEXT NOT NULL, b INT NOT NULL, v TEXT, updated_at TIMESTAMP(6), PRIMARY KEY (a, b))")
	tb := gapsync.Table{Name: "kv", Direction: gapsync.Both, Key: []string{"a", "b"}, Cursor: "updated_at", Enabled: true}
	is.NoErr(db.Configure(ctx, tb))
	keys := []string{"a b", "a  b", "ab", "A B", "中文 键", "中文键", "订单 明细", " lead", "trail ", "Zebra", "zebra", "ä", "é"}
	for i, k := range keys {
		for j := 0; j < 2; j++ {
			_, err := db.sql.Exec("INSERT INTO kv VALUES (?, ?, ?, '2026-01-01 00:00:00')", k, j, fmt.Sprint(i))
			is.NoErr(err)
		}
	}
	seen := map[string]bool{}
	for _, r := range readAll(t, db, tb, gapsync.Window{To: "2026-01-02 00:00:00.000000"}) {
		k := text(r.Values[0]) + "/" + text(r.Values[1])
		is.True(!seen[k]) // once
		seen[k] = true
	}
	is.Equal(len(seen), 2*len(keys))
	for _, k := range keys {
		is.True(seen[k+"/0"] && seen[k+"/1"])
	}
	for _, n := range []string{"订单", "order items", `kv"`} {
		err := db.Configure(ctx, gapsync.Table{Name: n, Direction: gapsync.Both, Key: []string{"a"}, Cursor: "updated_at", Enabled: true})
		is.True(errors.Is(err, gapsync.ErrBadIdentifier))
		err = db.Configure(ctx, gapsync.Table{Name: "kv", Direction: gapsync.Both, Key: []string{n}, Cursor: "updated_at", Enabled: true})
		is.True(errors.Is(err, gapsync.ErrBadIdentifier))
	}
}
