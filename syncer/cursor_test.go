package syncer_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

const versionedDDL = `CREATE TABLE versioned (
	id BIGINT NOT NULL PRIMARY KEY,
	body VARCHAR(200) NULL,
	gone INT NULL,
	ver BIGINT NOT NULL)`

// versioned has an integer cursor: a version the application raises above
// every value in the table at each change; gone marks soft deletes.
var versioned = gapsync.Table{Name: "versioned", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "ver", SoftDelete: "gone", Enabled: true}

func (z *zones) side(s gapsync.Side) *sql.DB {
	if s == gapsync.Intranet {
		return z.dst()
	}
	return z.src()
}

// nextVer is what the application does: one past every version here.
func (z *zones) nextVer(s gapsync.Side) int64 {
	z.t.Helper()
	var v int64
	if err := z.side(s).QueryRow("SELECT COALESCE(MAX(ver), 0) + 1 FROM versioned").Scan(&v); err != nil {
		z.t.Fatal(err)
	}
	return v
}

// put inserts or updates a versioned row on one side, bumping its version.
func (z *zones) put(s gapsync.Side, id int, body string) int64 {
	z.t.Helper()
	v := z.nextVer(s)
	z.putVer(s, id, body, v)
	return v
}

func (z *zones) putVer(s gapsync.Side, id int, body string, v int64) {
	z.t.Helper()
	q := "INSERT INTO versioned (id, body, ver) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE body = VALUES(body), ver = VALUES(ver)"
	if z.kind == "sqlite" {
		q = "INSERT INTO versioned (id, body, ver) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body, ver = excluded.ver"
	}
	mustExec(z.t, z.side(s), q, id, body, v)
}

func (z *zones) softDelete(s gapsync.Side, id int) {
	z.t.Helper()
	mustExec(z.t, z.side(s), "UPDATE versioned SET gone = 1, ver = ? WHERE id = ?", z.nextVer(s), id)
}

func (z *zones) versionedBody(s gapsync.Side, id int) string {
	z.t.Helper()
	var b string
	if err := z.side(s).QueryRow("SELECT COALESCE(body, '<null>') FROM versioned WHERE id = ?", id).Scan(&b); err != nil {
		return "<none>"
	}
	return b
}

// An integer cursor carries every change, both ways, over many cycles:
// inserts, updates that bump the version, soft deletes. Windows and the
// sync log hold numbers; quiet cycles move nothing.
func TestIntegerCursorCarriesEveryChange(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newZones(t, kind, zoneOpts{})
		z.both(versioned, versionedDDL)
		for i := 1; i <= 5; i++ {
			z.put(gapsync.Internet, i, fmt.Sprintf("row %d", i))
		}
		r := z.cycle() // the first load
		is.Equal(r.Rows(gapsync.Push), int64(5))
		z.assertSame("versioned", "id")

		z.put(gapsync.Internet, 1, "internet edit")
		z.put(gapsync.Intranet, 2, "intranet edit 内网")
		z.put(gapsync.Intranet, 6, "intranet insert")
		r = z.cycle()
		is.Equal(r.Rows(gapsync.Push), int64(1))
		is.Equal(r.Rows(gapsync.Pull), int64(2))
		is.Equal(z.versionedBody(gapsync.Intranet, 1), "internet edit")
		is.Equal(z.versionedBody(gapsync.Internet, 2), "intranet edit 内网")
		is.Equal(z.versionedBody(gapsync.Internet, 6), "intranet insert")

		z.softDelete(gapsync.Internet, 3)
		z.softDelete(gapsync.Intranet, 4)
		r = z.cycle()
		is.Equal(r.Rows(""), int64(2))
		for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
			is.Equal(count(t, z.side(s), "SELECT COUNT(*) FROM versioned WHERE gone = 1"), 2)
		}

		// Many cycles of random changes on both sides, distinct keys per
		// side in a cycle (the same key on both is a conflict, below).
		rng := rand.New(rand.NewPCG(9, uint64(len(kind))))
		want := int64(0)
		moved := int64(0)
		for c := 0; c < 8; c++ {
			for n := 0; n < 6; n++ {
				s, base := gapsync.Internet, 100
				if n%2 == 1 {
					s, base = gapsync.Intranet, 200
				}
				id := base + rng.IntN(12)
				if rng.IntN(4) == 0 {
					z.softDelete(s, id) // no row: a no-op, as an application's would be
				} else {
					z.put(s, id, fmt.Sprintf("cycle %d change %d", c, n))
				}
			}
			r := z.cycle()
			is.NoErr(r.Err())
			moved += r.Rows("")
			z.assertSame("versioned", "id")
		}
		is.True(moved > want)
		for i := 0; i < 5; i++ {
			r := z.cycle()
			is.Equal(r.Rows(""), int64(0)) // nothing echoes
		}
		z.assertSame("versioned", "id")
		for _, lr := range logRows(t, z.inet, "versioned") {
			is.Equal(lr.Status, storage.StatusOK)
			is.True(gapsync.IsIntegerBound(lr.WindowTo)) // windows in numbers
		}
	})
}

