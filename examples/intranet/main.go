// Command intranet is the intranet zone's main: the scheduled worker. It
// prepares the intranet database (sync metadata tables, -table entries in
// its sync_config, -tombstones delete triggers) and, with -store, runs the
// file worker: it reads the bytes of intranet files that outgoing rows
// reference into the database as chunks, and publishes files that came
// from the internet to the intranet object store after verifying them.
// It talks to nothing but the intranet database and store. Every flag may
// also come from the environment (-help lists the variables).
//
//	intranet -db 'user:pass@tcp(db:3306)/app' -table demo:id:updated_at:both -tombstones \
//	    -store s3://platform/gapsync/?endpoint=http://objects.intra:9000 -interval 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/service"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/throttle"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "intranet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dsn := flag.String("db", os.Getenv("GAPSYNC_INTRANET_DB"), "intranet database: a MySQL DSN (user:password@tcp(host:3306)/app), postgres://user:password@host:5432/app, or sqlite:PATH")
	var tables []string
	flag.Func("table", "enable NAME:KEY[+KEY…]:CURSOR[:DIRECTION[:FILECOL[+FILECOL…]]] in sync_config (repeatable; direction push, pull or both; default push)", func(s string) error {
		tables = append(tables, s)
		return nil
	})
	var selection service.SelectionFlags
	selection.Register(flag.CommandLine)
	var files service.FileFlags
	files.Store = os.Getenv("GAPSYNC_INTRANET_STORE")
	files.Register(flag.CommandLine, "intranet file store (empty: prepare the database and exit)")
	var device service.DeviceFlags // sizes -chunk-size to the isolation device; this zone's database is not behind it
	device.Register(flag.CommandLine)
	interval := flag.Duration("interval", 30*time.Second, "pause between worker runs")
	once := flag.Bool("once", false, "run the worker once and exit: 0 when every file moved (references refused by design are logged, not failures), 1 otherwise")
	tombstones := flag.Bool("tombstones", false, "install the delete triggers and tombstone tables for every -table (needs the TRIGGER privilege)")
	disable := flag.String("disable", "", "set enabled=0 for table `NAME` in the intranet's sync_config, and exit")
	remove := flag.String("remove", "", "delete table `NAME` from the intranet's sync_config, and exit")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics and health at /healthz and /readyz, e.g. 127.0.0.1:9443 (empty: off)")
	var logFlags service.LogFlags
	logFlags.Register(flag.CommandLine)
	var limits service.ThrottleFlags
	limits.RegisterFiles(flag.CommandLine)
	memLimit := service.Bytes(96 << 20)
	flag.Var(&memLimit, "mem-limit", "soft memory limit of the Go runtime (0: none; GOMEMLIMIT, when set, wins)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "intranet: prepares the intranet database for gapsync (metadata tables, sync_config rows,\n"+
			"delete triggers) and, with -store, runs the intranet file worker. Rows travel through the\n"+
			"external-zone gateway; this command only ever touches the intranet database and store.")
		flag.PrintDefaults()
		fmt.Fprint(flag.CommandLine.Output(), service.EnvHelp(flag.CommandLine, "GAPSYNC_"))
	}
	pwFile := flag.String("db-password-file", "", "file whose content is the database password, put into the -db DSN (keeps the secret out of flags and config)")
	keygen := flag.Bool("keygen", false, "print a new key in the form GAPSYNC_KEYS takes (id:base64, named after today's date), and exit")
	keyCipher := flag.String("cipher", "aes", "with -keygen: the new key's cipher, aes (AES-256-GCM) or sm4 (SM4-GCM, id:sm4:base64); a running main takes each key's cipher from GAPSYNC_KEYS")
	if err := service.Load(flag.CommandLine, os.Args[1:], "GAPSYNC_", append([]string{"table"}, service.SelectionNames...)...); err != nil {
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
	var err error
	if *dsn, err = service.WithPasswordFile(*dsn, *pwFile); err != nil {
		return err
	}
	service.SetMemoryLimit(int64(memLimit))
	if *dsn == "" {
		return errors.New("need -db (or GAPSYNC_DB)")
	}
	log, err := logFlags.Logger(os.Stderr, "intranet")
	if err != nil {
		return err
	}
	var parsed []gapsync.Table
	for _, spec := range tables {
		t, err := gapsync.ParseTable(spec)
		if err != nil {
			return err
		}
		parsed = append(parsed, t)
	}
	if parsed, err = selection.Apply(parsed); err != nil {
		return err
	}
	db, err := service.OpenDB(ctx, log, *dsn, &storage.Options{Logger: log}, parsed, *tombstones)
	if err != nil {
		return err
	}
	defer db.Close()
	if *disable != "" || *remove != "" {
		if *disable != "" {
			if err := db.Disable(ctx, *disable); err != nil {
				return err
			}
			fmt.Printf("intranet: %s disabled\n", *disable)
		}
		if *remove != "" {
			if err := db.Remove(ctx, *remove); err != nil {
				return err
			}
			fmt.Printf("intranet: %s removed from sync_config\n", *remove)
		}
		return nil
	}
	for _, t := range parsed {
		fmt.Printf("intranet: %s enabled for %s\n", t.Name, t.Direction)
	}
	fmt.Println("intranet: metadata tables ready")
	fo, err := files.Options(ctx)
	if err != nil || fo == nil {
		return err
	}
	fo.Progress = service.Progress(os.Stderr, log, "intranet", 10*time.Second) // a bar on a terminal, log lines otherwise
	rec := service.Observe(ctx, *metricsAddr, log, 3**interval+2*time.Minute, map[string]func(context.Context) error{
		"database": func(ctx context.Context) error { return db.Bun().PingContext(ctx) },
	})
	th, err := limits.Throttler(map[string]throttle.Probe{"intranet": db}, rec, log)
	if err != nil {
		return err
	}
	w, err := syncer.NewIntranetWorker(db, &syncer.WorkerOptions{Logger: log, Interval: *interval, Files: *fo, Metrics: rec, Throttle: th})
	if err != nil {
		return err
	}
	if *once {
		r, err := w.RunOnce(ctx)
		log.Info("worker run", "staged", r.Staged, "published", r.Published, "waiting", r.Waiting, "refs_refused", len(r.Refused))
		return err
	}
	err = w.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
