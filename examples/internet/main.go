// Command internet is the internet zone's main: the coordinator. It reads
// changed rows of the tables enabled in the internet database's
// sync_config, sends them sealed to the external-zone gateway, and keeps
// the sync log. Copy it into your project and adapt.
//
//	GAPSYNC_KEYS=k2026:BASE64... internet -db 'user:pass@tcp(db:3306)/app' -gateway https://gw:8443
//
// Every flag may also come from the environment: -strip-prefix from
// GAPSYNC_STRIP_PREFIX, and so on (-help lists them); -db also from
// GAPSYNC_INTERNET_DB and -gateway from GAPSYNC_GATEWAY_URL. GAPSYNC_KEYS
// holds "id:base64[,id:base64…]"; the first key seals, all keys open.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/service"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/throttle"
	"github.com/gapsync/gapsync/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "internet:", err)
		if errors.Is(err, errProblems) {
			os.Exit(2)
		}
		if errors.Is(err, service.ErrDiffer) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dsn := flag.String("db", os.Getenv("GAPSYNC_INTERNET_DB"), "internet database: a MySQL DSN (user:password@tcp(host:3306)/app), postgres://user:password@host:5432/app, or sqlite:PATH")
	gateway := flag.String("gateway", os.Getenv("GAPSYNC_GATEWAY_URL"), "base URL of the external-zone gateway")
	interval := flag.Duration("interval", time.Minute, "pause between cycles")
	once := flag.Bool("once", false, "run one cycle and exit: 0 when every table moved (references refused by design are logged, not failures), 1 otherwise")
	leaseWait := flag.Duration("lease-wait", 2*time.Minute, "with -once, -verify or -reload: how long to wait for a lease another coordinator holds (one killed without releasing it holds it for a minute)")
	lag := flag.Duration("lag", 2*time.Second, "keep each window this far behind the database clock")
	leaseTTL := flag.Duration("lease-ttl", time.Minute, "how long the coordinator lease lasts unless renewed; a killed coordinator blocks the next one this long")
	inFlight := flag.Int("in-flight", 3, "batches of one table on their way at once; a run cut in a long window reads at most this many applied pages again")
	var tables []gapsync.Table
	flag.Func("table", "enable NAME:KEY[+KEY…]:CURSOR[:DIRECTION[:FILECOL[+FILECOL…]]] in sync_config before starting (repeatable)", func(s string) error {
		t, err := gapsync.ParseTable(s)
		tables = append(tables, t)
		return err
	})
	var selection service.SelectionFlags
	selection.Register(flag.CommandLine)
	var renames service.RenameFlags
	renames.Register(flag.CommandLine)
	var files service.FileFlags
	files.Store = os.Getenv("GAPSYNC_INTERNET_STORE")
	files.Register(flag.CommandLine, "internet file store")
	var device service.DeviceFlags // sizes -chunk-size to the isolation device; this zone's database is not behind it
	device.Register(flag.CommandLine)
	tombstones := flag.Bool("tombstones", false, "install the delete triggers and tombstone tables for every -table (needs the TRIGGER privilege)")
	var verify service.VerifyFlag
	flag.Var(&verify, "verify", "compare every enabled table (or -verify orders,docs) with the intranet's through the gateway, by range hashes;\nprint each row that differs and a summary, keep the result in sync_verify, and exit (0: the same, 3: they differ);\nit holds the coordinator lease as a cycle does, and is refused while a running coordinator holds it")
	repair := flag.Bool("repair", false, "with -verify: send the rows that differ again by each table's direction, delete extra rows where deletions travel,\nleave rows changed since alone, log every repair, then verify again (0 only when the tables then match)")
	verifyRate := flag.Int("verify-rows-per-second", 0, "with -verify and -verify-every: read at most this many rows a second on each side (0: no limit)")
	logRetention := flag.Duration("log-retention", 180*24*time.Hour, "keep sync_log entries this long once a newer good run follows them (pruned hourly between cycles;\nthe newest good window of every table is always kept); negative: keep every entry")
	verifyEvery := flag.Duration("verify-every", 0, "verify every enabled table this often (e.g. 24h) between cycles, under the lease, one -interval at a time;\nresults in sync_verify, -status and the metrics (0: never)")
	check := flag.Bool("check", false, "compare both sides' sync tables through the gateway, print every problem with its fix, and exit (0: clean, 2: problems)")
	var act admin
	flag.StringVar(&act.disable, "disable", "", "set enabled=0 for table `NAME` in this side's sync_config, and exit")
	flag.StringVar(&act.remove, "remove", "", "delete table `NAME` from this side's sync_config, and exit")
	flag.StringVar(&act.resume, "resume", "", "resume the parked table `NAME` (after fixing what its rows were refused for), and exit")
	flag.BoolVar(&act.parked, "parked", false, "list the parked tables with their reasons, and exit")
	flag.BoolVar(&act.status, "status", false, "print per table and direction the last good window and its age, the last run, rows pending,\nwhether parked, conflicts of the last day, and the files by status and failure reason; and exit")
	flag.StringVar(&act.reload, "reload", "", "send table `NAME` (or NAME:push, NAME:pull) again from its first row at the next cycle, keeping\nits sync_log history (an entry with status reload records it), and exit")
	dryRun := flag.Bool("dry-run", false, "count what one cycle would move now, per table and direction (rows, bytes, files), writing nothing\non either side, and exit")
	flag.BoolVar(&act.json, "json", false, "with -status or -dry-run: print JSON")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics and health at /healthz and /readyz, e.g. 127.0.0.1:9441 (empty: off)")
	caFile := flag.String("ca", "", "certificate authority file (PEM) that signed the gateway's certificate (empty: the system's authorities)")
	certFile := flag.String("cert", "", "client certificate file (PEM) to show the gateway, when it requires one (-client-ca there)")
	keyFile := flag.String("key", "", "private key file (PEM) of -cert; certificates reload on SIGHUP and when the files change")
	var logFlags service.LogFlags
	logFlags.Register(flag.CommandLine)
	var limits service.ThrottleFlags
	limits.Register(flag.CommandLine)
	maxRequest := service.Bytes(transport.DefaultMaxBody)
	flag.Var(&maxRequest, "max-request", "largest sealed request sent to the gateway; keep it equal to the gateway's -max-body (pages and chunk batches must fit in 7/8 of it)")
	memLimit := service.Bytes(96 << 20)
	flag.Var(&memLimit, "mem-limit", "soft memory limit of the Go runtime (0: none; GOMEMLIMIT, when set, wins)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "internet: the internet zone's coordinator. Every cycle it pulls the intranet's changed rows through\n"+
			"the external-zone gateway, pushes this database's changed rows to it, moves the files their rows\n"+
			"reference, and keeps the sync log. GAPSYNC_KEYS holds the shared keyring (id:base64[,id:base64…]).")
		flag.PrintDefaults()
		fmt.Fprint(flag.CommandLine.Output(), service.EnvHelp(flag.CommandLine, "GAPSYNC_"))
	}
	pwFile := flag.String("db-password-file", "", "file whose content is the database password, put into the -db DSN (keeps the secret out of flags and config)")
	keygen := flag.Bool("keygen", false, "print a new key in the form GAPSYNC_KEYS takes (id:base64, named after today's date), and exit")
	keyCipher := flag.String("cipher", "aes", "with -keygen: the new key's cipher, aes (AES-256-GCM) or sm4 (SM4-GCM, id:sm4:base64); a running main takes each key's cipher from GAPSYNC_KEYS")
	if err := service.Load(flag.CommandLine, os.Args[1:], "GAPSYNC_", append(append([]string{"table", "table-limit"}, service.SelectionNames...), service.RenameNames...)...); err != nil {
		return err
	}
	if err := files.FitDevice(flag.CommandLine, &device); err != nil {
		return err
	}
	if *keygen {
		k, err := crypto.NewCipherKeyText(*keyCipher, "", "")
		if err == nil {
			fmt.Println(k)
		}
		return err
	}
	tables, err := selection.Apply(tables)
	if err == nil {
		tables, err = renames.Apply(tables)
	}
	if err != nil {
		return err
	}
	if *dsn, err = service.WithPasswordFile(*dsn, *pwFile); err != nil {
		return err
	}
	service.SetMemoryLimit(int64(memLimit))
	if *dsn == "" || (*gateway == "" && !act.any()) {
		return errors.New("need -db and -gateway (or GAPSYNC_DB and GAPSYNC_GATEWAY)")
	}
	log, err := logFlags.Logger(os.Stderr, "internet")
	if err != nil {
		return err
	}

	db, err := service.OpenDB(ctx, log, *dsn, &storage.Options{Logger: log, Lag: *lag}, tables, *tombstones)
	if err != nil {
		return err
	}
	defer db.Close()
	if act.any() {
		act.leaseWait = *leaseWait
		return act.run(ctx, db)
	}
	ring, err := service.Secret("GAPSYNC_KEYS")
	if err != nil {
		return err
	}
	keys, err := crypto.ParseKeyring(ring)
	if err != nil {
		return fmt.Errorf("GAPSYNC_KEYS: %w", err)
	}
	copts := &transport.ClientOptions{Logger: log, MaxRequest: int64(maxRequest)}
	if tf := (&service.TLSFiles{Cert: *certFile, Key: *keyFile, CA: *caFile, Log: log}); tf.Enabled() {
		if !strings.HasPrefix(*gateway, "https://") {
			return fmt.Errorf("-ca, -cert and -key need an https:// -gateway, not %q", *gateway)
		}
		if err := tf.Load(); err != nil {
			return err
		}
		go tf.Watch(ctx, 0)
		copts.HTTPClient = tf.HTTPClient()
	} else {
		signal.Ignore(syscall.SIGHUP) // systemctl reload: nothing to read again
	}
	client, err := transport.NewClient(*gateway, keys, copts)
	if err != nil {
		return err
	}
	defer client.Close()
	rec := service.Observe(ctx, *metricsAddr, log, 3**interval+2*time.Minute, map[string]func(context.Context) error{
		"database": func(ctx context.Context) error { return db.Bun().PingContext(ctx) },
	})
	service.ExportStatus(rec, db, *lag, log) // per-table lag, rows and files pending, read at scrape time
	vopts := &syncer.VerifyOptions{RowsPerSecond: *verifyRate}
	opts := &syncer.CoordinatorOptions{Logger: log, Interval: *interval, LeaseTTL: *leaseTTL, InFlight: *inFlight, Metrics: rec,
		VerifyEvery: *verifyEvery, Verify: vopts, LogRetention: *logRetention}
	if opts.Throttle, err = limits.Throttler(map[string]throttle.Probe{"internet": db}, rec, log); err != nil {
		return err
	}
	if *once || verify.On {
		opts.LeaseWait = *leaseWait
	}
	if opts.Files, err = files.Options(ctx); err != nil {
		return err
	}
	if opts.Files != nil {
		opts.Files.Progress = service.Progress(os.Stderr, log, "internet", 10*time.Second) // a bar on a terminal, log lines otherwise
	}
	coord, err := syncer.NewCoordinator(db, client, opts)
	if err != nil {
		return err
	}
	if verify.TakeArgs(flag.Args()); verify.On {
		return service.Verify(ctx, os.Stdout, coord, verify.Tables, *repair, vopts)
	}
	if *dryRun {
		p, err := coord.DryRun(ctx)
		if err != nil {
			return err
		}
		return service.WritePlan(os.Stdout, p, act.json)
	}
	problems, err := coord.Check(ctx)
	if *check {
		if err != nil {
			return err
		}
		for _, p := range problems {
			fmt.Println(p)
		}
		if problems.Errors() > 0 {
			return fmt.Errorf("%w: %d errors, %d warnings", errProblems, problems.Errors(), len(problems)-problems.Errors())
		}
		fmt.Printf("internet: setup check clean (%d warnings)\n", len(problems))
		return nil
	}
	if err != nil {
		log.Warn("setup check did not run", "err", err)
	}
	for _, p := range problems {
		log.Warn("setup problem", "table", p.Table, "side", p.Side, "warning", p.Warning, "problem", p.What, "fix", p.Fix)
	}
	if *once {
		r, err := coord.RunOnce(ctx)
		if r != nil {
			log.Info("cycle done", "run", r.RunID, "rows_pushed", r.Rows(gapsync.Push), "rows_pulled", r.Rows(gapsync.Pull),
				"conflicts", r.Conflicts(), "tables", len(r.Tables), "files_sent", r.Files.Sent, "files_received", r.Files.Received,
				"file_bytes", r.Files.Bytes, "refs_refused", len(r.Refused), "parked", len(r.Parked))
		}
		return err
	}
	return coord.Run(ctx)
}

