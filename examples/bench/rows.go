package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// engine is what the rows case needs of one database server: fresh
// databases, the load table and its rows, and the peers that copy the
// table by hand.
type engine struct {
	name string // as the tables print it
	// fresh creates an empty database on the server and returns a DSN
	// for it that storage.Open takes.
	fresh func(name string) (string, error)
	ddl   string // the load table and its cursor index
	fill  func(dsn string, n int) error
	// now is the expression an UPDATE sets the cursor column to.
	now   string
	peers []peer
	// upsert is the statement a plain client would send to write rows of
	// load_rows (loadColumns, in that order) over the existing ones.
	upsert func(rows int) string
	// settle, when set, has the server write out what was left dirty
	// before each half of the case, so that neither pays for the other.
	settle func() error
}

// peer is what a DBA would do by hand: fill dst's empty load_rows from
// src's, on the same server. copy returns the time it took and a note on
// its steps, if any.
type peer struct {
	name string // as the tables print it
	copy func(srcDSN, dstDSN string) (time.Duration, string, error)
}

// parallel is gapsync's parallelism in the rows case (the coordinator's
// InFlight: pages applied at once), and the threads the multi-threaded
// peer gets.
const parallel = 3

// loadColumns are load_rows' columns, as the upsert bound reads and
// writes them.
var loadColumns = []string{"id", "name", "amount", "qty", "ratio", "flag", "note", "updated_at"}

