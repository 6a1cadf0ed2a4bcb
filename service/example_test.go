package service_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/gapsync/gapsync/service"
	"github.com/gapsync/gapsync/transport"
)

// Every flag can also come from the environment, one variable per flag;
// the command line wins. Sizes read and print in binary units.
func ExampleEnv() {
	fs := flag.NewFlagSet("internet", flag.ContinueOnError)
	interval := fs.Duration("interval", 0, "pause between cycles")
	maxReq := service.Bytes(16 << 20)
	fs.Var(&maxReq, "max-request", "largest sealed request")
	os.Setenv("GAPSYNC_INTERVAL", "30s")
	os.Setenv("GAPSYNC_MAX_REQUEST", "8MiB")
	defer os.Unsetenv("GAPSYNC_INTERVAL")
	defer os.Unsetenv("GAPSYNC_MAX_REQUEST")

	fs.Parse([]string{"-interval", "2m"}) // given: the environment does not override it
	if err := service.Env(fs, "GAPSYNC_"); err != nil {
		panic(err)
	}
	fmt.Println(*interval, maxReq.String(), int64(maxReq))
	// Output: 2m0s 8MiB 8388608
}

// A database setting is checked before anything connects, with one line
// that names the setting and the form it wants.
func ExampleCheckDSN() {
	fmt.Println(service.CheckDSN("-db", "mysql://app:secret@db:3306/app"))
	fmt.Println(service.CheckDSN("-db", "app:secret@tcp(db:3306)/"))
	fmt.Println(service.CheckDSN("-db", "app:secret@tcp(db:3306)/app?parseTime=true"))
	// Output:
	// -db is a URL (mysql://…), which the MySQL driver does not take: write it as user:password@tcp(host:3306)/database
	// -db names no database: put its name after the slash, user:password@tcp(db:3306)/database
	// <nil>
}

// Mutual TLS between the coordinator and the gateway, with certificates
// that are read again on SIGHUP and when their files change.
func ExampleTLSFiles() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The gateway (external main: -tls-cert, -tls-key, -client-ca).
	gw := &service.TLSFiles{Cert: "/etc/gapsync/gw.crt", Key: "/etc/gapsync/gw.key", CA: "/etc/gapsync/ca.crt",
		CertFlag: "-tls-cert", KeyFlag: "-tls-key", CAFlag: "-client-ca"}
	if err := gw.Load(); err != nil {
		fmt.Println(err) // names the setting and what it wants
		return
	}
	go gw.Watch(ctx, 0)
	srv := transport.NewHTTPServer(":8443", http.NotFoundHandler(), nil) // the syncer.Gateway in a main
	go gw.ServeTLS(srv)

	// The coordinator (internet main: -ca, -cert, -key).
	co := &service.TLSFiles{CA: "/etc/gapsync/ca.crt", Cert: "/etc/gapsync/coord.crt", Key: "/etc/gapsync/coord.key"}
	if err := co.Load(); err != nil {
		fmt.Println(err)
		return
	}
	go co.Watch(ctx, 0)
	_ = &transport.ClientOptions{HTTPClient: co.HTTPClient()} // for transport.NewClient
}
