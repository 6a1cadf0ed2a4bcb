package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// Case "tables": -tables tables of 10 rows each, configured in one
// direction on both sides, in sync (tablesSetup), then two kinds of cycle: one
// with nothing to move anywhere, and one with the 10 rows of each of 100
// tables changed. Each kind runs with the batched check of idle tables
// (a coordinator over *storage.DB) and, in the same run and alternately,
// with each table checked on its own as before (perTable hides the
// batched reads and nothing else), and the report gives both medians,
// their ratio, and the gateway requests of one cycle.

// perTable is the internet database without the batched reads of idle
// tables (syncer.Batcher): the EmptyWindows method of another signature
// hides storage.DB's, so every table runs its own window, while every
// other optional part (checkpoints, page reads, drift) stays.
type perTable struct{ *storage.DB }

// EmptyWindows is not syncer.EmptyChecker's: see perTable.
func (perTable) EmptyWindows() {}

// counted counts the requests a handler serves.
type counted struct {
	n    atomic.Int64
	next http.Handler
}

func (c *counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.next.ServeHTTP(w, r)
}

// tableZones is rowZones with a request counter and two coordinators.
type tableZones struct {
	inet, intra    *storage.DB
	batched, plain *syncer.Coordinator
	srv            *http.Server
	client         *transport.Client
	reqs           *counted
}

