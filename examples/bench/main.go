// Command bench measures gapsync on a real MariaDB/MySQL server against
// what a user would otherwise do, in the same run, and prints Markdown
// tables of medians and ratios (BENCHMARKS.md holds the latest).
//
//	go run ./examples/bench -mysql 'root@tcp(127.0.0.1:3306)/'          # every case, full sizes
//	go run ./examples/bench -mysql 'root@tcp(127.0.0.1:3306)/' -quick   # every case, small sizes
//	go run ./examples/bench -mysql '' -pg 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' -cases rows
//
// Case "rows": an initial load of -rows rows (about 200 bytes, 8 mixed
// columns) through the gateway, against mysqldump | mysql on the same
// server; then one incremental cycle with 10,000 of them changed (the
// newest, then spread evenly). With -pg the rows case runs on PostgreSQL
// too, both zones on that server, against pg_dump | psql. -directions
// says which ways it runs: push (internet to intranet) and pull (the
// reverse). Case "small": -small files of 8 KiB, each
// referenced by a row. Case "file": one file of each -size goes from the
// internet store through the internet database, the gateway and the
// intranet database into the intranet store, verified, with the three
// zone mains as separate processes so that each role's peak RSS is its
// own, against raw BLOB I/O of the same bytes on the same server. Case
// "ciphers": the initial load of -rows rows sealed with AES-256-GCM and
// with SM4-GCM, alternately in each of -runs runs after a warm-up of each,
// and the median of the per-run ratios SM4 ÷ AES, of the wall time and of
// the CPU time of this process (steadier on a busy machine).
//
// -cipher sets the shared key's cipher (aes or sm4) for the other cases.
//
// -buffer-pool resizes InnoDB's buffer pool for the run (and puts it
// back), to measure with a pool that holds the working set.
package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dsn := flag.String("mysql", os.Getenv("GAPSYNC_TEST_MYSQL_DSN"), "DSN of a MariaDB/MySQL user that may create databases; empty: no MariaDB cases")
	pg := flag.String("pg", os.Getenv("GAPSYNC_TEST_PG_DSN"), "URL of a PostgreSQL user that may create databases, for the rows case; empty: no PostgreSQL case")
	dirs := flag.String("directions", "push,pull", "directions of the rows case: push (internet to intranet), pull (intranet to internet)")
	sizes := flag.String("size", "1GiB", "file sizes for the file case, comma-separated (KiB, MiB, GiB suffixes)")
	cases := flag.String("cases", "rows,small,file", "cases to run: rows (initial load and incremental), small (many small files), file (one large file), ciphers (initial load under AES-256-GCM and SM4-GCM)")
	cipherName := flag.String("cipher", "aes", "the shared key's cipher for the rows, small and file cases: aes (AES-256-GCM) or sm4 (SM4-GCM)")
	nrows := flag.Int("rows", 1_000_000, "rows for the initial load")
	nsmall := flag.Int("small", 10_000, "files of 8 KiB for the small-files case")
	runs := flag.Int("runs", 3, "measured runs of the rows case, after one warm-up")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the gapsync initial loads to this file")
	quick := flag.Bool("quick", false, "small sizes for a fast check: 50,000 rows, 1,000 small files, a 64 MiB file, one run")
	pool := flag.String("buffer-pool", "", "set innodb_buffer_pool_size to this (e.g. 1GiB) for the run and restore it after (needs SUPER); empty: leave the server as it is")
	flag.Parse()
	if *quick {
		*nrows, *nsmall, *sizes, *runs = 50_000, 1000, "64MiB", 1
	}
	if *dsn == "" && *pg == "" {
		return errors.New("need -mysql DSN (or GAPSYNC_TEST_MYSQL_DSN), -pg URL (or GAPSYNC_TEST_PG_DSN), or both")
	}
	if *dsn == "" && (strings.Contains(*cases, "small") || strings.Contains(*cases, "file") || strings.Contains(*cases, "ciphers")) {
		return errors.New("the small, file and ciphers cases need -mysql DSN (or GAPSYNC_TEST_MYSQL_DSN)")
	}
	var directions []gapsync.Direction
	for _, d := range strings.Split(*dirs, ",") {
		switch d := gapsync.Direction(strings.TrimSpace(d)); d {
		case gapsync.Push, gapsync.Pull:
			directions = append(directions, d)
		default:
			return fmt.Errorf("-directions: %q is neither push nor pull", d)
		}
	}
	var err error
	if keyCipher, err = crypto.ParseCipher(*cipherName); err != nil {
		return err
	}
	if *pool != "" && *dsn != "" {
		n, err := parseSize(*pool)
		if err != nil {
			return err
		}
		restore, err := setBufferPool(*dsn, n)
		if err != nil {
			return err
		}
		defer restore()
	}
	var engines []engine
	if *dsn != "" {
		if err := describeServer(*dsn); err != nil {
			return err
		}
		engines = append(engines, mysqlEngine(*dsn))
	}
	if *pg != "" {
		if err := describePG(*pg); err != nil {
			return err
		}
		engines = append(engines, pgEngine(*pg))
	}
	defer cleanup()
	bin, err := os.MkdirTemp("", "gapsync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		profile = f
	}
	if strings.Contains(*cases, "rows") {
		for _, e := range engines {
			for _, d := range directions {
				if err := rowsReport(ctx, e, d, *nrows, *runs); err != nil {
					return fmt.Errorf("%s %s: %w", e.name, d, err)
				}
			}
		}
	}
	if strings.Contains(*cases, "ciphers") {
		if err := cipherReport(ctx, *dsn, *nrows, *runs); err != nil {
			return err
		}
	}
	if strings.Contains(*cases, "small") {
		if err := settle(*dsn); err != nil {
			return err
		}
		d, err := smallFilesCase(ctx, *dsn, *nsmall, 8<<10)
		if err != nil {
			return err
		}
		fmt.Printf("| many small files | %d files of 8 KiB in %.1f s, %.0f files/s |\n|---|---|\n\n", *nsmall, d.Seconds(), float64(*nsmall)/d.Seconds())
	}
	if !strings.Contains(*cases, "file") {
		return nil
	}
	fmt.Fprintln(os.Stderr, "bench: building the zone mains")
	build := exec.Command("go", "build", "-o", bin+"/", "./examples/internet", "./examples/external", "./examples/intranet")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build the mains (run from the module root): %w", err)
	}
	fmt.Printf("| file size | stage+send (internet) | publish (intranet) | end to end | stage bound (same bytes, raw BLOB I/O) | ratio bound ÷ gapsync | peak RSS internet | peak RSS external | peak RSS intranet |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := parseSize(s)
		if err != nil {
			return err
		}
		if err := fileCase(ctx, *dsn, bin, n); err != nil {
			return err
		}
	}
	return nil
}

