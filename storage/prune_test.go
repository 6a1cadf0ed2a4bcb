package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// PruneLog deletes old sync_log entries that a newer good run of the same
// table and direction has made history, oldest first and at most max a
// call; the newest good window of every table and direction stays however
// old it is, and so does a failure after it.
func TestPruneLogKeepsWhatIsStillNeeded(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		now := time.Now().UTC()
		run := func(table string, d gapsync.Direction, to string, ago time.Duration, err error) {
			t.Helper()
			at := now.Add(-ago)
			is.NoErr(db.Record(ctx, gapsync.LogEntry{RunID: "r", Table: table, Direction: d, Window: gapsync.Window{To: to},
				StartedAt: at, FinishedAt: at, Err: err}))
		}
		day := 24 * time.Hour
		run("a", gapsync.Push, "1", 300*day, nil)                // history
		run("a", gapsync.Push, "1", 299*day, errors.New("down")) // history
		run("a", gapsync.Push, "2", 298*day, nil)                // history
		run("a", gapsync.Pull, "7", 297*day, nil)                // the pull's newest good window: stays
		run("a", gapsync.Push, "3", 200*day, nil)                // the push's newest good window: stays
		run("a", gapsync.Push, "3", 199*day, errors.New("late")) // a failure after it: stays
		run("b", gapsync.Push, "9", 250*day, nil)                // b's only window: stays
		run("b", gapsync.Push, "9", 10*day, nil)                 // young: stays, and makes nothing older go...
		// ...but b's older one is history now: a newer good run exists.

		n, err := db.PruneLog(ctx, now.Add(-180*day), 2)
		is.NoErr(err)
		is.Equal(n, int64(2)) // at most max, the oldest first
		n, err = db.PruneLog(ctx, now.Add(-180*day), 100)
		is.NoErr(err)
		is.Equal(n, int64(2)) // a's third and b's old one
		n, err = db.PruneLog(ctx, now.Add(-180*day), 100)
		is.NoErr(err)
		is.Equal(n, int64(0))

		rows, err := db.Log(ctx, "", 0)
		is.NoErr(err)
		var left []string
		for _, r := range rows {
			left = append(left, r.TableName+" "+r.Direction+" "+r.WindowTo+" "+r.Status)
		}
		is.Equal(left, []string{"b push 9 ok", "a push 3 failed", "a push 3 ok", "a pull 7 ok"})
		for _, c := range []struct {
			table string
			d     gapsync.Direction
			want  string
		}{{"a", gapsync.Push, "3"}, {"a", gapsync.Pull, "7"}, {"b", gapsync.Push, "9"}} {
			to, ok, err := db.LastWindow(ctx, c.table, c.d)
			is.NoErr(err)
			is.True(ok)
			is.Equal(to, c.want)
		}
		n, err = db.PruneLog(ctx, now, 0)
		is.NoErr(err)
		is.Equal(n, int64(0)) // max 0: nothing
	})
}
