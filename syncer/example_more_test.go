package syncer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// The external zone's gateway is an http.Handler over the intranet
// database (reached through the isolation device). It answers only
// requests sealed with the shared keyring; anything else is refused
// before a handler runs. Mount it next to health endpoints and serve it
// with transport.NewHTTPServer (and TLS; see package service).
func ExampleNewGateway() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gapsync-example-")
	defer os.RemoveAll(dir)
	intranet, err := storage.Open("sqlite:"+filepath.Join(dir, "intranet.db"), nil)
	if err != nil {
		panic(err)
	}
	defer intranet.Close()
	intranet.Migrate(ctx)

	key, _ := crypto.GenerateKey("k2026")
	keys, _ := crypto.NewKeyring(key)
	gw, err := syncer.NewGateway(intranet, keys, &syncer.GatewayOptions{Server: &transport.ServerOptions{MaxBody: 16 << 20}})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", gw)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+transport.PathApply, "application/octet-stream", strings.NewReader("not sealed"))
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 400 Bad Request
}

// The intranet zone's scheduled task publishes the files that arrived as
// chunks in its database to its store and points the rows at them. Here a
// coordinator first pushes a row that references an internet file; the
// worker then publishes it under from-internet/ and rewrites the row.
func ExampleNewIntranetWorker() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gapsync-example-")
	defer os.RemoveAll(dir)
	docs := gapsync.Table{Name: "docs", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at",
		FileColumns: []string{"path"}, Enabled: true}
	open := func(name string) (*storage.DB, *localstore.Store) {
		db, err := storage.OpenSQLite(filepath.Join(dir, name+".db"), &storage.Options{Lag: time.Millisecond})
		if err != nil {
			panic(err)
		}
		db.Migrate(ctx)
		db.Bun().ExecContext(ctx, "CREATE TABLE docs (id INTEGER PRIMARY KEY, path TEXT, updated_at DATETIME)")
		db.Configure(ctx, docs)
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		st, err := localstore.New(filepath.Join(dir, name), nil)
		if err != nil {
			panic(err)
		}
		return db, st
	}
	internet, inetStore := open("internet")
	intranet, intraStore := open("intranet")
	defer internet.Close()
	defer intranet.Close()
	os.WriteFile(filepath.Join(dir, "internet", "年报.pdf"), []byte("%PDF-1.7 annual report"), 0o644)
	internet.Bun().ExecContext(ctx, "INSERT INTO docs VALUES (1, '年报.pdf', '2026-01-01 08:00:00')")

	key, _ := crypto.GenerateKey("k1")
	keys, _ := crypto.NewKeyring(key)
	gw, _ := syncer.NewGateway(intranet, keys, nil)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	client, _ := transport.NewClient(srv.URL, keys, nil)
	coord, _ := syncer.NewCoordinator(internet, client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{Store: inetStore}})
	if _, err := coord.RunOnce(ctx); err != nil {
		panic(err)
	}

	worker, err := syncer.NewIntranetWorker(intranet, &syncer.WorkerOptions{Files: syncer.FileOptions{Store: intraStore}})
	if err != nil {
		panic(err)
	}
	report, err := worker.RunOnce(ctx)
	if err != nil {
		panic(err)
	}
	var path string
	intranet.Bun().QueryRowContext(ctx, "SELECT path FROM docs WHERE id = 1").Scan(&path)
	published, _ := os.ReadFile(filepath.Join(dir, "intranet", path))
	fmt.Println("published", report.Published, "file; the row now says", path, "and it holds", len(published), "bytes")
	// Output: published 1 file; the row now says from-internet/年报.pdf and it holds 22 bytes
}
