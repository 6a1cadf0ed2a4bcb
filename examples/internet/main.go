// Command internet is the internet zone's main: the coordinator. It reads
// changed rows of the tables enabled in the internet database's
// sync_config, sends them sealed to the external-zone gateway, and keeps
// the sync log. Copy it into your project and adapt.
//
//	GAPSYNC_KEYS=k2026:BASE64... internet -db 'user:pass@tcp(db:3306)/app' -gateway https://gw:8443
//
// Flags may also come from the environment: GAPSYNC_INTERNET_DB,
// GAPSYNC_GATEWAY_URL. GAPSYNC_KEYS holds "id:base64[,id:base64…]"; the
// first key seals, all keys open.
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
	"strings"
	"syscall"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/storeurl"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "internet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dsn := flag.String("db", os.Getenv("GAPSYNC_INTERNET_DB"), "internet database: a MySQL DSN, or sqlite:PATH")
	gateway := flag.String("gateway", os.Getenv("GAPSYNC_GATEWAY_URL"), "base URL of the external-zone gateway")
	interval := flag.Duration("interval", time.Minute, "pause between cycles")
	once := flag.Bool("once", false, "run one cycle and exit (non-zero if a table failed)")
	lag := flag.Duration("lag", 2*time.Second, "keep each window this far behind the database clock")
	leaseTTL := flag.Duration("lease-ttl", time.Minute, "how long the coordinator lease lasts unless renewed; a killed coordinator blocks the next one this long")
	var tables []gapsync.Table
	flag.Func("table", "enable NAME:KEY[+KEY…]:CURSOR[:DIRECTION] in sync_config before starting (repeatable)", func(s string) error {
		t, err := gapsync.ParseTable(s)
		tables = append(tables, t)
		return err
	})
	store := flag.String("store", os.Getenv("GAPSYNC_INTERNET_STORE"), "internet file store: dir:PATH or s3://BUCKET/PREFIX (empty: rows only)")
	tombstones := flag.Bool("tombstones", false, "install the delete triggers and tombstone tables for every -table (needs the TRIGGER privilege)")
	metricsAddr := flag.String("metrics", os.Getenv("GAPSYNC_METRICS"), "serve Prometheus counters at http://ADDR/metrics, e.g. 127.0.0.1:9441 (empty: off)")
	memLimit := flag.Int64("mem-limit", 96<<20, "soft memory limit in bytes for the Go runtime (0: none); the garbage collector works harder near it")
	flag.Parse()
	if *memLimit > 0 {
		debug.SetMemoryLimit(*memLimit)
	}
	if *dsn == "" || *gateway == "" {
		return errors.New("need -db and -gateway (or GAPSYNC_INTERNET_DB and GAPSYNC_GATEWAY_URL)")
	}
	keys, err := crypto.ParseKeyring(os.Getenv("GAPSYNC_KEYS"))
	if err != nil {
		return fmt.Errorf("GAPSYNC_KEYS: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("zone", "internet")

	db, err := storage.Open(*dsn, &storage.Options{Logger: log, Lag: *lag})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	for _, t := range tables {
		if err := db.Configure(ctx, t); err != nil {
			return err
		}
		if *tombstones {
			if err := db.InstallTombstones(ctx, t); err != nil {
				return err
			}
		}
	}
	client, err := transport.NewClient(*gateway, keys, &transport.ClientOptions{Logger: log})
	if err != nil {
		return err
	}
	defer client.Close()
	opts := &syncer.CoordinatorOptions{Logger: log, Interval: *interval, LeaseTTL: *leaseTTL, Metrics: metrics.Start(ctx, *metricsAddr, log)}
	if *store != "" {
		st, err := storeurl.Open(ctx, *store)
		if err != nil {
			return err
		}
		opts.Files = &syncer.FileOptions{Store: st, Progress: progressBar("internet")}
	}
	coord, err := syncer.NewCoordinator(db, client, opts)
	if err != nil {
		return err
	}
	if *once {
		r, err := coord.RunOnce(ctx)
		if r != nil {
			log.Info("cycle done", "run", r.RunID, "rows_pushed", r.Rows(gapsync.Push), "rows_pulled", r.Rows(gapsync.Pull),
				"conflicts", r.Conflicts(), "tables", len(r.Tables), "files_sent", r.Files.Sent, "files_received", r.Files.Received,
				"file_bytes", r.Files.Bytes)
		}
		return err
	}
	return coord.Run(ctx)
}

// progressBar draws file progress on stderr, at most a few times a second.
func progressBar(zone string) func(gapsync.Progress) {
	var last time.Time
	return func(p gapsync.Progress) {
		if p.BytesTotal == 0 || (time.Since(last) < 200*time.Millisecond && p.BytesDone < p.BytesTotal) {
			return
		}
		last = time.Now()
		const width = 30
		done := int(width * p.BytesDone / p.BytesTotal)
		fmt.Fprintf(os.Stderr, "\r%s %-7s [%s%s] %3d%% %s", zone, p.Step, strings.Repeat("#", done), strings.Repeat(".", width-done),
			100*p.BytesDone/p.BytesTotal, p.File)
		if p.BytesDone >= p.BytesTotal {
			fmt.Fprintln(os.Stderr)
		}
	}
}