// Newest wins compares integer cursors as numbers: version 100 is newer
// than 99, though "99" sorts after "100" as text.
func TestIntegerCursorNewestWins(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newZones(t, kind, zoneOpts{})
		z.both(versioned, versionedDDL)
		z.put(gapsync.Internet, 1, "first")
		z.put(gapsync.Internet, 2, "first")
		z.cycle()
		z.putVer(gapsync.Internet, 1, "internet 99", 99)
		z.putVer(gapsync.Intranet, 1, "intranet 100", 100)
		z.putVer(gapsync.Internet, 2, "internet 1000", 1000)
		z.putVer(gapsync.Intranet, 2, "intranet 999", 999)
		r := z.cycle()
		is.Equal(r.Conflicts(), 2)
		z.cycle()
		for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
			is.Equal(z.versionedBody(s, 1), "intranet 100")
			is.Equal(z.versionedBody(s, 2), "internet 1000")
		}
		z.assertSame("versioned", "id")
	})
}

// An append-only table with an AUTO_INCREMENT id as its cursor.
func TestAutoIncrementCursor(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newZones(t, kind, zoneOpts{})
		ddl := "CREATE TABLE events (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(100) NOT NULL)"
		if kind == "sqlite" {
			ddl = "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, msg VARCHAR(100) NOT NULL)"
		}
		events := gapsync.Table{Name: "events", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "id", Enabled: true}
		z.both(events, ddl)
		total := 0
		for c := 0; c < 4; c++ {
			for i := 0; i < 7+c; i++ {
				mustExec(t, z.src(), "INSERT INTO events (msg) VALUES (?)", fmt.Sprintf("cycle %d event %d", c, i))
				total++
			}
			r := z.cycle()
			is.Equal(r.Rows(gapsync.Push), int64(7+c))
			is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM events"), total)
		}
		z.assertSame("events", "id")
	})
}

// The late-commit guard for integer cursors: a transaction that took a
// version and has not committed holds the bound, so a later version
// committed before it does not carry the window past it.
func TestIntegerCursorWaitsForOpenWriter(t *testing.T) {
	is := is.New(t)
	z := newZones(t, "mysql", zoneOpts{})
	z.both(versioned, versionedDDL)
	z.put(gapsync.Internet, 1, "one")
	z.cycle()
	time.Sleep(2100 * time.Millisecond) // the open transaction must begin after a bound was seen
	ctx := context.Background()
	tx, err := z.src().BeginTx(ctx, nil)
	is.NoErr(err)
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, "INSERT INTO versioned (id, body, ver) VALUES (2, 'slow', 2)")
	is.NoErr(err)
	z.putVer(gapsync.Internet, 3, "fast", 3) // committed first, with the greater version
	r := z.cycle()
	is.Equal(r.Rows(gapsync.Push), int64(0)) // held behind the open transaction
	is.NoErr(tx.Commit())
	z.waitLag() // where the open transactions cannot be seen, the bound moves by the lag
	r = z.cycle()
	is.Equal(r.Rows(gapsync.Push), int64(2))
	is.Equal(z.versionedBody(gapsync.Intranet, 2), "slow")
	is.Equal(z.versionedBody(gapsync.Intranet, 3), "fast")
	z.assertSame("versioned", "id")
}
