package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/sqltest"
)

func target(t *testing.T, db *storage.DB) *sqltest.Target {
	t.Helper()
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Migrate twice: it must be idempotent.
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &sqltest.Target{SQL: db.Bun().DB, Source: db, Writer: db, Journal: db, Replay: db, Lease: db, Configure: db.Configure,
		Reader: db, Files: db, Conflicts: db, Parking: db, Checkpoints: db, Tombstones: db.InstallTombstones, Internet: db, Intranet: db}
}

var testOpts = &storage.Options{Lag: 300 * time.Millisecond}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel() // a whole suite, mostly waiting on its server: two at a time
	sqltest.Run(t, sqltest.Harness{
		Open: func(t *testing.T) *sqltest.Target {
			db, err := storage.OpenSQLite(testdb.SQLite(t), testOpts)
			if err != nil {
				t.Fatal(err)
			}
			return target(t, db)
		},
		Now:   "strftime('%Y-%m-%d %H:%M:%f', 'now')",
		Types: sqltest.SQLiteTypes,
	})
}

func TestConformanceMariaDB(t *testing.T) {
	t.Parallel()    // a whole suite, mostly waiting on its server: two at a time
	testdb.MySQL(t) // skip early without a server
	sqltest.Run(t, sqltest.Harness{
		Open: func(t *testing.T) *sqltest.Target {
			db, err := storage.OpenMySQL(testdb.MySQL(t), testOpts)
			if err != nil {
				t.Fatal(err)
			}
			return target(t, db)
		},
		Now:      "NOW(6)",
		Types:    sqltest.MySQLTypes,
		Features: sqltest.Features{ConcurrentWriters: true, ChecksumTable: true},
	})
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()       // a whole suite, mostly waiting on its server: two at a time
	testdb.Postgres(t) // skip early without a server
	sqltest.Run(t, sqltest.Harness{
		Open: func(t *testing.T) *sqltest.Target {
			db, err := storage.OpenPostgres(testdb.Postgres(t), testOpts)
			if err != nil {
				t.Fatal(err)
			}
			return target(t, db)
		},
		Now:      "LOCALTIMESTAMP(6)",
		Types:    sqltest.PostgresTypes,
		Features: sqltest.Features{ConcurrentWriters: true},
		TimeType: "TIMESTAMP(6)",
		TimeText: "to_char(%s, 'YYYY-MM-DD HH24:MI:SS.US')",
		TextHash: "SELECT md5(string_agg(t::text, E'\\n' ORDER BY %[2]s)) FROM %[1]s AS t",
	})
}
