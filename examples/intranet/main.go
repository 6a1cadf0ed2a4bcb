// Command intranet is the intranet zone's main: the scheduled worker. It
// prepares the intranet database (sync metadata tables, -table entries in
// its sync_config, -tombstones delete triggers) and, with -store, runs the
// file worker: it reads the bytes of intranet files that outgoing rows
// reference into the database as chunks, and publishes files that came
// from the internet to the intranet object store after verifying them.
// It talks to nothing but the intranet database and store.
//
//	intranet -db 'user:pass@tcp(db:3306)/app' -table demo:id:updated_at:both -tombstones \
//	    -store s3://platform/gapsync/?endpoint=http://objects.intra:9000 -interval 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/storeurl"
	"github.com/gapsync/gapsync/syncer"
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
	dsn := flag.String("db", os.Getenv("GAPSYNC_INTRANET_DB"), "intranet database: a MySQL DSN, or sqlite:PATH")
	var tables []string
	flag.Func("table", "enable NAME:KEY[+KEY…]:CURSOR[:DIRECTION] in sync_config (repeatable; direction push, pull or both; default push)", func(s string) error {
		tables = append(tables, s)
		return nil
	})
	store := flag.String("store", os.Getenv("GAPSYNC_INTRANET_STORE"), "intranet file store: dir:PATH or s3://BUCKET/PREFIX (empty: prepare the database and exit)")
	interval := flag.Duration("interval", 30*time.Second, "pause between worker runs")
	once := flag.Bool("once", false, "run the worker once and exit")
	tombstones := flag.Bool("tombstones", false, "install the delete triggers and tombstone tables for every -table (needs the TRIGGER privilege)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "intranet: prepares the intranet database for gapsync (metadata tables, sync_config rows,\n"+
			"delete triggers) and, with -store, runs the intranet file worker. Rows travel through the\n"+
			"external-zone gateway; this command only ever touches the intranet database and store.")
		flag.PrintDefaults()
	}
	metricsAddr := flag.String("metrics", os.Getenv("GAPSYNC_METRICS"), "serve Prometheus counters at http://ADDR/metrics, e.g. 127.0.0.1:9443 (empty: off)")
	memLimit := flag.Int64("mem-limit", 96<<20, "soft memory limit in bytes for the Go runtime (0: none); the garbage collector works harder near it")
	flag.Parse()
	if *memLimit > 0 {
		debug.SetMemoryLimit(*memLimit)
	}
	if *dsn == "" {
		return errors.New("need -db (or GAPSYNC_INTRANET_DB)")
	}
	db, err := storage.Open(*dsn, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	for _, spec := range tables {
		t, err := gapsync.ParseTable(spec)
		if err != nil {
			return err
		}
		if err := db.Configure(ctx, t); err != nil {
			return err
		}
		if *tombstones {
			if err := db.InstallTombstones(ctx, t); err != nil {
				return err
			}
		}
		fmt.Printf("intranet: %s enabled for %s\n", t.Name, t.Direction)
	}
	fmt.Println("intranet: metadata tables ready")
	if *store == "" {
		return nil
	}
	st, err := storeurl.Open(ctx, *store)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("zone", "intranet")
	w, err := syncer.NewIntranetWorker(db, &syncer.WorkerOptions{Logger: log, Interval: *interval, Files: syncer.FileOptions{Store: st},
		Metrics: metrics.Start(ctx, *metricsAddr, log)})
	if err != nil {
		return err
	}
	if *once {
		r, err := w.RunOnce(ctx)
		log.Info("worker run", "staged", r.Staged, "published", r.Published, "waiting", r.Waiting)
		return err
	}
	err = w.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