func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// fresh creates an empty database and returns its DSN. Its name carries
// the bench's process id, so that two benches on one server do not share
// databases; cleanup drops it.
func fresh(base, name string) (string, error) {
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		return "", err
	}
	cfg.DBName = ""
	admin := cfg.FormatDSN()
	name = runName(name)
	if err := execSQL(admin, "DROP DATABASE IF EXISTS `"+name+"`", "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		return "", err
	}
	created[admin+"\x00DROP DATABASE IF EXISTS `"+name+"`"] = true
	cfg.DBName = name
	return cfg.FormatDSN(), nil
}

// runName is name with this process's id.
func runName(name string) string { return name + "_" + strconv.Itoa(os.Getpid()) }

// created holds, for each database fresh made, the admin DSN and the
// statement that drops it.
var created = map[string]bool{}

// cleanup drops the databases the bench created.
func cleanup() {
	for k := range created {
		admin, drop, _ := strings.Cut(k, "\x00")
		if err := execSQL(admin, drop); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
		}
	}
}

// execSQL runs statements on a MariaDB DSN or a postgres:// URL.
func execSQL(dsn string, qs ...string) error {
	driver := "mysql"
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func fileCase(ctx context.Context, base, bin string, size int64) error {
	inetDSN, err := fresh(base, "gapsync_bench_internet")
	if err != nil {
		return err
	}
	intraDSN, err := fresh(base, "gapsync_bench_intranet")
	if err != nil {
		return err
	}
	const ddl = "CREATE TABLE docs (id BIGINT PRIMARY KEY, path VARCHAR(300), updated_at DATETIME(6))"
	if err := execSQL(inetDSN, ddl); err != nil {
		return err
	}
	if err := execSQL(intraDSN, ddl); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "gapsync-bench-stores-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	inetStore, intraStore := filepath.Join(work, "internet"), filepath.Join(work, "intranet")
	os.MkdirAll(inetStore, 0o755)
	want, err := writeFile(filepath.Join(inetStore, "big.bin"), size)
	if err != nil {
		return err
	}
	if err := execSQL(inetDSN, "INSERT INTO docs VALUES (1, 'big.bin', NOW(6) - INTERVAL 1 MINUTE)"); err != nil {
		return err
	}
	key, _ := crypto.GenerateCipherKey(keyCipher, "bench")
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	table := "docs:id:updated_at:push:path"
	if _, _, err := proc(bin, env, "intranet", "-db", intraDSN, "-table", table); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	gw := exec.Command(filepath.Join(bin, "external"), "-listen", addr, "-db", intraDSN)
	gw.Env = env
	if err := gw.Start(); err != nil {
		return err
	}
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err := settle(base); err != nil {
		gw.Process.Kill()
		return err
	}
	sendTime, inetRSS, err := proc(bin, env, "internet", "-once", "-db", inetDSN, "-gateway", "http://"+addr,
		"-table", table, "-store", "dir:"+inetStore)
	if err != nil {
		gw.Process.Kill()
		return err
	}
	gw.Process.Signal(syscall.SIGTERM)
	gw.Wait()
	gwRSS := gw.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	pubTime, intraRSS, err := proc(bin, env, "intranet", "-once", "-db", intraDSN, "-store", "dir:"+intraStore)
	if err != nil {
		return err
	}
	got, err := hashFile(filepath.Join(intraStore, "from-internet", "big.bin"))
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the published file differs: %s, want %s", got, want)
	}
	if err := settle(base); err != nil {
		return err
	}
	bound, err := stageBound(base, filepath.Join(inetStore, "big.bin"), 4<<20, 4)
	if err != nil {
		return err
	}
	mb := float64(size) / (1 << 20)
	total := sendTime + pubTime
	fmt.Printf("| %d MiB | %.1f s, %.0f MB/s | %.1f s, %.0f MB/s | %.1f s, %.0f MB/s | %.1f s, %.0f MB/s | %.2f | %d MiB | %d MiB | %d MiB |\n",
		size>>20, sendTime.Seconds(), mb/sendTime.Seconds(), pubTime.Seconds(), mb/pubTime.Seconds(),
		total.Seconds(), mb/total.Seconds(), bound.Seconds(), mb/bound.Seconds(), bound.Seconds()/total.Seconds(),
		inetRSS>>10, gwRSS>>10, intraRSS>>10)
	return nil
}