func newTableZones(inetDSN, intraDSN string, lag time.Duration) (*tableZones, error) {
	z := &tableZones{}
	var err error
	if z.inet, err = storage.Open(inetDSN, &storage.Options{Lag: lag}); err != nil {
		return nil, err
	}
	if z.intra, err = storage.Open(intraDSN, &storage.Options{Lag: lag}); err != nil {
		return nil, err
	}
	ctx := context.Background()
	for _, db := range []*storage.DB{z.inet, z.intra} {
		if err := db.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	key, _ := crypto.GenerateCipherKey(keyCipher, "bench")
	keys, _ := crypto.NewKeyring(key)
	gw, err := syncer.NewGateway(z.intra, keys, &syncer.GatewayOptions{})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	z.reqs = &counted{next: gw}
	z.srv = &http.Server{Handler: z.reqs}
	go z.srv.Serve(ln)
	if z.client, err = transport.NewClient("http://"+ln.Addr().String(), keys, nil); err != nil {
		return nil, err
	}
	o := &syncer.CoordinatorOptions{InFlight: parallel}
	if z.batched, err = syncer.NewCoordinator(z.inet, z.client, o); err != nil {
		return nil, err
	}
	if z.plain, err = syncer.NewCoordinator(perTable{z.inet}, z.client, o); err != nil {
		return nil, err
	}
	return z, nil
}

func (z *tableZones) Close() {
	z.srv.Close()
	z.client.Close()
	z.inet.Close()
	z.intra.Close()
}

func tablesCases(ctx context.Context, b *bench) error {
	for _, e := range b.engines {
		for _, d := range b.directions {
			if err := tablesReport(ctx, e, d, b.ntables, b.warmup, b.runs); err != nil {
				return fmt.Errorf("%s %s: %w", e.name, d, err)
			}
		}
	}
	return nil
}

// tableName is the name of bench table i.
func tableName(i int) string { return fmt.Sprintf("many_%04d", i) }

// tablesSetup creates n tables of 10 rows, the same rows on both sides,
// configures them for d on both, and records in the sync log a good
// window for each that ends after those rows: the state after a first
// load (which the rows case measures), reached without one, so that
// the setup of a thousand tables takes seconds, not many minutes.
func tablesSetup(ctx context.Context, e engine, d gapsync.Direction, n int) (*tableZones, string, string, error) {
	inetDSN, err := e.fresh("gapsync_bench_tables_internet")
	if err != nil {
		return nil, "", "", err
	}
	intraDSN, err := e.fresh("gapsync_bench_tables_intranet")
	if err != nil {
		return nil, "", "", err
	}
	ts := "DATETIME(6)"
	if e.name == "PostgreSQL" {
		ts = "timestamp(6)"
	}
	src, dst := inetDSN, intraDSN
	if d == gapsync.Pull {
		src, dst = intraDSN, inetDSN
	}
	start := time.Now()
	for _, dsn := range []string{inetDSN, intraDSN} {
		var qs []string
		for i := range n {
			t := tableName(i)
			var vals []string
			for id := 1; id <= 10; id++ {
				vals = append(vals, fmt.Sprintf("(%d, 'row %d of %s', '2026-01-01 00:00:00')", id, id, t))
			}
			qs = append(qs, "CREATE TABLE "+t+" (id BIGINT NOT NULL PRIMARY KEY, body VARCHAR(64) NOT NULL, updated_at "+ts+" NOT NULL)",
				"CREATE INDEX ix_"+t+"_u ON "+t+" (updated_at)",
				"INSERT INTO "+t+" (id, body, updated_at) VALUES "+strings.Join(vals, ", "))
		}
		if err := execSQL(dsn, qs...); err != nil {
			return nil, "", "", err
		}
	}
	z, err := newTableZones(inetDSN, intraDSN, time.Second)
	if err != nil {
		return nil, "", "", err
	}
	var es []gapsync.LogEntry
	for i := range n {
		t := gapsync.Table{Name: tableName(i), Direction: d, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
		for _, db := range []*storage.DB{z.inet, z.intra} {
			if err := db.Configure(ctx, t); err != nil {
				z.Close()
				return nil, "", "", err
			}
		}
		es = append(es, gapsync.LogEntry{RunID: "bench-setup", Table: t.Name, Direction: d,
			Window: gapsync.Window{To: "2026-01-02 00:00:00.000000"}, StartedAt: time.Now(), FinishedAt: time.Now()})
	}
	if err := z.inet.RecordAll(ctx, es); err != nil {
		z.Close()
		return nil, "", "", err
	}
	fmt.Fprintf(os.Stderr, "bench: %s %s: %d tables set up in %.1f s\n", e.name, d, n, time.Since(start).Seconds())
	return z, src, dst, nil
}

// tablesRun is one run's four cycles and the gateway requests of each.
type tablesRun struct {
	idle, idlePlain       time.Duration
	changed, changedPlain time.Duration
	reqIdle, reqIdlePlain int64
}

// tablesReport measures the idle and the changed cycles, batched and per
// table, in turns, and prints the table.
func tablesReport(ctx context.Context, e engine, d gapsync.Direction, n, warmup, runs int) error {
	z, src, dst, err := tablesSetup(ctx, e, d, n)
	if err != nil {
		return err
	}
	defer z.Close()
	changedTables := min(100, n)
	cycle := func(c *syncer.Coordinator, wantRows int64) (time.Duration, int64, error) {
		// Past the lag (1 s) and the late-commit guard's resolution: a
		// bound taken while any write transaction is open (gapsync's own
		// sync_log and checkpoint writes of the tables before included)
		// stays up to a second more behind, as InnoDB reports a
		// transaction's age in whole seconds; what changed is then inside
		// the window.
		time.Sleep(2100 * time.Millisecond)
		before := z.reqs.n.Load()
		start := time.Now()
		r, err := c.RunOnce(ctx)
		took := time.Since(start)
		if err == nil && r.Rows("") != wantRows {
			err = fmt.Errorf("a cycle moved %d rows, not %d", r.Rows(""), wantRows)
		}
		return took, z.reqs.n.Load() - before, err
	}
	tag := 0
	change := func() error {
		tag++
		var qs []string
		for i := range changedTables {
			qs = append(qs, fmt.Sprintf("UPDATE %s SET body = 'changed %d', updated_at = %s", tableName(i*n/changedTables), tag, e.now))
		}
		return execSQL(src, qs...)
	}
	arrived := func() error {
		db, err := sql.Open(driverOf(dst), dst)
		if err != nil {
			return err
		}
		defer db.Close()
		got := 0
		for i := range changedTables {
			var k int
			q := fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE body = 'changed %d'", tableName(i*n/changedTables), tag)
			if err := db.QueryRow(q).Scan(&k); err != nil {
				return err
			}
			got += k
		}
		if got != 10*changedTables {
			return fmt.Errorf("%d of %d changed rows arrived", got, 10*changedTables)
		}
		return nil
	}
	if _, _, err := cycle(z.batched, 0); err != nil { // the first windows after the setup's
		return err
	}
	load := loadAvg()
	var all []tablesRun
	for i := 1 - warmup; i <= runs; i++ {
		var r tablesRun
		// Alternate which goes first, so that neither always follows the other.
		order := []bool{true, false}
		if i%2 == 0 {
			order = []bool{false, true}
		}
		for _, batched := range order {
			c, idle, reqs := z.plain, &r.idlePlain, &r.reqIdlePlain
			if batched {
				c, idle, reqs = z.batched, &r.idle, &r.reqIdle
			}
			if *idle, *reqs, err = cycle(c, 0); err != nil {
				return err
			}
		}
		for _, batched := range order {
			c, took := z.plain, &r.changedPlain
			if batched {
				c, took = z.batched, &r.changed
			}
			if err := change(); err != nil {
				return err
			}
			if *took, _, err = cycle(c, int64(10*changedTables)); err != nil {
				return err
			}
			if err := arrived(); err != nil {
				return err
			}
		}
		what := fmt.Sprintf("run %d", i)
		if i <= 0 {
			what = "warm-up"
		}
		fmt.Fprintf(os.Stderr, "bench: %s %s tables %s: idle %.3f s (per table %.2f s), changed %.3f s (per table %.2f s)\n",
			e.name, d, what, r.idle.Seconds(), r.idlePlain.Seconds(), r.changed.Seconds(), r.changedPlain.Seconds())
		if i > 0 {
			all = append(all, r)
		}
	}
	pick := func(f func(tablesRun) time.Duration) time.Duration {
		var ds []time.Duration
		for _, r := range all {
			ds = append(ds, f(r))
		}
		return median(ds)
	}
	ratio := func(a, b func(tablesRun) time.Duration) string {
		var per []string
		var rs []time.Duration
		for _, r := range all {
			q := a(r).Seconds() / b(r).Seconds()
			per = append(per, fmt.Sprintf("%.3f", q))
			rs = append(rs, time.Duration(q*float64(time.Second)))
		}
		return fmt.Sprintf("per run %s; median **%.3f**", strings.Join(per, ", "), median(rs).Seconds())
	}
	idle := func(r tablesRun) time.Duration { return r.idle }
	idlePlain := func(r tablesRun) time.Duration { return r.idlePlain }
	changed := func(r tablesRun) time.Duration { return r.changed }
	changedPlain := func(r tablesRun) time.Duration { return r.changedPlain }
	last := all[len(all)-1]
	fmt.Printf("%s, %s, %d tables of 10 rows, median of %d runs (load average before: %s, after: %s):\n\n", e.name, d, n, len(all), load, loadAvg())
	fmt.Printf("| cycle | batched check of idle tables | each table on its own | ratio batched ÷ per table |\n|---|---|---|---|\n")
	fmt.Printf("| nothing to move | %.3f s, %d gateway requests | %.2f s, %d gateway requests | %s |\n",
		pick(idle).Seconds(), last.reqIdle, pick(idlePlain).Seconds(), last.reqIdlePlain, ratio(idle, idlePlain))
	fmt.Printf("| 10 rows changed in each of %d tables | %.3f s | %.2f s | %s |\n\n",
		changedTables, pick(changed).Seconds(), pick(changedPlain).Seconds(), ratio(changed, changedPlain))
	return nil
}

// driverOf is the database/sql driver of a bench DSN.
func driverOf(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "pgx"
	}
	return "mysql"
}

// loadAvg is the machine's 1-, 5- and 15-minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
