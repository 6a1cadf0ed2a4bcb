package storage_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// InnoDB refreshes information_schema.INNODB_TRX on a read only when it
// went unread for 0.1 s, so a monitor that polls it more often keeps it
// as it was before a writer began. The integer cursor's guard must not
// take that frozen view for "no writer open": the bound stays where it
// was before the uncommitted row, and moves on once the writer commits
// (by the lag, where the look had to read that view: behind a device
// that passes DML only).
func TestIntegerGuardSurvivesAFrozenTransactionView(t *testing.T) {
	for _, name := range []string{storage.DevicePrepared, storage.DeviceDMLOnly} {
		dev, err := storage.DevicePreset(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(dev.Name, func(t *testing.T) { testFrozenTransactionView(t, dev) })
	}
}

func testFrozenTransactionView(t *testing.T, dev storage.DeviceProfile) {
	is := is.New(t)
	dsn := testdb.MySQL(t)
	ctx := context.Background()
	setup, err := storage.OpenMySQL(dsn, nil)
	is.NoErr(err)
	is.NoErr(setup.Migrate(ctx)) // DDL: not through a DML-only device
	storage.MustExec(t, setup, "CREATE TABLE v (id BIGINT PRIMARY KEY, ver BIGINT)")
	tb := gapsync.Table{Name: "v", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "ver", Enabled: true}
	is.NoErr(setup.Configure(ctx, tb))
	setup.Close()
	db, err := storage.OpenMySQL(dsn, &storage.Options{Lag: 300 * time.Millisecond, Device: dev})
	is.NoErr(err)
	defer db.Close()
	storage.MustExec(t, db, "INSERT INTO v VALUES (1, 1)")
	b, err := db.Bound(ctx, tb)
	is.NoErr(err)
	is.Equal(b, "2")
	time.Sleep(400 * time.Millisecond) // that bound is older than the lag

	monitor, err := sql.Open("mysql", dsn)
	is.NoErr(err)
	defer monitor.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a dashboard polling the transactions every 20 ms
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var n int
			_ = monitor.QueryRow("SELECT COUNT(*) FROM information_schema.INNODB_TRX").Scan(&n)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(150 * time.Millisecond) // the view is frozen with no writer in it

	tx, err := db.Bun().DB.BeginTx(ctx, nil)
	is.NoErr(err)
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, "INSERT INTO v VALUES (2, 2)") // slow: not committed yet
	is.NoErr(err)
	storage.MustExec(t, db, "INSERT INTO v VALUES (3, 3)") // fast: committed, greater
	b, err = db.Bound(ctx, tb)
	is.NoErr(err)
	is.True(gapsync.CompareBounds(b, "2") <= 0) // version 2 may still commit: the window stops before it

	is.NoErr(tx.Commit())
	close(stop)
	wg.Wait()
	_, err = db.Bound(ctx, tb)
	is.NoErr(err)
	time.Sleep(400 * time.Millisecond)
	b, err = db.Bound(ctx, tb)
	is.NoErr(err)
	is.Equal(b, "4") // past the lag, the bound moves on
}
