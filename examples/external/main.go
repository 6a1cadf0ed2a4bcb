// Command external is the external zone's main: the gateway that the
// internet coordinator calls over HTTP(S). It reaches the intranet
// database only, through the isolation device, and keeps no state of its
// own outside it. Copy it into your project and adapt; put TLS in front or
// pass -tls-cert and -tls-key, and -client-ca to require the coordinator's
// client certificate (mutual TLS). Certificates reload on SIGHUP and when
// their files change.
//
//	GAPSYNC_KEYS=k2026:BASE64... external -listen :8443 -db 'user:pass@tcp(isolation-gw:3306)/app'
//
// Behind a device that passes plain statements only, or DML only, or
// packets up to a size, say so (see the README's isolation-device
// profiles); -print-ddl prints the metadata tables to create by hand:
//
//	external -device dml-only -device-packet 1MiB -db '…'
//
// Every flag may also come from the environment (-listen from
// GAPSYNC_LISTEN, and so on; -help lists them) or a -config file; -db
// also from GAPSYNC_INTRANET_DB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "external:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	listen := flag.String("listen", "127.0.0.1:8440", "address to serve the gateway on (it also answers /healthz and /readyz, without details)")
	dsn := flag.String("db", os.Getenv("GAPSYNC_INTRANET_DB"), "intranet database through the isolation device: a MySQL DSN (user:password@tcp(host:3306)/app), postgres://user:password@host:5432/app, or sqlite:PATH")
	maxBody := service.Bytes(transport.DefaultMaxBody)
	flag.Var(&maxBody, "max-body", "largest request body accepted (keep the internet main's -max-request at it)")
	maxConc := flag.Int("max-concurrent", transport.DefaultMaxConcurrent, "requests served at once; past it: 503 with Retry-After")
	inFlight := service.Bytes(transport.DefaultMaxInFlightBytes)
	flag.Var(&inFlight, "max-in-flight", "request body bytes held at once (bodies of 64 KiB or less do not count); past it: 503")
	minRate := flag.Int64("min-body-rate", transport.DefaultMinBodyRate, "slowest a request body may arrive after -body-grace, in bytes per second (negative: off)")
	grace := flag.Duration("body-grace", transport.DefaultBodyGrace, "time a body may take before -min-body-rate applies, and the longest it may stall")
	readTimeout := flag.Duration("read-timeout", transport.DefaultReadTimeout, "longest a request body may take")
	headerTimeout := flag.Duration("header-timeout", transport.DefaultReadHeaderTimeout, "longest the TLS handshake and request headers may take")
	writeTimeout := flag.Duration("write-timeout", transport.DefaultWriteTimeout, "longest writing an answer may take")
	idleTimeout := flag.Duration("idle-timeout", transport.DefaultIdleTimeout, "close a keep-alive connection idle this long")
	var device service.DeviceFlags
	device.Register(flag.CommandLine)
	printDDL := flag.Bool("print-ddl", false, "print the statements that create the metadata tables on the -db database (for a -device that passes no CREATE: run them there by hand), and exit")
	maxStmt := service.Bytes(4 << 20)
	flag.Var(&maxStmt, "max-statement", "largest upsert statement sent through the isolation device")
	lag := flag.Duration("lag", 2*time.Second, "keep each pull window this far behind the intranet database clock")
	cert := flag.String("tls-cert", "", "TLS certificate file (serve HTTPS)")
	key := flag.String("tls-key", "", "TLS key file")
	clientCA := flag.String("client-ca", "", "certificate authority file (PEM): require a client certificate it signed from the coordinator (mutual TLS; needs -tls-cert). Certificates reload on SIGHUP and when the files change")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics at http://ADDR/metrics and health at /healthz and /readyz, e.g. 127.0.0.1:9442 (empty: off; the gateway's own address serves /healthz and /readyz too)")
	var logFlags service.LogFlags
	logFlags.Register(flag.CommandLine)
	var busy service.ThrottleFlags
	busy.RegisterBusy(flag.CommandLine)
	memLimit := service.Bytes(96 << 20)
	flag.Var(&memLimit, "mem-limit", "soft memory limit of the Go runtime (0: none; GOMEMLIMIT, when set, wins)")
	pwFile := flag.String("db-password-file", "", "file whose content is the database password, put into the -db DSN (keeps the secret out of flags and config)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "external: the external zone's gateway. It serves the internet coordinator over sealed HTTP(S) and\n"+
			"reaches the intranet database only, through the isolation device. GAPSYNC_KEYS (or GAPSYNC_KEYS_FILE)\n"+
			"holds the keyring it shares with the internet main.")
		flag.PrintDefaults()
		fmt.Fprint(flag.CommandLine.Output(), service.EnvHelp(flag.CommandLine, "GAPSYNC_"))
	}
	fileDigest := flag.String("file-digest", "", service.DigestHelp)
	keygen := flag.Bool("keygen", false, "print a new key in the form GAPSYNC_KEYS takes (id:base64, named after today's date), and exit")
	keyCipher := flag.String("cipher", "aes", "with -keygen: the new key's cipher, aes (AES-256-GCM) or sm4 (SM4-GCM, id:sm4:base64); a running main takes each key's cipher from GAPSYNC_KEYS")
	if err := service.Load(flag.CommandLine, os.Args[1:], "GAPSYNC_"); err != nil {
		return err
	}
	if *keygen {
		k, err := crypto.NewCipherKeyText(*keyCipher, "", "")
		if err == nil {
			fmt.Println(k)
		}
		return err
	}
	service.SetMemoryLimit(int64(memLimit))
	var err error
	if *dsn, err = service.WithPasswordFile(*dsn, *pwFile); err != nil {
		return err
	}
	if *dsn == "" {
		return errors.New("need -db (or GAPSYNC_DB)")
	}
	ring, err := service.Secret("GAPSYNC_KEYS")
	if err != nil {
		return err
	}
	keys, err := crypto.ParseKeyring(ring)
	if err != nil {
		return fmt.Errorf("GAPSYNC_KEYS: %w", err)
	}
	log, err := logFlags.Logger(os.Stderr, "external")
	if err != nil {
		return err
	}
	tlsFiles := &service.TLSFiles{Cert: *cert, Key: *key, CA: *clientCA, CertFlag: "-tls-cert", KeyFlag: "-tls-key", CAFlag: "-client-ca", Log: log}
	if *clientCA != "" && *cert == "" {
		return errors.New("-client-ca needs -tls-cert and -tls-key: mutual TLS is TLS first")
	}
	if err := tlsFiles.Load(); err != nil {
		return err
	}

	profile, err := device.Profile()
	if err != nil {
		return err
	}
	dbOpts := &storage.Options{Logger: log, MaxStatementBytes: int(maxStmt), Lag: *lag, Device: profile}
	if *printDDL {
		db, err := storage.Open(*dsn, dbOpts)
		if err != nil {
			return err
		}
		defer db.Close()
		for _, q := range db.MigrationDDL() {
			fmt.Printf("%s;\n", q)
		}
		return nil
	}
	db, err := service.OpenDB(ctx, log, *dsn, dbOpts, nil, false)
	if err != nil {
		return err
	}
	log.Info("isolation device", "profile", profile.String())
	defer db.Close()
	ready := map[string]func(context.Context) error{
		"database": func(ctx context.Context) error { return db.Bun().PingContext(ctx) },
	}
	limits := &transport.ServerOptions{
		MaxBody: int64(maxBody), MaxConcurrent: *maxConc, MaxInFlightBytes: int64(inFlight), MinBodyRate: *minRate, BodyGrace: *grace,
		ReadHeaderTimeout: *headerTimeout, ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout,
		Logger: log,
	}
	rec := service.Observe(ctx, *metricsAddr, log, 0, ready)
	th, err := busy.Throttler(map[string]throttle.Probe{"intranet": db}, rec, log)
	if err != nil {
		return err
	}
	gw, err := syncer.NewGateway(db, keys, &syncer.GatewayOptions{Logger: log, Server: limits, FileDigest: *fileDigest,
		Metrics: rec, Throttle: th})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	health := &service.Health{Terse: true} // the internet zone can reach this port: no error text
	for name, fn := range ready {
		health.Check(name, fn)
	}
	health.Mount(mux)
	mux.Handle("/", gw)
	srv := transport.NewHTTPServer(*listen, mux, limits)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("gateway listening", "addr", *listen, "tls", *cert != "", "mutual_tls", *clientCA != "")
	if *cert != "" {
		go tlsFiles.Watch(ctx, 0)
		err = tlsFiles.ServeTLS(srv)
	} else {
		signal.Ignore(syscall.SIGHUP) // systemctl reload: nothing to read again
		err = srv.ListenAndServe()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
