package syncer_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// BenchmarkVerifyMariaDB verifies two equal MariaDB tables of
// GAPSYNC_BENCH_VERIFY_ROWS rows (default 1,000,000) through a loopback
// gateway, then the same with one row changed on the intranet, and
// reports the seconds and the sealed bytes that crossed; when
// pt-table-sync is installed it times `pt-table-sync --print` on the same
// two tables for each case, the peer a DBA would use.
//
//	go test -run XXX -bench VerifyMariaDB -benchtime 1x ./syncer/
func BenchmarkVerifyMariaDB(b *testing.B) {
	rows := 1_000_000
	if s := os.Getenv("GAPSYNC_BENCH_VERIFY_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	var dsns []string
	var dbs []*storage.DB
	for range 2 {
		dsn := testdb.MySQL(b)
		db, err := storage.OpenMySQL(dsn, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{
			"CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100), price DECIMAL(10,2), updated_at DATETIME(6), KEY (updated_at))",
			"INSERT INTO demo SELECT seq, CONCAT('title ', seq), seq + 0.25, '2026-01-01 00:00:00' FROM seq_1_to_" + strconv.Itoa(rows),
		} {
			if _, err := db.Bun().ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.Configure(ctx, gapsync.Table{Name: "demo", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}); err != nil {
			b.Fatal(err)
		}
		dsns, dbs = append(dsns, dsn), append(dbs, db)
	}
	k, _ := crypto.GenerateKey("bench")
	keys, _ := crypto.NewKeyring(k)
	gw, err := syncer.NewGateway(dbs[1], keys, nil)
	if err != nil {
		b.Fatal(err)
	}
	cnt := &byteCounter{next: gw}
	srv := httptest.NewServer(cnt)
	b.Cleanup(srv.Close)
	client, err := transport.NewClient(srv.URL, keys, nil)
	if err != nil {
		b.Fatal(err)
	}
	coord, err := syncer.NewCoordinator(dbs[0], client, nil)
	if err != nil {
		b.Fatal(err)
	}
	peer := func(name string) {
		if _, err := exec.LookPath("pt-table-sync"); err != nil {
			b.Logf("pt-table-sync not installed: no peer figure")
			return
		}
		var args []string
		for _, dsn := range dsns {
			cfg, _ := mysql.ParseDSN(dsn)
			host, port, _ := strings.Cut(cfg.Addr, ":")
			args = append(args, "h="+host+",P="+port+",u="+cfg.User+",D="+cfg.DBName+",t=demo")
		}
		start := time.Now()
		out, err := exec.Command("pt-table-sync", append([]string{"--print", "--no-check-triggers"}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 { // 2: the tables differ
			err = nil
		}
		if err != nil {
			b.Fatalf("pt-table-sync: %v\n%s", err, out)
		}
		took := time.Since(start)
		b.ReportMetric(took.Seconds(), "pt-"+name+"-s")
		b.Logf("pt-table-sync --print, %s: %.2f s, %d statements", name, took.Seconds(), strings.Count(string(out), ";\n"))
	}
	verify := func(name string, want int) {
		cnt.bytes.Store(0)
		start := time.Now()
		vs, err := coord.Verify(ctx, nil, &syncer.VerifyOptions{Fresh: true})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if len(vs[0].Diffs) != want {
			b.Fatalf("%s: %d rows differ, want %d", name, len(vs[0].Diffs), want)
		}
		b.ReportMetric(took.Seconds(), name+"-s")
		b.ReportMetric(float64(cnt.bytes.Load()), name+"-bytes")
		b.Logf("gapsync verify, %s: %.2f s, %d ranges, %d bytes through the gateway", name, took.Seconds(), vs[0].Ranges, cnt.bytes.Load())
	}
	for range b.N {
		verify("equal", 0)
		peer("equal")
		if _, err := dbs[1].Bun().ExecContext(ctx, "UPDATE demo SET price = price + 1 WHERE id = "+strconv.Itoa(rows/2)); err != nil {
			b.Fatal(err)
		}
		verify("one-differs", 1)
		peer("one-differs")
		if _, err := dbs[1].Bun().ExecContext(ctx, "UPDATE demo SET price = price - 1 WHERE id = "+strconv.Itoa(rows/2)); err != nil {
			b.Fatal(err)
		}
	}
}

// sumless hides a database's server-side range checksum, so that a
// coordinator over it hashes every row in Go, as before PostgreSQL had
// one.
type sumless struct{ *storage.DB }

func (sumless) SumAlgorithm() string { return "" }

// BenchmarkVerifyPostgres is BenchmarkVerifyMariaDB on two PostgreSQL
// databases (no peer tool): each round verifies the equal tables with
// every row hashed in Go on both sides (rows-equal, how PostgreSQL was
// verified before it checksummed ranges on its server), then with the
// servers' checksums (equal), then with one row changed on the intranet
// (one-differs).
//
//	go test -run XXX -bench VerifyPostgres -benchtime 3x ./syncer/
func BenchmarkVerifyPostgres(b *testing.B) {
	rows := 1_000_000
	if s := os.Getenv("GAPSYNC_BENCH_VERIFY_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	var dbs []*storage.DB
	for range 2 {
		db, err := storage.OpenPostgres(testdb.Postgres(b), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{
			"CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100), price NUMERIC(10,2), updated_at TIMESTAMP(6))",
			"CREATE INDEX demo_updated_at ON demo (updated_at)",
			"INSERT INTO demo SELECT g, 'title ' || g, g + 0.25, '2026-01-01 00:00:00' FROM generate_series(1, " + strconv.Itoa(rows) + ") g",
			"VACUUM (ANALYZE) demo", // as autovacuum leaves a table at rest
		} {
			if _, err := db.Bun().ExecContext(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.Configure(ctx, gapsync.Table{Name: "demo", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}); err != nil {
			b.Fatal(err)
		}
		dbs = append(dbs, db)
	}
	k, _ := crypto.GenerateKey("bench")
	keys, _ := crypto.NewKeyring(k)
	gw, err := syncer.NewGateway(dbs[1], keys, nil)
	if err != nil {
		b.Fatal(err)
	}
	cnt := &byteCounter{next: gw}
	srv := httptest.NewServer(cnt)
	b.Cleanup(srv.Close)
	client, err := transport.NewClient(srv.URL, keys, nil)
	if err != nil {
		b.Fatal(err)
	}
	sums, err := syncer.NewCoordinator(dbs[0], client, nil)
	if err != nil {
		b.Fatal(err)
	}
	hashes, err := syncer.NewCoordinator(sumless{dbs[0]}, client, nil)
	if err != nil {
		b.Fatal(err)
	}
	verify := func(coord *syncer.Coordinator, name string, want int) {
		cnt.bytes.Store(0)
		start := time.Now()
		vs, err := coord.Verify(ctx, nil, &syncer.VerifyOptions{Fresh: true})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if len(vs[0].Diffs) != want {
			b.Fatalf("%s: %d rows differ, want %d", name, len(vs[0].Diffs), want)
		}
		b.ReportMetric(took.Seconds(), name+"-s")
		b.ReportMetric(float64(cnt.bytes.Load()), name+"-bytes")
		b.Logf("gapsync verify, %s: %.2f s, %d ranges, %d bytes through the gateway", name, took.Seconds(), vs[0].Ranges, cnt.bytes.Load())
	}
	for range b.N {
		verify(hashes, "rows-equal", 0)
		verify(sums, "equal", 0)
		if _, err := dbs[1].Bun().ExecContext(ctx, "UPDATE demo SET price = price + 1 WHERE id = "+strconv.Itoa(rows/2)); err != nil {
			b.Fatal(err)
		}
		verify(sums, "one-differs", 1)
		if _, err := dbs[1].Bun().ExecContext(ctx, "UPDATE demo SET price = price - 1 WHERE id = "+strconv.Itoa(rows/2)); err != nil {
			b.Fatal(err)
		}
	}
}