// setBufferPool resizes the InnoDB buffer pool (a dynamic setting) and
// returns a function that puts the old size back.
func setBufferPool(dsn string, size int64) (func(), error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var old int64
	if err := db.QueryRow("SELECT @@innodb_buffer_pool_size").Scan(&old); err != nil {
		return nil, err
	}
	set := func(n int64) error {
		if _, err := db.Exec(fmt.Sprintf("SET GLOBAL innodb_buffer_pool_size = %d", n)); err != nil {
			return fmt.Errorf("set innodb_buffer_pool_size: %w", err)
		}
		// The resize runs in the background; wait until it took.
		for range 300 {
			var now int64
			var status string
			if err := db.QueryRow("SELECT @@innodb_buffer_pool_size").Scan(&now); err != nil {
				return err
			}
			_ = db.QueryRow("SHOW STATUS LIKE 'Innodb_buffer_pool_resize_status'").Scan(new(string), &status)
			if now == n && !strings.Contains(status, "Resizing") {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return errors.New("innodb_buffer_pool_size: the resize did not finish in 30 s")
	}
	if err := set(size); err != nil {
		return nil, err
	}
	return func() {
		db, err := sql.Open("mysql", dsn)
		if err == nil {
			defer db.Close()
			_, err = db.Exec(fmt.Sprintf("SET GLOBAL innodb_buffer_pool_size = %d", old))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: could not restore innodb_buffer_pool_size:", err)
		}
	}, nil
}

// settle has InnoDB flush what earlier cases left dirty, so that a case
// does not pay for the one before it: it sets innodb_max_dirty_pages_pct
// to 0 (an idle MariaDB otherwise keeps dirty pages for good), waits up to
// a minute for the dirty pages to fall to 1% of the pool, and puts the
// setting back.
func settle(dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var pct string
	if err := db.QueryRow("SELECT @@innodb_max_dirty_pages_pct").Scan(&pct); err != nil {
		return err
	}
	if _, err := db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = 0"); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	defer db.Exec("SET GLOBAL innodb_max_dirty_pages_pct = " + pct)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		var name string
		var dirty, total int64
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'").Scan(&name, &dirty); err != nil {
			return err
		}
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_total'").Scan(&name, &total); err != nil {
			return err
		}
		if dirty <= max(64, total/100) {
			return nil
		}
	}
	fmt.Fprintln(os.Stderr, "bench: InnoDB still flushing after a minute; measuring anyway")
	return nil
}

