package sqltest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/sqltest"
)

// How to prove a database adapter of your own (or gapsync's on your
// database version): in a _test.go file, run the suite with a harness that
// opens a new, empty, migrated target per subtest, the SQL for the
// database's clock, and a table of the backend's edge values. Features
// turns on what the backend can do (a second writer holding an open
// transaction, CHECKSUM TABLE). Each role the target fills in is tested;
// with Internet and Intranet, the two-way rules run through the core too.
// Run it with go test; here the adapter is storage's own, on SQLite.
func ExampleRun() {
	_ = func(t *testing.T) { // func TestConformance(t *testing.T)
		sqltest.Run(t, sqltest.Harness{
			Open: func(t *testing.T) *sqltest.Target {
				db, err := storage.OpenSQLite(filepath.Join(t.TempDir(), "conformance.db"), &storage.Options{Lag: 300 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				if err := db.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				return &sqltest.Target{SQL: db.Bun().DB, Source: db, Writer: db, Journal: db, Replay: db, Lease: db, Configure: db.Configure,
					Reader: db, Files: db, Conflicts: db, Parking: db, Tombstones: db.InstallTombstones, Internet: db, Intranet: db}
			},
			Now:   "strftime('%Y-%m-%d %H:%M:%f', 'now')",
			Types: sqltest.SQLiteTypes,
		})
	}
}
