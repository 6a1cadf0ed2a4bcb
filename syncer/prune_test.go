package syncer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
)

var _ syncer.LogPruner = (*storage.DB)(nil)

// Run keeps the sync log to LogRetention: entries older than it that a
// newer good run has made history go between cycles, while the tables go
// on syncing from their newest windows; a negative retention keeps all.
func TestRunPrunesTheSyncLog(t *testing.T) {
	for _, keep := range []time.Duration{30 * 24 * time.Hour, -1} {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, "sqlite", zoneOpts{})
		z.both(versioned, versionedDDL)
		old := time.Now().Add(-90 * 24 * time.Hour)
		for i := range 50 { // a quarter's history
			at := old.Add(time.Duration(i) * time.Minute)
			is.NoErr(z.inet.Record(ctx, gapsync.LogEntry{RunID: "old", Table: "versioned", Direction: gapsync.Push,
				Window: gapsync.Window{To: "0"}, StartedAt: at, FinishedAt: at}))
		}
		z.put(gapsync.Internet, 1, "one")
		z.cycle()
		before := logCount(t, z, "old")
		is.Equal(before, 50)

		coord, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Interval: 50 * time.Millisecond, LogRetention: keep})
		is.NoErr(err)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- coord.Run(rctx) }()
		z.put(gapsync.Internet, 3, "three")
		waitFor(t, 20*time.Second, func() bool { return count(t, z.dst(), "SELECT COUNT(*) FROM versioned WHERE id = 3") == 1 })
		time.Sleep(200 * time.Millisecond) // a pause between cycles has come
		cancel()
		is.True(errors.Is(<-done, context.Canceled))
		if keep > 0 {
			is.Equal(logCount(t, z, "old"), 0) // history older than the retention is gone
		} else {
			is.Equal(logCount(t, z, "old"), 50) // kept
		}
		to, ok, err := z.inet.LastWindow(ctx, "versioned", gapsync.Push)
		is.NoErr(err)
		is.True(ok && to != "0") // the newest window is the real one
	}
}

func logCount(t *testing.T, z *zones, run string) int {
	t.Helper()
	return count(t, z.src(), "SELECT COUNT(*) FROM sync_log WHERE run_id = '"+run+"'")
}