// The load table: 8 mixed-type columns, about 200 bytes a row, and the
// index on the cursor column that incremental windows need.
const loadDDL = `CREATE TABLE load_rows (
	id BIGINT NOT NULL PRIMARY KEY,
	name VARCHAR(64) NOT NULL,
	amount DECIMAL(14,2) NOT NULL,
	qty INT NOT NULL,
	ratio DOUBLE NOT NULL,
	flag TINYINT NOT NULL,
	note VARCHAR(120) NULL,
	updated_at DATETIME(6) NOT NULL,
	KEY ix_load_rows_updated_at (updated_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

func (e engine) settleNow() error {
	if e.settle == nil {
		return nil
	}
	return e.settle()
}

func loadTable(d gapsync.Direction) gapsync.Table {
	return gapsync.Table{Name: "load_rows", Direction: d, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
}

func mysqlEngine(base string) engine {
	peers := []peer{{"mysqldump | mysql", dumpPipe}}
	if _, err := exec.LookPath("mydumper"); err != nil {
		fmt.Println("mydumper is not installed (apt-get install mydumper): the mydumper + myloader peer is skipped")
	} else if _, err := exec.LookPath("myloader"); err != nil {
		fmt.Println("myloader is not installed (apt-get install mydumper): the mydumper + myloader peer is skipped")
	} else {
		peers = append(peers, peer{fmt.Sprintf("mydumper -t %d + myloader -t %d", parallel, parallel), myDumper})
	}
	return engine{
		name:  "MariaDB",
		fresh: func(name string) (string, error) { return fresh(base, name) },
		ddl:   loadDDL, fill: fillRows, now: "NOW(6)", peers: peers,
		upsert: func(rows int) string {
			tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(loadColumns)), ", ") + ")"
			var set []string
			for _, c := range loadColumns[1:] {
				set = append(set, c+" = VALUES("+c+")")
			}
			return "INSERT INTO load_rows (" + strings.Join(loadColumns, ", ") + ") VALUES " +
				strings.TrimSuffix(strings.Repeat(tuple+", ", rows), ", ") + " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
		},
	}
}

// fillRows generates n rows from a fixed seed on the server (MariaDB's
// sequence engine), stamped a minute in the past so they fall in the
// first window, a million rows a statement.
func fillRows(dsn string, n int) error {
	for from := 1; from <= n; from += 1_000_000 {
		err := execSQL(dsn, fmt.Sprintf(`INSERT INTO load_rows
		SELECT seq, CONCAT('customer-', LPAD(seq, 10, '0'), '-', SUBSTR(MD5(seq), 1, 24)),
		       (seq * 7919 %% 1000000) / 100, seq %% 100000, seq / 7.0, seq %% 2,
		       CONCAT('订单备注 note ', SHA1(seq), ' ', SUBSTR(MD5(seq * 3), 1, 20)),
		       NOW(6) - INTERVAL 1 MINUTE
		FROM seq_%d_to_%d`, from, min(n, from+999_999)))
		if err != nil {
			return err
		}
	}
	return nil
}

// rowZones is one internet DB, one intranet DB, and an in-process gateway
// on loopback HTTP between them, sealed like a deployment.
type rowZones struct {
	inet, intra *storage.DB
	coord       *syncer.Coordinator
	srv         *http.Server
	client      *transport.Client
}

func newRowZones(inetDSN, intraDSN string, lag time.Duration, files *syncer.FileOptions, intraFiles *syncer.FileOptions) (*rowZones, *syncer.IntranetWorker, error) {
	z := &rowZones{}
	var err error
	if z.inet, err = storage.Open(inetDSN, &storage.Options{Lag: lag}); err != nil {
		return nil, nil, err
	}
	if z.intra, err = storage.Open(intraDSN, &storage.Options{Lag: lag}); err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	for _, db := range []*storage.DB{z.inet, z.intra} {
		if err := db.Migrate(ctx); err != nil {
			return nil, nil, err
		}
	}
	key, _ := crypto.GenerateCipherKey(keyCipher, "bench")
	keys, _ := crypto.NewKeyring(key)
	gw, err := syncer.NewGateway(z.intra, keys, &syncer.GatewayOptions{})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	z.srv = &http.Server{Handler: gw}
	go z.srv.Serve(ln)
	if z.client, err = transport.NewClient("http://"+ln.Addr().String(), keys, nil); err != nil {
		return nil, nil, err
	}
	if z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: files, InFlight: parallel}); err != nil {
		return nil, nil, err
	}
	var w *syncer.IntranetWorker
	if intraFiles != nil {
		if w, err = syncer.NewIntranetWorker(z.intra, &syncer.WorkerOptions{Files: *intraFiles}); err != nil {
			return nil, nil, err
		}
	}
	return z, w, nil
}

func (z *rowZones) Close() {
	z.srv.Close()
	z.client.Close()
	z.inet.Close()
	z.intra.Close()
}

// initialLoad creates the two zone databases on e's server, fills the
// source one (the internet database for a push, the intranet one for a
// pull) with n rows, moves them all in one cycle, sealed, over loopback
// HTTP, and, when check is set, that both tables agree. The caller
// closes z.
func initialLoad(ctx context.Context, e engine, dir gapsync.Direction, n int, check bool) (z *rowZones, srcDSN string, load time.Duration, err error) {
	inetDSN, err := e.fresh("gapsync_bench_internet")
	if err != nil {
		return
	}
	intraDSN, err := e.fresh("gapsync_bench_intranet")
	if err != nil {
		return
	}
	for _, d := range []string{inetDSN, intraDSN} {
		if err = execSQL(d, e.ddl); err != nil {
			return
		}
	}
	srcDSN = inetDSN
	if dir == gapsync.Pull {
		srcDSN = intraDSN
	}
	if err = e.fill(srcDSN, n); err != nil {
		return
	}
	if err = e.settleNow(); err != nil {
		return
	}
	if z, _, err = newRowZones(inetDSN, intraDSN, time.Second, nil, nil); err != nil {
		return
	}
	table := loadTable(dir)
	for _, db := range []*storage.DB{z.inet, z.intra} {
		if err = db.Configure(ctx, table); err != nil {
			return
		}
	}
	if profile != nil {
		pprof.StartCPUProfile(profile)
	}
	start := time.Now()
	r, err := z.coord.RunOnce(ctx)
	load = time.Since(start)
	if profile != nil {
		pprof.StopCPUProfile()
		profile = nil // one profile: the warm-up's
	}
	if err != nil {
		return
	}
	if got := r.Rows(dir); got != int64(n) {
		err = fmt.Errorf("initial load moved %d rows, want %d", got, n)
		return
	}
	if check {
		err = sameTable(ctx, table, z.inet, z.intra)
	}
	return
}

// rowsRun is one run of the rows case.
type rowsRun struct {
	load        time.Duration   // gapsync's initial load
	peers       []time.Duration // each peer's copy of the same table
	notes       []string        // each peer's steps
	incr        time.Duration   // one cycle, the newest rows changed
	scattered   time.Duration   // one cycle, rows spread over the table changed
	upsertBound time.Duration   // the scattered rows, upserted by a plain client
}

// rowsCase measures the initial load of n rows through gapsync and
// through each of the engine's peers, which copy the same table between
// two databases of the same server, then one incremental cycle with
// changed rows, and the same scattered rows upserted by a plain client.
// With check it compares both whole tables after each gapsync step (a
// full read of both, which the measured runs leave out: they check the
// counts of rows moved).
func rowsCase(ctx context.Context, e engine, dir gapsync.Direction, n, changed int, check bool) (run rowsRun, err error) {
	z, srcDSN, load, err := initialLoad(ctx, e, dir, n, check)
	if z != nil {
		defer z.Close()
	}
	if err != nil {
		return
	}
	run.load = load

	// The peers: what a DBA would do by hand, on the same server.
	var peerDSNs []string
	for i, p := range e.peers {
		var dst string
		if dst, err = e.fresh(fmt.Sprintf("gapsync_bench_peer%d", i)); err != nil {
			return
		}
		if err = execSQL(dst, e.ddl); err != nil {
			return
		}
		if err = e.settleNow(); err != nil {
			return
		}
		var took time.Duration
		var note string
		if took, note, err = p.copy(srcDSN, dst); err != nil {
			return
		}
		run.peers, run.notes = append(run.peers, took), append(run.notes, note)
		if err = sameCount(srcDSN, dst, n); err != nil {
			err = fmt.Errorf("%s: %w", p.name, err)
			return
		}
		peerDSNs = append(peerDSNs, dst)
	}

	// Incremental: change some rows, wait out the lag, run one cycle;
	// first the newest rows (the usual shape of a day's changes), then
	// rows spread evenly over the whole table.
	table := loadTable(dir)
	cycle := func(where string) (time.Duration, error) {
		if err := execSQL(srcDSN, "UPDATE load_rows SET qty = qty + 1, updated_at = "+e.now+" WHERE "+where); err != nil {
			return 0, err
		}
		// Past the lag (1 s) and the late-commit guard's resolution: a
		// bound taken while any write transaction is open (gapsync's own
		// sync_log and checkpoint writes of the tables before included)
		// stays up to a second more behind, as InnoDB reports a
		// transaction's age in whole seconds; what changed is then inside
		// the window.
		time.Sleep(2100 * time.Millisecond)
		start := time.Now()
		r, err := z.coord.RunOnce(ctx)
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if got := r.Rows(dir); got != int64(changed) {
			return 0, fmt.Errorf("incremental cycle moved %d rows, want %d", got, changed)
		}
		if !check {
			return took, nil
		}
		return took, sameTable(ctx, table, z.inet, z.intra)
	}
	if run.incr, err = cycle(fmt.Sprintf("id > %d", n-changed)); err != nil {
		return
	}
	if run.scattered, err = cycle(fmt.Sprintf("id %% %d = 1", n/changed)); err != nil {
		return
	}
	// The bound: the same scattered rows (the last UPDATE's, found by the
	// cursor index as gapsync finds them), written over the first peer's
	// copy, which was loaded before the others and is as cold.
	if len(peerDSNs) > 0 {
		run.upsertBound, err = upsertBound(e, srcDSN, peerDSNs[0], changed)
	}
	return
}

// upsertBound reads the rows of the last UPDATE from src through the
// cursor index and writes them over dst's, 1,000 rows a statement on one
// connection, as a plain client would, and returns the time both took.
func upsertBound(e engine, srcDSN, dstDSN string, want int) (time.Duration, error) {
	driver := "mysql"
	if strings.HasPrefix(dstDSN, "postgres") {
		driver = "pgx"
	} else if cfg, err := mysql.ParseDSN(dstDSN); err == nil {
		cfg.InterpolateParams = true // one round trip a statement, as the mysql client sends
		dstDSN = cfg.FormatDSN()
	}
	src, err := sql.Open(driver, srcDSN)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	dst, err := sql.Open(driver, dstDSN)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	dst.SetMaxOpenConns(1)
	if err := dst.Ping(); err != nil {
		return 0, err
	}
	start := time.Now()
	rows, err := src.Query("SELECT " + strings.Join(loadColumns, ", ") + " FROM load_rows WHERE updated_at = (SELECT MAX(updated_at) FROM load_rows)")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var args []any
	got := 0
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		_, err := dst.Exec(e.upsert(len(args)/len(loadColumns)), args...)
		args = args[:0]
		return err
	}
	for rows.Next() {
		vals := make([]any, len(loadColumns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		args = append(args, vals...)
		if got++; got%1000 == 0 {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if err := flush(); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if got != want {
		return 0, fmt.Errorf("upsert bound: %d rows of the last update, want %d", got, want)
	}
	return took, nil
}

// sameCount checks that dst's load_rows holds n rows, as src's does.
func sameCount(srcDSN, dstDSN string, n int) error {
	for _, dsn := range []string{srcDSN, dstDSN} {
		driver := "mysql"
		if strings.HasPrefix(dsn, "postgres") {
			driver = "pgx"
		}
		db, err := sql.Open(driver, dsn)
		if err != nil {
			return err
		}
		var got int
		err = db.QueryRow("SELECT COUNT(*) FROM load_rows").Scan(&got)
		db.Close()
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("load_rows holds %d rows, want %d", got, n)
		}
	}
	return nil
}

func sameTable(ctx context.Context, t gapsync.Table, a, b *storage.DB) error {
	ha, na, err := a.Checksum(ctx, t)
	if err != nil {
		return err
	}
	hb, nb, err := b.Checksum(ctx, t)
	if err != nil {
		return err
	}
	if ha != hb || na != nb {
		return fmt.Errorf("intranet load_rows (%d rows) differs from internet (%d rows)", nb, na)
	}
	return nil
}

// dumpPipe runs mysqldump --no-create-info SRC load_rows | mysql DST.
func dumpPipe(srcDSN, dstDSN string) (time.Duration, string, error) {
	src, _ := mysql.ParseDSN(srcDSN)
	dst, _ := mysql.ParseDSN(dstDSN)
	conn := mysqlConn(src)
	q := func(ss []string) string { return "'" + strings.Join(ss, "' '") + "'" }
	script := "mysqldump " + q(conn) + " --no-create-info " + q([]string{src.DBName, "load_rows"}) + " | mysql " + q(conn) + " " + q([]string{dst.DBName})
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, "", fmt.Errorf("mysqldump | mysql: %w", err)
	}
	return time.Since(start), "", nil
}

// myDumper runs mydumper -t parallel into a fresh directory, then
// myloader -t parallel from it into DST: data only (DST has the table),
// in chunks of 100,000 rows so that both sides work in parallel on one
// table, and returns the dump's time plus the finished load's.
func myDumper(srcDSN, dstDSN string) (time.Duration, string, error) {
	src, _ := mysql.ParseDSN(srcDSN)
	dst, _ := mysql.ParseDSN(dstDSN)
	conn := mysqlConn(src)
	dir, err := os.MkdirTemp("", "gapsync-bench-mydumper-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "dump")
	t := strconv.Itoa(parallel)
	dump := exec.Command("mydumper", append(conn, "-B", src.DBName, "-T", "load_rows", "--no-schemas", "--rows", "100000",
		"-t", t, "-o", out, "-v", "1")...)
	dump.Stdout, dump.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := dump.Run(); err != nil {
		return 0, "", fmt.Errorf("mydumper: %w", err)
	}
	dumped := time.Since(start)
	// Three threads inserting into one table can deadlock on its
	// indexes; myloader then stops. A DBA runs it again: so does the
	// bench, on an emptied table, up to three times, and times the run
	// that finished.
	var loadErr error
	for try := 1; try <= 3; try++ {
		if try > 1 {
			fmt.Fprintf(os.Stderr, "bench: myloader failed (%v); emptying the table and running it again\n", loadErr)
			if err := execSQL(dstDSN, "TRUNCATE TABLE load_rows"); err != nil {
				return 0, "", err
			}
		}
		load := exec.Command("myloader", append(mysqlConn(dst), "-d", out, "-B", dst.DBName, "-t", t, "-v", "1")...)
		load.Stdout, load.Stderr = os.Stderr, os.Stderr
		start = time.Now()
		if loadErr = load.Run(); loadErr == nil {
			note := fmt.Sprintf("dump %.1f s, load %.1f s", dumped.Seconds(), time.Since(start).Seconds())
			if try > 1 {
				note += fmt.Sprintf(", the load's try %d after a deadlock", try)
			}
			return dumped + time.Since(start), note, nil
		}
	}
	return 0, "", fmt.Errorf("myloader: %w", loadErr)
}

// mysqlConn is the connection flags of the mysql clients for cfg.
func mysqlConn(cfg *mysql.Config) []string {
	host, port := "127.0.0.1", "3306"
	if h, p, err := net.SplitHostPort(cfg.Addr); err == nil {
		host, port = h, p
	}
	conn := []string{"-h", host, "-P", port, "-u", cfg.User}
	if cfg.Passwd != "" {
		conn = append(conn, "-p"+cfg.Passwd)
	}
	return conn
}

// rowsReport runs the rows case runs times after warmup runs and prints
// the medians and, beside each peer, the per-run ratios and their median
// (the machine is noisy; a run's halves share its noise).
func rowsReport(ctx context.Context, e engine, dir gapsync.Direction, n, warmup, runs int) error {
	changed := min(10_000, n/10)
	var all []rowsRun
	for i := 1 - warmup; i <= runs; i++ {
		r, err := rowsCase(ctx, e, dir, n, changed, i == 1-warmup) // the first run checks the tables whole
		if err != nil {
			return err
		}
		what := fmt.Sprintf("run %d", i)
		if i <= 0 {
			what = "warm-up"
		}
		var ps []string
		for j, p := range e.peers {
			ps = append(ps, fmt.Sprintf("%s %.1f s", p.name, r.peers[j].Seconds()))
		}
		fmt.Fprintf(os.Stderr, "bench: %s %s %s: gapsync %.1f s, %s; incremental %.2f s (newest rows) %.2f s (scattered; plain upsert %.2f s)\n",
			e.name, dir, what, r.load.Seconds(), strings.Join(ps, ", "), r.incr.Seconds(), r.scattered.Seconds(), r.upsertBound.Seconds())
		if i > 0 {
			all = append(all, r)
		}
	}
	pick := func(f func(rowsRun) time.Duration) []time.Duration {
		var ds []time.Duration
		for _, r := range all {
			ds = append(ds, f(r))
		}
		return ds
	}
	// ratios lists a/b run by run and gives their median.
	ratios := func(a, b func(rowsRun) time.Duration) string {
		var per []string
		var rs []time.Duration
		for _, r := range all {
			q := a(r).Seconds() / b(r).Seconds()
			per = append(per, fmt.Sprintf("%.2f", q))
			rs = append(rs, time.Duration(q*float64(time.Second)))
		}
		return fmt.Sprintf("per run %s; median **%.2f**", strings.Join(per, ", "), median(rs).Seconds())
	}
	load := func(r rowsRun) time.Duration { return r.load }
	l := median(pick(load))
	fmt.Printf("%s, %s (gapsync applies %d pages at once; the multi-threaded peer gets as many threads), median of %d runs:\n\n", e.name, dir, parallel, len(all))
	fmt.Printf("| case | gapsync | peer | ratio gapsync ÷ peer |\n|---|---|---|---|\n")
	for j, p := range e.peers {
		peer := func(r rowsRun) time.Duration { return r.peers[j] }
		d := median(pick(peer))
		note := ""
		if r := all[len(all)/2]; r.notes[j] != "" {
			note = " (a run's " + r.notes[j] + ")"
		}
		fmt.Printf("| initial load, %d rows | %.1f s, %.0f rows/s | %s %.1f s, %.0f rows/s%s | %s |\n",
			n, l.Seconds(), float64(n)/l.Seconds(), strings.ReplaceAll(p.name, "|", "\\|"), d.Seconds(), float64(n)/d.Seconds(), note, ratios(load, peer))
	}
	incr := func(r rowsRun) time.Duration { return r.incr }
	fmt.Printf("| incremental, the newest %d of %d rows changed | %.2f s for one cycle | | |\n", changed, n, median(pick(incr)).Seconds())
	scat := func(r rowsRun) time.Duration { return r.scattered }
	if len(e.peers) > 0 {
		bound := func(r rowsRun) time.Duration { return r.upsertBound }
		fmt.Printf("| incremental, %d rows spread over all %d changed | %.2f s for one cycle | the same rows upserted by a plain client, 1,000 a statement, %.2f s | %s |\n\n",
			changed, n, median(pick(scat)).Seconds(), median(pick(bound)).Seconds(), ratios(scat, bound))
	}
	return nil
}
