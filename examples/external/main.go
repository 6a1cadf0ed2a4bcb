// Command external is the external zone's main: the gateway that the
// internet coordinator calls over HTTP(S). It reaches the intranet
// database only, through the isolation device, and keeps no state of its
// own outside it. Copy it into your project and adapt; put TLS in front or
// pass -tls-cert and -tls-key.
//
//	GAPSYNC_KEYS=k2026:BASE64... external -listen :8443 -db 'user:pass@tcp(isolation-gw:3306)/app'
//
// Flags may also come from the environment: GAPSYNC_INTRANET_DB,
// GAPSYNC_LISTEN.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "external:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	listen := flag.String("listen", envOr("GAPSYNC_LISTEN", "127.0.0.1:8440"), "address to serve the gateway on")
	dsn := flag.String("db", os.Getenv("GAPSYNC_INTRANET_DB"), "intranet database through the isolation device: a MySQL DSN, or sqlite:PATH")
	maxBody := flag.Int64("max-body", transport.DefaultMaxBody, "largest request body accepted, in bytes (keep it at the coordinator's ClientOptions.MaxRequest)")
	maxConc := flag.Int("max-concurrent", transport.DefaultMaxConcurrent, "requests served at once; past it: 503 with Retry-After")
	inFlight := flag.Int64("max-in-flight", transport.DefaultMaxInFlightBytes, "request body bytes held at once (bodies of 64 KiB or less do not count); past it: 503")
	minRate := flag.Int64("min-body-rate", transport.DefaultMinBodyRate, "slowest a request body may arrive after -body-grace, in bytes/s (negative: off)")
	grace := flag.Duration("body-grace", transport.DefaultBodyGrace, "time a body may take before -min-body-rate applies, and the longest it may stall")
	readTimeout := flag.Duration("read-timeout", transport.DefaultReadTimeout, "longest a request body may take")
	headerTimeout := flag.Duration("header-timeout", transport.DefaultReadHeaderTimeout, "longest the TLS handshake and request headers may take")
	writeTimeout := flag.Duration("write-timeout", transport.DefaultWriteTimeout, "longest writing an answer may take")
	idleTimeout := flag.Duration("idle-timeout", transport.DefaultIdleTimeout, "close a keep-alive connection idle this long")
	maxStmt := flag.Int("max-statement", 4<<20, "largest upsert statement sent through the isolation device, in bytes")
	lag := flag.Duration("lag", 2*time.Second, "keep each pull window this far behind the intranet database clock")
	cert := flag.String("tls-cert", "", "TLS certificate file (serve HTTPS)")
	key := flag.String("tls-key", "", "TLS key file")
	metricsAddr := flag.String("metrics", os.Getenv("GAPSYNC_METRICS"), "serve Prometheus counters at http://ADDR/metrics, e.g. 127.0.0.1:9442 (empty: off)")
	memLimit := flag.Int64("mem-limit", 96<<20, "soft memory limit in bytes for the Go runtime (0: none); the garbage collector works harder near it")
	flag.Parse()
	if *memLimit > 0 {
		debug.SetMemoryLimit(*memLimit)
	}
	if *dsn == "" {
		return errors.New("need -db (or GAPSYNC_INTRANET_DB)")
	}
	keys, err := crypto.ParseKeyring(os.Getenv("GAPSYNC_KEYS"))
	if err != nil {
		return fmt.Errorf("GAPSYNC_KEYS: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("zone", "external")

	db, err := storage.Open(*dsn, &storage.Options{Logger: log, MaxStatementBytes: *maxStmt, Lag: *lag})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	limits := &transport.ServerOptions{
		MaxBody: *maxBody, MaxConcurrent: *maxConc, MaxInFlightBytes: *inFlight, MinBodyRate: *minRate, BodyGrace: *grace,
		ReadHeaderTimeout: *headerTimeout, ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout,
		Logger: log,
	}
	gw, err := syncer.NewGateway(db, keys, &syncer.GatewayOptions{Logger: log, Server: limits, Metrics: metrics.Start(ctx, *metricsAddr, log)})
	if err != nil {
		return err
	}
	srv := transport.NewHTTPServer(*listen, gw, limits)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("gateway listening", "addr", *listen, "tls", *cert != "")
	if *cert != "" {
		err = srv.ListenAndServeTLS(*cert, *key)
	} else {
		err = srv.ListenAndServe()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