// describeServer prints the settings the figures depend on.
func describeServer(dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var version string
	var pool, packet, redo int64
	if err := db.QueryRow("SELECT VERSION(), @@innodb_buffer_pool_size, @@max_allowed_packet, @@innodb_log_file_size").Scan(&version, &pool, &packet, &redo); err != nil {
		return err
	}
	fmt.Printf("server %s: innodb_buffer_pool_size %d MiB, max_allowed_packet %d MiB, innodb_log_file_size %d MiB; %d CPUs\n\n",
		version, pool>>20, packet>>20, redo>>20, runtime.NumCPU())
	return nil
}

// describePG prints the PostgreSQL settings the figures depend on.
func describePG(dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var version, buffers, commit, wal string
	if err := db.QueryRow("SELECT current_setting('server_version'), current_setting('shared_buffers'), current_setting('synchronous_commit'), current_setting('max_wal_size')").
		Scan(&version, &buffers, &commit, &wal); err != nil {
		return fmt.Errorf("-pg: %w", err)
	}
	fmt.Printf("PostgreSQL %s: shared_buffers %s, synchronous_commit %s, max_wal_size %s; %d CPUs\n\n", version, buffers, commit, wal, runtime.NumCPU())
	return nil
}

// proc runs one zone main to completion and returns its wall time and
// peak RSS in KiB.
func proc(bin string, env []string, name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = env
	out, err := os.CreateTemp("", "gapsync-bench-log-")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(out.Name())
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err != nil {
		log, _ := os.ReadFile(out.Name())
		return took, 0, fmt.Errorf("%s: %w\n%s", name, err, log)
	}
	return took, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, nil
}

// writeFile writes size pseudo-random bytes and returns their SHA-256.
func writeFile(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		for i := 0; i < int(n); i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < int(n); j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			return "", err
		}
		left -= n
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func rowsReport(ctx context.Context, e engine, dir gapsync.Direction, n, runs int) error {
	changed := min(10_000, n/10)
	var loads, dumps, incrs, scats []time.Duration
	for i := 0; i <= runs; i++ {
		l, d, inc, sc, err := rowsCase(ctx, e, dir, n, changed)
		if err != nil {
			return err
		}
		what := fmt.Sprintf("run %d", i)
		if i == 0 {
			what = "warm-up"
		}
		fmt.Fprintf(os.Stderr, "bench: %s %s %s: gapsync %.1f s, %s %.1f s, incremental %.2f s (newest rows) %.2f s (scattered)\n",
			e.name, dir, what, l.Seconds(), e.peer, d.Seconds(), inc.Seconds(), sc.Seconds())
		if i > 0 {
			loads, dumps, incrs, scats = append(loads, l), append(dumps, d), append(incrs, inc), append(scats, sc)
		}
	}
	l, d, inc, sc := median(loads), median(dumps), median(incrs), median(scats)
	// Side by side: each run's ratio, then their median (the machine is
	// noisy; a run's two halves share its noise).
	var ratios []time.Duration
	for i := range loads {
		ratios = append(ratios, time.Duration(float64(time.Second)*loads[i].Seconds()/dumps[i].Seconds()))
	}
	per := make([]string, len(ratios))
	for i, r := range ratios {
		per[i] = fmt.Sprintf("%.2f", r.Seconds())
	}
	fmt.Printf("%s, %s:\n\n| case | gapsync | peer | ratio gapsync ÷ peer |\n|---|---|---|---|\n", e.name, dir)
	fmt.Printf("| initial load, %d rows | %.1f s, %.0f rows/s | %s %.1f s, %.0f rows/s | per run %s; median %.2f |\n",
		n, l.Seconds(), float64(n)/l.Seconds(), strings.ReplaceAll(e.peer, "|", "\\|"), d.Seconds(), float64(n)/d.Seconds(), strings.Join(per, ", "), median(ratios).Seconds())
	fmt.Printf("| incremental, the newest %d of %d rows changed | %.2f s for one cycle | | |\n", changed, n, inc.Seconds())
	fmt.Printf("| incremental, %d rows spread over all %d changed | %.2f s for one cycle | | |\n\n", changed, n, sc.Seconds())
	return nil
}

