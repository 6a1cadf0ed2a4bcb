// Command bench measures gapsync on a real MariaDB/MySQL server against
// what a user would otherwise do, in the same run, and prints Markdown
// tables of medians and ratios (BENCHMARKS.md holds the latest).
//
//	go run ./examples/bench -mysql 'root@tcp(127.0.0.1:3306)/'          # every case, full sizes
//	go run ./examples/bench -mysql 'root@tcp(127.0.0.1:3306)/' -quick   # every case, small sizes, under 90 s
//	go run ./examples/bench -mysql '' -pg 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable' -cases rows
//
// Every case runs in each of -directions: push (internet to intranet)
// and pull (the reverse), and reports both.
//
// Case "rows": an initial load of -rows rows (about 200 bytes, 8 mixed
// columns) through the gateway, in this process, against the peers on
// the same server: mysqldump | mysql, and mydumper -t N into a directory
// then myloader -t N (N is gapsync's own parallelism, the pages the
// coordinator applies at once; skipped with a note when mydumper is not
// installed); then one incremental cycle with 10,000 of them changed (the
// newest, then spread evenly), the spread rows also upserted by a plain
// client as the bound. With -pg the rows case runs on PostgreSQL too,
// both zones on that server, against pg_dump | psql. Case "growth": the
// initial load of each -growth count of rows with the zone mains as
// processes: time per row against the first count's, and each role's
// peak RSS. Case "small": -small files of 8 KiB, each referenced by a
// row. Case "file": one file of each -size goes from the source side's
// store through both databases and the gateway into the other side's
// store, verified, against raw BLOB I/O of the same bytes on the same
// server. Cases small and file run the zone mains as processes too, so
// that each role's peak RSS is its own. Case "ciphers": the initial load
// of -rows rows sealed with AES-256-GCM and with SM4-GCM, alternately in
// each of -runs runs after a warm-up of each, and the median of the
// per-run ratios SM4 ÷ AES, of the wall time and of the CPU time of this
// process (steadier on a busy machine); it runs only when named.
//
// Case "tables": -tables tables of 10 rows each, first loaded, then a
// cycle with nothing to move and a cycle with the rows of 100 of them
// changed, each with the batched check of idle tables and, alternately
// in the same run, with every table checked on its own (tables.go).
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
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// bench holds what the cases share: the flags, the engines, and the zone
// mains once built.
type bench struct {
	dsn        string // MariaDB/MySQL; empty: none
	engines    []engine
	maria      engine // engines' MariaDB/MySQL one, when dsn is set
	directions []gapsync.Direction
	sizes      []int64 // file case
	nrows      int
	nsmall     int
	runs       int
	warmup     int
	growth     []int // rows of each initial load of the growth case
	ntables    int   // tables of the tables case
	bin        string
	built      bool
}

// benchCase is one case: its name in -cases, whether it needs MariaDB,
// and what runs it. cases runs them in this order; a new case is a file
// of its own and one line here.
type benchCase struct {
	name       string
	needsMySQL bool
	run        func(ctx context.Context, b *bench) error
}

var cases = []benchCase{
	{"rows", false, rowsCases},
	{"ciphers", true, func(ctx context.Context, b *bench) error { return cipherReport(ctx, b.dsn, b.nrows, b.runs) }},
	{"growth", true, growthCase},
	{"small", true, smallCases},
	{"file", true, fileCases},
	{"tables", false, tablesCases},
}

