package syncer_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/matryer/is"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
)

var _ syncer.TableRecorder = (*metrics.Metrics)(nil)
var _ syncer.VerifyRecorder = (*metrics.Metrics)(nil)
var _ syncer.Parker = (*storage.DB)(nil)
var _ syncer.ShapeReader = (*storage.DB)(nil)

// reopen opens a second handle on db's database, as another process (the
// intranet main, an operator's tool) would: it shares no cache with db.
func reopen(t *testing.T, kind string, db *storage.DB) *storage.DB {
	t.Helper()
	var (
		other *storage.DB
		err   error
	)
	if kind == "mysql" {
		var name string
		if err := db.Bun().DB.QueryRow("SELECT DATABASE()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		cfg, err2 := mysql.ParseDSN(os.Getenv(testdb.EnvDSN))
		if err2 != nil {
			t.Fatal(err2)
		}
		cfg.DBName = name
		other, err = storage.OpenMySQL(cfg.FormatDSN(), nil)
	} else {
		var path string
		if err := db.Bun().DB.QueryRow("SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&path); err != nil {
			t.Fatal(err)
		}
		other, err = storage.OpenSQLite(path, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// gauge reads a gauge of m by table and direction; 0 when it has no series.
func gauge(t *testing.T, m *metrics.Metrics, name, table, dir string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["table"] == table && l["direction"] == dir {
				return mt.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// counter reads the series of a counter of m with the given labels.
func counter(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if l[k] != v {
					continue next
				}
			}
			return mt.GetCounter().GetValue()
		}
	}
	return 0
}

type want struct {
	table string
	side  gapsync.Side
	warn  bool
	what  string // a fragment of Problem.What
	fix   string // a fragment of Problem.Fix
}

// Issue 9 point 5: Check lists every misconfiguration at once, each with
// its fix, and nothing for a table that is right.
func TestCheckListsEveryProblem(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{})
		cfg := func(name string, d gapsync.Direction, key ...string) gapsync.Table {
			return gapsync.Table{Name: name, Direction: d, Key: key, Cursor: "updated_at", Enabled: true}
		}
		inet := func(q ...string) {
			for _, s := range q {
				mustExec(t, z.src(), s)
			}
		}
		intra := func(q ...string) {
			for _, s := range q {
				mustExec(t, z.dst(), s)
			}
		}
		good := "CREATE TABLE %s (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(50) NULL, qty BIGINT NULL, updated_at DATETIME(6) NULL)"
		ix := func(table string) string { return "CREATE INDEX " + table + "_cur ON " + table + " (updated_at, id)" }
		tbl := func(name string) string { return strings.Replace(good, "%s", name, 1) }
		// fine: the same on both sides.
		inet(tbl("fine"), ix("fine"))
		intra(tbl("fine"), ix("fine"))
		// gone: missing on the intranet side.
		inet(tbl("gone"), ix("gone"))
		// nocur: the intranet table lacks the cursor.
		inet(tbl("nocur"), ix("nocur"))
		intra("CREATE TABLE nocur (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(50) NULL, qty BIGINT NULL)")
		// noidx: no index on the intranet cursor (a warning).
		inet(tbl("noidx"), ix("noidx"))
		intra(tbl("noidx"))
		// nokey: configured by code, which is no key on the intranet side.
		inet("CREATE TABLE nokey (id BIGINT NOT NULL PRIMARY KEY, code VARCHAR(20) NOT NULL, updated_at DATETIME(6) NULL)",
			"CREATE UNIQUE INDEX nokey_code ON nokey (code)", ix("nokey"))
		intra("CREATE TABLE nokey (id BIGINT NOT NULL PRIMARY KEY, code VARCHAR(20) NOT NULL, updated_at DATETIME(6) NULL)", ix("nokey"))
		// cols: a column on each side only, and a type that differs.
		inet("CREATE TABLE cols (id BIGINT NOT NULL PRIMARY KEY, here VARCHAR(50) NULL, qty BIGINT NULL, updated_at DATETIME(6) NULL)", ix("cols"))
		intra("CREATE TABLE cols (id BIGINT NOT NULL PRIMARY KEY, there VARCHAR(50) NULL, qty INT NULL, updated_at DATETIME(6) NULL)", ix("cols"))
		// inetonly / intraonly: enabled on one side only.
		inet(tbl("inetonly"), ix("inetonly"))
		intra(tbl("inetonly"), ix("inetonly"))
		inet(tbl("intraonly"), ix("intraonly"))
		intra(tbl("intraonly"), ix("intraonly"))
		// dir: both here, push only there.
		inet(tbl("dir"), ix("dir"))
		intra(tbl("dir"), ix("dir"))
		wants := []want{
			{"gone", gapsync.Intranet, false, "does not exist", "-disable gone"},
			{"nocur", gapsync.Intranet, false, "column updated_at, named in sync_config, does not exist", "ADD COLUMN"},
			{"noidx", gapsync.Intranet, true, "has no index", "CREATE INDEX"},
			{"nokey", gapsync.Intranet, false, "not the primary key or a unique key", "ADD UNIQUE KEY"},
			{"cols", gapsync.Intranet, true, "column here exists on the internet side only", "ADD COLUMN"},
			{"cols", gapsync.Internet, true, "column there exists on the intranet side only", "ADD COLUMN"},
			{"inetonly", gapsync.Intranet, false, "not in the intranet's sync_config", "intranet -table inetonly:id:updated_at:push"},
			{"intraonly", gapsync.Internet, false, "not in the internet's sync_config", "internet -table intraonly"},
			{"dir", gapsync.Intranet, false, "for push only on the intranet side", "-table dir:id:updated_at:both"},
		}
		if kind == "mysql" {
			// cols.qty: BIGINT against INT (SQLite keeps declared types too,
			// but compares them only within one engine, as here).
			wants = append(wants, want{"cols", gapsync.Intranet, false, "column qty is bigint", "MODIFY"})
			// latin: a latin1 table and column on the intranet side.
			inet(tbl("latin"), ix("latin"))
			intra("CREATE TABLE latin (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(50) NULL, qty BIGINT NULL, updated_at DATETIME(6) NULL) CHARACTER SET latin1", ix("latin"))
			wants = append(wants,
				want{"latin", gapsync.Intranet, false, "column name is latin1 on the intranet side but utf8mb4", "CONVERT TO CHARACTER SET utf8mb4"},
				want{"latin", gapsync.Intranet, true, "default character set is latin1", "CONVERT TO CHARACTER SET utf8mb4"})
		} else {
			// SQLite cannot retype a column in place: the fix says to rebuild.
			wants = append(wants, want{"cols", gapsync.Intranet, false, "column qty is bigint on the internet side and int", "rebuild the table"})
		}
		for _, tb := range []gapsync.Table{cfg("fine", gapsync.Push, "id"), cfg("gone", gapsync.Push, "id"), cfg("nocur", gapsync.Push, "id"),
			cfg("noidx", gapsync.Push, "id"), cfg("nokey", gapsync.Push, "code"), cfg("cols", gapsync.Both, "id"), cfg("latin", gapsync.Push, "id")} {
			if tb.Name == "latin" && kind != "mysql" {
				continue
			}
			is.NoErr(z.inet.Configure(ctx, tb))
			is.NoErr(z.intra.Configure(ctx, tb))
		}
		is.NoErr(z.inet.Configure(ctx, cfg("inetonly", gapsync.Push, "id")))
		is.NoErr(z.intra.Configure(ctx, cfg("intraonly", gapsync.Push, "id")))
		is.NoErr(z.inet.Configure(ctx, cfg("dir", gapsync.Both, "id")))
		is.NoErr(z.intra.Configure(ctx, cfg("dir", gapsync.Push, "id")))

		ps, err := z.coord.Check(ctx)
		is.NoErr(err)
		for _, p := range ps {
			t.Log(p)
			is.True(p.Table != "fine") // a right table has no problem
		}
		for _, w := range wants {
			found := false
			for _, p := range ps {
				if p.Table == w.table && p.Side == w.side && p.Warning == w.warn && strings.Contains(p.What, w.what) && strings.Contains(p.Fix, w.fix) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem %+v", w)
			}
		}
		is.True(ps.Errors() >= len(wants)-4) // the cursor index and the columns on one side only are warnings

		// Fixed, the same check is clean.
		is.NoErr(z.inet.Disable(ctx, "gone"))
		is.NoErr(z.intra.Disable(ctx, "gone"))
		is.NoErr(z.inet.Remove(ctx, "inetonly"))
		is.NoErr(z.intra.Disable(ctx, "intraonly"))
		for _, n := range []string{"nocur", "noidx", "nokey", "cols", "latin", "dir"} {
			z.inet.Disable(ctx, n)
			z.intra.Disable(ctx, n)
		}
		ps, err = z.coord.Check(ctx)
		is.NoErr(err)
		for _, p := range ps {
			t.Log("after the fixes:", p)
		}
		is.Equal(len(ps), 0)
	})
}