// cipherReport measures the initial load of n rows under each cipher in
// the same run: one warm-up of each, then runs rounds of both, the order
// alternating from round to round so that neither always runs second, and
// prints the medians and the median of the per-round ratios, of the wall
// time and of this process's CPU time (the coordinator, the gateway, both
// drivers and the envelopes: everything but the database server), which a
// busy machine disturbs far less than the wall time.
func cipherReport(ctx context.Context, dsn string, n, runs int) error {
	defer func(c crypto.Cipher) { keyCipher = c }(keyCipher)
	aes, sm4 := crypto.AES256GCM, crypto.SM4GCM
	var walls, cpus [2][]time.Duration // by cipher
	var wallRatios, cpuRatios []time.Duration
	ratio := func(a, b time.Duration) time.Duration {
		return time.Duration(float64(time.Second) * b.Seconds() / a.Seconds())
	}
	for i := 0; i <= runs; i++ {
		order := []crypto.Cipher{aes, sm4}
		if i%2 == 1 {
			order = []crypto.Cipher{sm4, aes}
		}
		var wall, cpu [2]time.Duration
		for _, c := range order {
			keyCipher = c
			before := cpuTime()
			z, _, load, err := initialLoad(ctx, mysqlEngine(dsn), gapsync.Push, n)
			if z != nil {
				z.Close()
			}
			if err != nil {
				return fmt.Errorf("%v: %w", c, err)
			}
			wall[c], cpu[c] = load, cpuTime()-before
		}
		what := fmt.Sprintf("run %d", i)
		if i == 0 {
			what = "warm-up"
		}
		fmt.Fprintf(os.Stderr, "bench: ciphers %s: aes-256-gcm %.2f s (CPU %.2f s), sm4-gcm %.2f s (CPU %.2f s), sm4 ÷ aes %.3f (CPU %.3f)\n",
			what, wall[aes].Seconds(), cpu[aes].Seconds(), wall[sm4].Seconds(), cpu[sm4].Seconds(),
			ratio(wall[aes], wall[sm4]).Seconds(), ratio(cpu[aes], cpu[sm4]).Seconds())
		if i > 0 {
			for _, c := range []crypto.Cipher{aes, sm4} {
				walls[c], cpus[c] = append(walls[c], wall[c]), append(cpus[c], cpu[c])
			}
			wallRatios, cpuRatios = append(wallRatios, ratio(wall[aes], wall[sm4])), append(cpuRatios, ratio(cpu[aes], cpu[sm4]))
		}
	}
	list := func(ds []time.Duration) string {
		var s []string
		for _, d := range ds {
			s = append(s, fmt.Sprintf("%.3f", d.Seconds()))
		}
		return strings.Join(s, ", ")
	}
	fmt.Printf("| initial load, %d rows, median of %d runs | AES-256-GCM | SM4-GCM | ratio SM4 ÷ AES |\n|---|---|---|---|\n", n, runs)
	fmt.Printf("| wall time | %.2f s, %.0f rows/s | %.2f s, %.0f rows/s | per run %s; median **%.3f** |\n",
		median(walls[aes]).Seconds(), float64(n)/median(walls[aes]).Seconds(), median(walls[sm4]).Seconds(), float64(n)/median(walls[sm4]).Seconds(),
		list(wallRatios), median(wallRatios).Seconds())
	fmt.Printf("| CPU time of the gapsync process | %.2f s | %.2f s | per run %s; median **%.3f** |\n\n",
		median(cpus[aes]).Seconds(), median(cpus[sm4]).Seconds(), list(cpuRatios), median(cpuRatios).Seconds())
	return nil
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// profile, when set, receives a CPU profile of the gapsync initial loads.
var profile *os.File

// keyCipher is the cipher of the key the zones share (-cipher).
var keyCipher crypto.Cipher