func run(ctx context.Context) error {
	var names []string
	for _, c := range cases {
		if c.name != "ciphers" {
			names = append(names, c.name)
		}
	}
	dsn := flag.String("mysql", os.Getenv("GAPSYNC_TEST_MYSQL_DSN"), "DSN of a MariaDB/MySQL user that may create databases; empty: no MariaDB cases")
	pg := flag.String("pg", os.Getenv("GAPSYNC_TEST_PG_DSN"), "URL of a PostgreSQL user that may create databases, for the rows case; empty: no PostgreSQL case")
	dirs := flag.String("directions", "push,pull", "directions every case runs: push (internet to intranet), pull (intranet to internet)")
	sizes := flag.String("size", "1GiB", "file sizes for the file case, comma-separated (KiB, MiB, GiB suffixes)")
	caseList := flag.String("cases", strings.Join(names, ","), "cases to run: rows (initial load against the peers, and incremental), growth (initial loads of -growth rows through the zone mains:\ntime per row and peak RSS per role), small (many small files), file (one large file),\ntables (cycles over -tables tables with nothing to move and with 100 of them changed, batched and per table), ciphers (initial load under AES-256-GCM and SM4-GCM)")
	cipherName := flag.String("cipher", "aes", "the shared key's cipher for the rows, small and file cases: aes (AES-256-GCM) or sm4 (SM4-GCM)")
	nrows := flag.Int("rows", 1_000_000, "rows for the initial load")
	nsmall := flag.Int("small", 10_000, "files of 8 KiB for the small-files case")
	runs := flag.Int("runs", 3, "measured runs of the rows case, after -warmup")
	warmup := flag.Int("warmup", 1, "runs of the rows case before the measured ones, not counted")
	growth := flag.String("growth", "1000000,5000000", "rows of each initial load of the growth case, comma-separated")
	ntables := flag.Int("tables", 1000, "tables of 10 rows for the tables case")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the first gapsync initial load to this file")
	quick := flag.Bool("quick", false, "small sizes for a fast check (flags given explicitly win): 50,000 rows, growth at 50,000 and 100,000, 300 small files,\na 32 MiB file, one run and no warm-up, settling InnoDB for 2 s at most")
	pool := flag.String("buffer-pool", "", "set innodb_buffer_pool_size to this (e.g. 1GiB) for the run and restore it after (needs SUPER); empty: leave the server as it is")
	flag.Parse()
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range map[string]string{"rows": "50000", "growth": "50000,100000", "small": "300", "size": "32MiB", "runs": "1", "warmup": "0", "tables": "200"} {
			if !set[name] {
				flag.Set(name, v)
			}
		}
		quickRun, settleWait = true, 2*time.Second
	}
	b := &bench{dsn: *dsn, nrows: *nrows, nsmall: *nsmall, runs: *runs, warmup: *warmup, ntables: *ntables}
	if *runs < 1 || *warmup < 0 {
		return errors.New("-runs must be at least 1 and -warmup at least 0")
	}
	if *dsn == "" && *pg == "" {
		return errors.New("need -mysql DSN (or GAPSYNC_TEST_MYSQL_DSN), -pg URL (or GAPSYNC_TEST_PG_DSN), or both")
	}
	var todo []benchCase
	for _, name := range strings.Split(*caseList, ",") {
		i := slices.IndexFunc(cases, func(c benchCase) bool { return c.name == strings.TrimSpace(name) })
		if i < 0 {
			return fmt.Errorf("-cases: no case %q", name)
		}
		if cases[i].needsMySQL && *dsn == "" {
			return fmt.Errorf("the %s case needs -mysql DSN (or GAPSYNC_TEST_MYSQL_DSN)", cases[i].name)
		}
		todo = append(todo, cases[i])
	}
	for _, d := range strings.Split(*dirs, ",") {
		switch d := gapsync.Direction(strings.TrimSpace(d)); d {
		case gapsync.Push, gapsync.Pull:
			b.directions = append(b.directions, d)
		default:
			return fmt.Errorf("-directions: %q is neither push nor pull", d)
		}
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := parseSize(s)
		if err != nil {
			return fmt.Errorf("-size: %w", err)
		}
		b.sizes = append(b.sizes, n)
	}
	for _, s := range strings.Split(*growth, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-growth: %q is not a number of rows", s)
		}
		b.growth = append(b.growth, n)
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
	if *dsn != "" {
		if err := describeServer(*dsn); err != nil {
			return err
		}
		b.maria = mysqlEngine(*dsn)
		b.engines = append(b.engines, b.maria)
	}
	if *pg != "" {
		if err := describePG(*pg); err != nil {
			return err
		}
		b.engines = append(b.engines, pgEngine(*pg))
	}
	defer cleanup()
	// Interrupted, the bench still drops its databases.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench: interrupted; dropping the bench's databases")
		cleanup()
		os.Exit(1)
	}()
	if b.bin, err = os.MkdirTemp("", "gapsync-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.bin)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		profile = f
	}
	for _, c := range todo {
		start := time.Now()
		if err := c.run(ctx, b); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: case %s took %.0f s\n", c.name, time.Since(start).Seconds())
	}
	return nil
}

// mains builds the three zone mains into b.bin, once, and returns the
// directory.
func (b *bench) mains() (string, error) {
	if b.built {
		return b.bin, nil
	}
	fmt.Fprintln(os.Stderr, "bench: building the zone mains")
	build := exec.Command("go", "build", "-o", b.bin+"/", "./examples/internet", "./examples/external", "./examples/intranet")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build the mains (run from the module root): %w", err)
	}
	b.built = true
	return b.bin, nil
}

func rowsCases(ctx context.Context, b *bench) error {
	for _, e := range b.engines {
		for _, d := range b.directions {
			if err := rowsReport(ctx, e, d, b.nrows, b.warmup, b.runs); err != nil {
				return fmt.Errorf("%s %s: %w", e.name, d, err)
			}
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
	createdMu.Lock()
	created[admin+"\x00DROP DATABASE IF EXISTS `"+name+"`"] = true
	createdMu.Unlock()
	cfg.DBName = name
	return cfg.FormatDSN(), nil
}

// runName is name with this process's id.
func runName(name string) string { return name + "_" + strconv.Itoa(os.Getpid()) }

// created holds, for each database fresh made, the admin DSN and the
// statement that drops it.
var (
	createdMu sync.Mutex
	created   = map[string]bool{}
)

// cleanup drops the databases the bench created.
func cleanup() {
	createdMu.Lock()
	defer createdMu.Unlock()
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
// settleWait for the dirty pages to fall to 1% of the pool, and puts the
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
	for deadline := time.Now().Add(settleWait); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
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
	if !quickRun {
		fmt.Fprintf(os.Stderr, "bench: InnoDB still flushing after %v; measuring anyway\n", settleWait)
	}
	return nil
}

// settleWait is how long settle waits; quickRun is -quick, which waits
// only a little: its figures are a check, not a measurement.
var (
	settleWait = time.Minute
	quickRun   bool
)

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