// poison makes table poison impossible to store on the far side of dir:
// on MariaDB a latin1 column against utf8mb4 Chinese text (error 1366), on
// SQLite a NOT NULL column against NULL. It returns the fix.
func poison(t *testing.T, z *zones, table string, d gapsync.Direction) (fix func()) {
	src, dst := z.src(), z.dst()
	if d == gapsync.Pull {
		src, dst = dst, src
	}
	mustExec(t, src, "CREATE TABLE "+table+" (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(50) NULL, updated_at DATETIME(6) NULL)")
	if z.kind == "mysql" {
		mustExec(t, dst, "CREATE TABLE "+table+" (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(50) CHARACTER SET latin1 NULL, updated_at DATETIME(6) NULL)")
		mustExec(t, src, "INSERT INTO "+table+" VALUES (1, 'plain', "+z.now+"), (2, '中文 报告', "+z.now+")")
		return func() {
			mustExec(t, dst, "ALTER TABLE "+table+" CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
		}
	}
	mustExec(t, dst, "CREATE TABLE "+table+" (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(50) NOT NULL, updated_at DATETIME(6) NULL)")
	mustExec(t, src, "INSERT INTO "+table+" VALUES (1, 'plain', "+z.now+"), (2, NULL, "+z.now+")")
	return func() {
		mustExec(t, src, "UPDATE "+table+" SET name = '中文 报告', updated_at = "+z.now+" WHERE id = 2")
	}
}

// Issue 9 point 6: a table whose rows the far side cannot store is parked
// (in that direction, with its reason in sync_log and a metric), is not
// retried, and does not hold back another table, whose last-success time
// keeps advancing. After the cause is fixed, Resume makes it sync.
func TestPoisonedTableParked(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		gm := metrics.New()
		z := newZones(t, kind, zoneOpts{retries: 4, gw: &syncer.GatewayOptions{Metrics: gm}})
		m := metrics.New()
		coord, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Metrics: m})
		is.NoErr(err)
		z.both(items, itemsDDL)
		fixPush := poison(t, z, "poisoned", gapsync.Push)
		fixPull := poison(t, z, "pulled", gapsync.Pull)
		for _, tb := range []gapsync.Table{
			{Name: "poisoned", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true},
			{Name: "pulled", Direction: gapsync.Pull, Key: []string{"id"}, Cursor: "updated_at", Enabled: true},
		} {
			is.NoErr(z.inet.Configure(ctx, tb))
			is.NoErr(z.intra.Configure(ctx, tb))
		}
		z.insertItems(0, 10)
		z.waitLag()
		// cycles runs cycles until done says so. Usually one is enough; a
		// window bound held back by another client's open transaction on
		// the shared server may need a few more.
		cycles := func(done func(r *syncer.Report, err error) bool) {
			t.Helper()
			for i := 0; i < 50; i++ {
				r, err := coord.RunOnce(ctx)
				if done(r, err) {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Fatal("no cycle got there")
		}
		rejected := func() float64 {
			return counter(t, gm, "gapsync_gateway_requests_total", map[string]string{"path": "/v1/apply", "result": "rejected"})
		}

		var ps []gapsync.Parked
		cycles(func(r *syncer.Report, err error) bool {
			if err != nil && !errors.Is(err, gapsync.ErrRejected) {
				t.Fatalf("cycle: %v", err) // the cycle says what failed…
			}
			for _, e := range r.Tables {
				if e.Table == "items" {
					is.NoErr(e.Err) // …and items went on
				}
			}
			ps, err = coord.Parked(ctx)
			is.NoErr(err)
			return len(ps) == 2 && count(t, z.dst(), "SELECT COUNT(*) FROM items") == 10
		})
		is.Equal(rejected(), 1.0) // one attempt: 422 is not retried
		is.Equal(ps[0].Table, "poisoned")
		is.Equal(ps[0].Direction, gapsync.Push)
		is.Equal(ps[1].Table, "pulled")
		is.Equal(ps[1].Direction, gapsync.Pull)
		for _, p := range ps {
			t.Log(p.Table, p.Direction, p.Reason)
			if kind == "mysql" {
				is.True(strings.Contains(p.Reason, "1366")) // Incorrect string value
			} else {
				is.True(strings.Contains(p.Reason, "NOT NULL"))
			}
		}
		logs := logRows(t, z.inet, "poisoned")
		is.Equal(logs[0].Status, storage.StatusFailed)
		is.True(strings.Contains(logs[0].Error, "parked"))
		is.Equal(gauge(t, m, "gapsync_table_parked", "poisoned", "push"), 1.0)
		is.Equal(gauge(t, m, "gapsync_table_parked", "pulled", "pull"), 1.0)
		first := gauge(t, m, "gapsync_table_last_success_timestamp_seconds", "items", "push")
		is.True(first > 0)

		// Later cycles skip the parked tables and succeed; items' clock moves.
		for i := 0; i < 2; i++ {
			z.insertItems(10+i, 11+i)
			z.waitLag()
			cycles(func(r *syncer.Report, err error) bool {
				is.NoErr(err)
				is.Equal(len(r.Parked), 2)
				return count(t, z.dst(), "SELECT COUNT(*) FROM items") == 11+i
			})
			next := gauge(t, m, "gapsync_table_last_success_timestamp_seconds", "items", "push")
			is.True(next > first)
			first = next
		}
		is.Equal(rejected(), 1.0) // nothing sent for the parked table
		is.Equal(gauge(t, m, "gapsync_table_last_success_timestamp_seconds", "poisoned", "push"), 0.0)
		z.assertSame("items", "id")

		// Fixed and resumed, both sync; the rows refused before arrive.
		fixPush()
		fixPull()
		z.waitLag()
		is.NoErr(coord.Resume(ctx, "poisoned"))
		is.NoErr(coord.Resume(ctx, "pulled"))
		is.True(errors.Is(coord.Resume(ctx, "pulled"), gapsync.ErrUnknownTable)) // not parked any more
		cycles(func(r *syncer.Report, err error) bool {
			is.NoErr(err)
			is.Equal(len(r.Parked), 0)
			return count(t, z.dst(), "SELECT COUNT(*) FROM poisoned WHERE name = '中文 报告'") == 1 &&
				count(t, z.src(), "SELECT COUNT(*) FROM pulled WHERE name = '中文 报告'") == 1
		})
		z.assertSame("poisoned", "id")
		z.assertSame("pulled", "id")
		is.Equal(gauge(t, m, "gapsync_table_parked", "poisoned", "push"), 0.0)
		is.True(gauge(t, m, "gapsync_table_last_success_timestamp_seconds", "poisoned", "push") > 0)
	})
}