// errProblems marks a -check that found problems (exit status 2).
var errProblems = errors.New("the setup check found problems")

// admin holds the actions that only touch the internet database.
type admin struct {
	disable, remove, resume, reload string
	parked, status, json            bool
	leaseWait                       time.Duration
}

func (a admin) any() bool {
	return a.disable != "" || a.remove != "" || a.resume != "" || a.reload != "" || a.parked || a.status
}

// run runs the actions asked for, in the order of the help text.
func (a admin) run(ctx context.Context, db *storage.DB) error {
	if a.disable != "" {
		if err := db.Disable(ctx, a.disable); err != nil {
			return err
		}
		fmt.Printf("internet: %s disabled\n", a.disable)
	}
	if a.remove != "" {
		if err := db.Remove(ctx, a.remove); err != nil {
			return err
		}
		fmt.Printf("internet: %s removed from sync_config\n", a.remove)
	}
	if a.resume != "" {
		n, err := db.Resume(ctx, a.resume)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%s is not parked", a.resume)
		}
		fmt.Printf("internet: %s resumed; the next cycle syncs it from where it stopped\n", a.resume)
	}
	if a.reload != "" {
		name, dir, _ := strings.Cut(a.reload, ":")
		var dirs []gapsync.Direction
		if dir != "" {
			dirs = append(dirs, gapsync.Direction(dir))
		}
		done, err := db.Reload(ctx, name, "coordinator", a.leaseWait, dirs...)
		if err != nil {
			return err
		}
		fmt.Printf("internet: %s reloaded (%v); the next cycle sends it again from its first row\n", name, done)
	}
	if a.parked {
		ps, err := db.Parked(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			fmt.Printf("%s\t%s\tsince %s\t%s\n", p.Table, p.Direction, p.Since.Format(time.RFC3339), p.Reason)
		}
		fmt.Printf("internet: %d parked\n", len(ps))
	}
	if a.status {
		st, err := db.Status(ctx)
		if err != nil {
			return err
		}
		return service.WriteStatus(os.Stdout, st, a.json)
	}
	return nil
}
