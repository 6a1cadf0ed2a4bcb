package syncer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// counted has a BIGINT version cursor fed by a global counter of each
// side (counter), which never goes back: not when the row holding the top
// version is deleted, not when a row arrives by sync. Hard deletes travel
// through tombstones; there is no soft-delete column.
var counted = gapsync.Table{Name: "versioned", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "ver", Enabled: true}

const counterDDL = "CREATE TABLE counter (id INT NOT NULL PRIMARY KEY, n BIGINT NOT NULL)"

// countedZones sets up counted on both sides, with tombstones.
func countedZones(t *testing.T, kind string) *zones {
	t.Helper()
	z := newZones(t, kind, zoneOpts{})
	z.both(counted, versionedDDL, counterDDL, "INSERT INTO counter (id, n) VALUES (1, 0)")
	for _, db := range []*storage.DB{z.inet, z.intra} {
		if err := db.InstallTombstones(context.Background(), counted); err != nil {
			t.Fatal(err)
		}
	}
	return z
}

// take is what the application does for every change: the next value of
// its side's counter, above every version the table ever held there.
func (z *zones) take(s gapsync.Side) int64 {
	z.t.Helper()
	db := z.side(s)
	mustExec(z.t, db, "UPDATE counter SET n = (SELECT COALESCE(MAX(ver), 0) FROM versioned) + 1 WHERE id = 1 AND n <= (SELECT COALESCE(MAX(ver), 0) FROM versioned)")
	mustExec(z.t, db, "UPDATE counter SET n = n + 1 WHERE id = 1")
	var v int64
	if err := db.QueryRow("SELECT n FROM counter WHERE id = 1").Scan(&v); err != nil {
		z.t.Fatal(err)
	}
	return v
}

func (z *zones) putCounted(s gapsync.Side, id int, body string) {
	z.t.Helper()
	z.putVer(s, id, body, z.take(s))
}

func (z *zones) hardDelete(s gapsync.Side, id int) {
	z.t.Helper()
	mustExec(z.t, z.side(s), "DELETE FROM versioned WHERE id = ?", id)
}

func (z *zones) exists(s gapsync.Side, id int) bool {
	z.t.Helper()
	return count(z.t, z.side(s), fmt.Sprintf("SELECT COUNT(*) FROM versioned WHERE id = %d", id)) == 1
}

// Hard deletes of a table with an integer cursor travel both ways through
// tombstones, over many cycles interleaved with inserts and version bumps,
// in the deletions' own time window; nothing comes back in quiet cycles.
func TestIntegerCursorTombstonesCarryDeletes(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := countedZones(t, kind)
		for i := 1; i <= 10; i++ {
			z.putCounted(gapsync.Internet, i, fmt.Sprintf("internet %d", i))
			z.putCounted(gapsync.Intranet, 100+i, fmt.Sprintf("intranet %d", i))
		}
		r := z.cycle() // the first load
		is.NoErr(r.Err())
		z.assertSame("versioned", "id")
		is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM versioned"), 20)

		// The top versions are deleted first: the counter goes on above
		// them, and the next changes must still travel.
		z.hardDelete(gapsync.Internet, 10)
		z.hardDelete(gapsync.Intranet, 110)
		z.putCounted(gapsync.Internet, 11, "internet after delete")
		z.putCounted(gapsync.Intranet, 111, "intranet after delete")
		r = z.cycle()
		is.NoErr(r.Err())
		for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
			is.True(!z.exists(s, 10))
			is.True(!z.exists(s, 110))
			is.True(z.exists(s, 11))
			is.True(z.exists(s, 111))
		}
		z.assertSame("versioned", "id")

		rng := rand.New(rand.NewPCG(11, uint64(len(kind))))
		deleted := 0
		for c := 0; c < 8; c++ {
			for n := 0; n < 8; n++ {
				s, base := gapsync.Internet, 0
				if n%2 == 1 {
					s, base = gapsync.Intranet, 100
				}
				id := base + 1 + rng.IntN(14)
				switch {
				case rng.IntN(3) == 0 && z.exists(s, id):
					z.hardDelete(s, id)
					deleted++
				default:
					z.putCounted(s, id, fmt.Sprintf("cycle %d change %d", c, n))
				}
			}
			r := z.cycle()
			is.NoErr(r.Err())
			z.assertSame("versioned", "id")
		}
		is.True(deleted > 5)
		for i := 0; i < 10; i++ {
			r := z.cycle()
			is.NoErr(r.Err())
			is.Equal(r.Rows(""), int64(0)) // nothing comes back
		}
		z.assertSame("versioned", "id")
		for _, lr := range logRows(t, z.inet, "versioned") {
			is.Equal(lr.Status, storage.StatusOK)
			rows, dels := gapsync.SplitBound(lr.WindowTo)
			is.True(gapsync.IsIntegerBound(rows)) // live rows by the counter
			_, err := time.Parse("2006-01-02 15:04:05.000000", dels)
			is.NoErr(err) // deletions by the clock
		}
	})
}