// Issue 9 point 7: a table enabled on the intranet by another process
// syncs at the next cycle, not after a cache lapses; the refusal before
// says what it is.
func TestNewlyEnabledTableSyncsNextCycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{})
		mustExec(t, z.src(), itemsDDL)
		mustExec(t, z.dst(), itemsDDL)
		is.NoErr(z.inet.Configure(ctx, items))
		z.insertItems(0, 5)
		z.waitLag()
		_, err := z.runOnce()
		is.True(errors.Is(err, gapsync.ErrUnknownTable))
		is.True(strings.Contains(err.Error(), "retried next cycle"))

		other := reopen(t, kind, z.intra) // the intranet main, say
		is.NoErr(other.Configure(ctx, items))
		r, err := z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(5))
		z.assertSame("items", "id")

		// Disabled there, refused at once.
		is.NoErr(other.Disable(ctx, "items"))
		z.insertItems(5, 6)
		z.waitLag()
		_, err = z.runOnce()
		is.True(errors.Is(err, gapsync.ErrUnknownTable))
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM items"), 5)
	})
}

// Issue 9 point 7: an ALTER ADD COLUMN on both sides is seen at the next
// cycle, and the new column's values travel.
func TestAddedColumnSeenNextCycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newZones(t, kind, zoneOpts{})
		z.both(items, itemsDDL)
		z.insertItems(0, 5)
		z.waitLag()
		_, err := z.runOnce()
		is.NoErr(err)

		for _, db := range []*storage.DB{z.inet, z.intra} {
			mustExec(t, db.Bun().DB, "ALTER TABLE items ADD COLUMN note VARCHAR(50) NULL")
		}
		mustExec(t, z.src(), "UPDATE items SET note = '备注', updated_at = "+z.now+" WHERE id = 3")
		z.waitLag()
		r, err := z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(1))
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM items WHERE note = '备注'"), 1)
		z.assertSame("items", "id")
	})
}
