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

var loadTable = gapsync.Table{Name: "load_rows", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}

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
	if z.inet, err = storage.OpenMySQL(inetDSN, &storage.Options{Lag: lag}); err != nil {
		return nil, nil, err
	}
	if z.intra, err = storage.OpenMySQL(intraDSN, &storage.Options{Lag: lag}); err != nil {
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

// initialLoad creates the two zone databases, fills the internet one with
// n rows and moves them all in one cycle, sealed, over loopback HTTP, and
// checks that both tables agree. The caller closes z.
func initialLoad(ctx context.Context, base string, n int) (z *rowZones, inetDSN string, load time.Duration, err error) {
	if inetDSN, err = fresh(base, "gapsync_bench_internet"); err != nil {
		return
	}
	intraDSN, err := fresh(base, "gapsync_bench_intranet")
	if err != nil {
		return
	}
	for _, d := range []string{inetDSN, intraDSN} {
		if err = execSQL(d, loadDDL); err != nil {
			return
		}
	}
	if err = fillRows(inetDSN, n); err != nil {
		return
	}
	if z, _, err = newRowZones(inetDSN, intraDSN, time.Second, nil, nil); err != nil {
		return
	}
	for _, db := range []*storage.DB{z.inet, z.intra} {
		if err = db.Configure(ctx, loadTable); err != nil {
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
	if got := r.Rows(gapsync.Push); got != int64(n) {
		err = fmt.Errorf("initial load moved %d rows, want %d", got, n)
		return
	}
	err = sameTable(ctx, z.inet, z.intra)
	return
}

// rowsCase measures the initial load of n rows through gapsync and through
// mysqldump | mysql, then one incremental cycle with changed rows.
func rowsCase(ctx context.Context, base string, n, changed int) (load, dump, incr, scattered time.Duration, err error) {
	z, inetDSN, load, err := initialLoad(ctx, base, n)
	if z != nil {
		defer z.Close()
	}
	if err != nil {
		return
	}

	// The peer: what a DBA would do by hand, on the same server.
	peerDSN, err := fresh(base, "gapsync_bench_peer")
	if err != nil {
		return
	}
	if err = execSQL(peerDSN, loadDDL); err != nil {
		return
	}
	start := time.Now()
	if err = dumpPipe(inetDSN, peerDSN, "load_rows"); err != nil {
		return
	}
	dump = time.Since(start)

	// Incremental: change some rows, wait out the lag, run one cycle;
	// first the newest rows (the usual shape of a day's changes), then
	// rows spread evenly over the whole table.
	cycle := func(where string) (time.Duration, error) {
		if err := execSQL(inetDSN, "UPDATE load_rows SET qty = qty + 1, updated_at = NOW(6) WHERE "+where); err != nil {
			return 0, err
		}
		time.Sleep(1100 * time.Millisecond)
		start := time.Now()
		r, err := z.coord.RunOnce(ctx)
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if got := r.Rows(gapsync.Push); got != int64(changed) {
			return 0, fmt.Errorf("incremental cycle moved %d rows, want %d", got, changed)
		}
		return took, sameTable(ctx, z.inet, z.intra)
	}
	if incr, err = cycle(fmt.Sprintf("id > %d", n-changed)); err != nil {
		return
	}
	scattered, err = cycle(fmt.Sprintf("id %% %d = 1", n/changed))
	return
}

func sameTable(ctx context.Context, a, b *storage.DB) error {
	ha, na, err := a.Checksum(ctx, loadTable)
	if err != nil {
		return err
	}
	hb, nb, err := b.Checksum(ctx, loadTable)
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
