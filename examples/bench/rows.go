package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
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
// databases, the load table and its rows, and the peer that copies the
// table by hand.
type engine struct {
	name string // as the tables print it
	peer string // the peer's command, as the tables print it
	// fresh creates an empty database on the server and returns a DSN
	// for it that storage.Open takes.
	fresh func(name string) (string, error)
	ddl   string // the load table and its cursor index
	fill  func(dsn string, n int) error
	// now is the expression an UPDATE sets the cursor column to.
	now  string
	dump func(srcDSN, dstDSN, table string) error
	// settle, when set, has the server write out what was left dirty
	// before each half of the case, so that neither pays for the other.
	settle func() error
}

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
	return engine{
		name: "MariaDB", peer: "mysqldump | mysql",
		fresh: func(name string) (string, error) { return fresh(base, name) },
		ddl:   loadDDL, fill: fillRows, now: "NOW(6)", dump: dumpPipe,
	}
}

// fillRows generates n rows from a fixed seed on the server (MariaDB's
// sequence engine), stamped a minute in the past so they fall in the
// first window.
func fillRows(dsn string, n int) error {
	return execSQL(dsn, fmt.Sprintf(`INSERT INTO load_rows
		SELECT seq, CONCAT('customer-', LPAD(seq, 10, '0'), '-', SUBSTR(MD5(seq), 1, 24)),
		       (seq * 7919 %% 1000000) / 100, seq %% 100000, seq / 7.0, seq %% 2,
		       CONCAT('订单备注 note ', SHA1(seq), ' ', SUBSTR(MD5(seq * 3), 1, 20)),
		       NOW(6) - INTERVAL 1 MINUTE
		FROM seq_1_to_%d`, n))
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
	if z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: files}); err != nil {
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
// HTTP, and checks that both tables agree. The caller closes z.
func initialLoad(ctx context.Context, e engine, dir gapsync.Direction, n int) (z *rowZones, srcDSN string, load time.Duration, err error) {
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
	err = sameTable(ctx, table, z.inet, z.intra)
	return
}

// rowsCase measures the initial load of n rows through gapsync and
// through the engine's peer, which copies the same table between two
// databases of the same server, then one incremental cycle with changed
// rows.
func rowsCase(ctx context.Context, e engine, dir gapsync.Direction, n, changed int) (load, dump, incr, scattered time.Duration, err error) {
	z, srcDSN, load, err := initialLoad(ctx, e, dir, n)
	if z != nil {
		defer z.Close()
	}
	if err != nil {
		return
	}

	// The peer: what a DBA would do by hand, on the same server.
	peerDSN, err := e.fresh("gapsync_bench_peer")
	if err != nil {
		return
	}
	if err = execSQL(peerDSN, e.ddl); err != nil {
		return
	}
	if err = e.settleNow(); err != nil {
		return
	}
	start := time.Now()
	if err = e.dump(srcDSN, peerDSN, "load_rows"); err != nil {
		return
	}
	dump = time.Since(start)

	// Incremental: change some rows, wait out the lag, run one cycle;
	// first the newest rows (the usual shape of a day's changes), then
	// rows spread evenly over the whole table.
	table := loadTable(dir)
	cycle := func(where string) (time.Duration, error) {
		if err := execSQL(srcDSN, "UPDATE load_rows SET qty = qty + 1, updated_at = "+e.now+" WHERE "+where); err != nil {
			return 0, err
		}
		time.Sleep(1100 * time.Millisecond)
		start := time.Now()
		r, err := z.coord.RunOnce(ctx)
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if got := r.Rows(dir); got != int64(changed) {
			return 0, fmt.Errorf("incremental cycle moved %d rows, want %d", got, changed)
		}
		return took, sameTable(ctx, table, z.inet, z.intra)
	}
	if incr, err = cycle(fmt.Sprintf("id > %d", n-changed)); err != nil {
		return
	}
	scattered, err = cycle(fmt.Sprintf("id %% %d = 1", n/changed))
	return
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

// dumpPipe runs mysqldump --no-create-info SRC TABLE | mysql DST.
func dumpPipe(srcDSN, dstDSN, table string) error {
	src, _ := mysql.ParseDSN(srcDSN)
	dst, _ := mysql.ParseDSN(dstDSN)
	host, port := "127.0.0.1", "3306"
	if h, p, err := net.SplitHostPort(src.Addr); err == nil {
		host, port = h, p
	}
	conn := []string{"-h", host, "-P", port, "-u", src.User}
	if src.Passwd != "" {
		conn = append(conn, "-p"+src.Passwd)
	}
	q := func(ss []string) string { return "'" + strings.Join(ss, "' '") + "'" }
	script := "mysqldump " + q(conn) + " --no-create-info " + q([]string{src.DBName, table}) + " | mysql " + q(conn) + " " + q([]string{dst.DBName})
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mysqldump | mysql: %w", err)
	}
	return nil
}
