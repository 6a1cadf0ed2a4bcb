package storeurl_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/storage/storeurl"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// TestFileFlowPublishesObjectsOtherToolsRead: a file that crosses from the
// internet zone and is published by the intranet worker to S3 (gofakes3)
// carries its Content-Type and its checksums: rclone's md5chksum and
// gapsync's MD5 and SHA-256.
func TestFileFlowPublishesObjectsOtherToolsRead(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	f := newFake(t)
	dir := t.TempDir()
	docs := gapsync.Table{Name: "docs", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at",
		FileColumns: []string{"path"}, Enabled: true}
	open := func(name string) *storage.DB {
		db, err := storage.OpenSQLite(filepath.Join(dir, name+".db"), &storage.Options{Lag: time.Millisecond})
		is.NoErr(err)
		t.Cleanup(func() { db.Close() })
		is.NoErr(db.Migrate(ctx))
		_, err = db.Bun().ExecContext(ctx, "CREATE TABLE docs (id INTEGER PRIMARY KEY, path TEXT, updated_at DATETIME)")
		is.NoErr(err)
		is.NoErr(db.Configure(ctx, docs))
		return db
	}
	internet, intranet := open("internet"), open("intranet")
	inetDir := filepath.Join(dir, "files")
	is.NoErr(os.MkdirAll(filepath.Join(inetDir, "2026"), 0o755))
	body := []byte("%PDF-1.7 annual report 年报\n")
	is.NoErr(os.WriteFile(filepath.Join(inetDir, "2026", "年报.pdf"), body, 0o644))
	_, err := internet.Bun().ExecContext(ctx, "INSERT INTO docs VALUES (1, '2026/年报.pdf', '2026-01-01 08:00:00')")
	is.NoErr(err)

	inetStore, err := localstore.New(inetDir, nil)
	is.NoErr(err)
	defer inetStore.Close()
	key, _ := crypto.GenerateKey("k1")
	keys, _ := crypto.NewKeyring(key)
	gw, err := syncer.NewGateway(intranet, keys, nil)
	is.NoErr(err)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	client, err := transport.NewClient(srv.URL, keys, nil)
	is.NoErr(err)
	coord, err := syncer.NewCoordinator(internet, client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{Store: inetStore}})
	is.NoErr(err)
	_, err = coord.RunOnce(ctx)
	is.NoErr(err)

	pub, err := storeurl.Open(ctx, "s3://pub/platform/?path_style=1&endpoint="+url.QueryEscape(f.url))
	is.NoErr(err)
	worker, err := syncer.NewIntranetWorker(intranet, &syncer.WorkerOptions{Files: syncer.FileOptions{Store: pub}})
	is.NoErr(err)
	r, err := worker.RunOnce(ctx)
	is.NoErr(err)
	is.Equal(r.Published, 1)

	out, err := f.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("pub"), Key: aws.String("platform/from-internet/2026/年报.pdf")})
	is.NoErr(err)
	m, sh := md5.Sum(body), sha256.Sum256(body)
	is.Equal(aws.ToString(out.ContentType), "application/pdf")
	is.Equal(out.Metadata["md5chksum"], base64.StdEncoding.EncodeToString(m[:]))
	is.Equal(out.Metadata["gapsync-md5"], hex.EncodeToString(m[:]))
	is.Equal(out.Metadata["gapsync-sha256"], hex.EncodeToString(sh[:]))
}