// A delete racing a change of the same row on the other side: the
// deletion's cursor is the deleted row's last version, so a delete loses
// to a change it had not seen (the row stays, nothing is lost) and wins
// over an older version, as two changes would.
func TestIntegerCursorDeleteConflict(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := countedZones(t, kind)
		z.putVer(gapsync.Internet, 1, "first", 10)
		z.putVer(gapsync.Internet, 2, "first", 11)
		z.cycle()
		z.hardDelete(gapsync.Internet, 1)                  // the delete of version 10
		z.putVer(gapsync.Intranet, 1, "intranet 500", 500) // a change the delete had not seen
		z.putVer(gapsync.Internet, 2, "internet 1000", 1000)
		z.hardDelete(gapsync.Internet, 2)                  // the delete of version 1000
		z.putVer(gapsync.Intranet, 2, "intranet 999", 999) // older than what was deleted
		r := z.cycle()
		is.NoErr(r.Err())
		is.Equal(r.Conflicts(), 2)
		for i := 0; i < 3; i++ {
			is.NoErr(z.cycle().Err())
		}
		for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
			is.Equal(z.versionedBody(s, 1), "intranet 500")
			is.True(!z.exists(s, 2))
		}
		z.assertSame("versioned", "id")
		r = z.cycle()
		is.Equal(r.Rows(""), int64(0))
	})
}

// A delete committed inside a long open transaction is not skipped: the
// deletions' window waits for the writer (on MariaDB the bound is held
// before the transaction began; on SQLite it is read under the write
// lock), though cycles run while it is open.
func TestIntegerCursorTombstoneWaitsForOpenWriter(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := countedZones(t, kind)
		for i := 1; i <= 3; i++ {
			z.putCounted(gapsync.Intranet, i, "row")
		}
		z.cycle()
		time.Sleep(1100 * time.Millisecond) // the transaction begins after a bound was seen
		ctx := context.Background()
		tx, err := z.dst().BeginTx(ctx, nil)
		is.NoErr(err)
		defer tx.Rollback()
		_, err = tx.ExecContext(ctx, "DELETE FROM versioned WHERE id = 2")
		is.NoErr(err)
		time.Sleep(500 * time.Millisecond) // the deletion's stamp is far behind the clock
		z.hardDelete(gapsync.Internet, 3)  // other work goes on meanwhile
		done := make(chan error, 1)
		go func() {
			_, err := z.runOnce()
			done <- err
		}()
		select {
		case err := <-done: // MariaDB: the cycle runs while the writer is open
			is.NoErr(err)
			is.True(z.exists(gapsync.Internet, 2))
		case <-time.After(1500 * time.Millisecond): // SQLite: it waits for the write lock
			is.Equal(kind, "sqlite")
		}
		is.NoErr(tx.Commit())
		if kind == "sqlite" {
			is.NoErr(<-done)
		}
		for i := 0; i < 2; i++ {
			is.NoErr(z.cycle().Err())
		}
		for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
			is.True(!z.exists(s, 2)) // the late delete travelled
			is.True(!z.exists(s, 3))
			is.True(z.exists(s, 1))
		}
		z.assertSame("versioned", "id")
		is.Equal(z.cycle().Rows(""), int64(0))
	})
}

// Tables with a time cursor keep their one-part bounds.
func TestTimeCursorBoundsUnchanged(t *testing.T) {
	is := is.New(t)
	z := twoWay(t, "sqlite", zoneOpts{}, notes)
	z.set(gapsync.Internet, 1, "a", 1)
	is.NoErr(z.cycle().Err())
	for _, lr := range logRows(t, z.inet, "notes") {
		is.True(!strings.Contains(lr.WindowTo, "@"))
	}
}
