package examples_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// TestMainsBehindDMLOnlyDevice runs the mains as a site whose isolation
// device passes plain SELECT, INSERT, UPDATE and DELETE only, in packets
// of 1 MiB: the external main refuses to start on an empty intranet
// database and says what to create by hand, -print-ddl prints it, and once
// it is run the gateway serves a cycle whose file crosses in chunks sized
// to the device; the internet main refuses a -chunk-size the device would
// not pass.
func TestMainsBehindDMLOnlyDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs programs")
	}
	is := is.New(t)
	ctx := context.Background()
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external")
	key, err := crypto.GenerateKey("dev1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode(), "GAPSYNC_DEVICE=dml-only", "GAPSYNC_DEVICE_PACKET=1MiB")
	run := func(name string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := run("external", "-db", intraDSN, "-listen", freeAddr(t))
	is.True(err != nil) // it exits, it does not wait
	is.True(strings.Contains(out, "by hand"))
	is.True(strings.Contains(out, "CREATE TABLE IF NOT EXISTS `sync_config`"))

	ddl, err := run("external", "-db", intraDSN, "-print-ddl")
	is.NoErr(err)
	intra, err := storage.OpenMySQL(intraDSN, nil) // the operator's own session, beside the device
	is.NoErr(err)
	defer intra.Close()
	for _, q := range strings.Split(strings.TrimSpace(ddl), ";\n") {
		_, err := intra.Bun().DB.ExecContext(ctx, strings.TrimSuffix(q, ";"))
		is.NoErr(err) // q
	}
	inet, err := storage.OpenMySQL(inetDSN, nil)
	is.NoErr(err)
	defer inet.Close()
	for _, db := range []*storage.DB{inet, intra} {
		_, err := db.Bun().ExecContext(ctx, "CREATE TABLE docs (id BIGINT PRIMARY KEY, path VARCHAR(300), updated_at DATETIME(6))")
		is.NoErr(err)
	}
	// What the intranet main does when it prepares its database (it is
	// on the intranet's side of the device): the table's sync_config row.
	is.NoErr(intra.Configure(ctx, gapsync.Table{Name: "docs", Key: []string{"id"}, Cursor: "updated_at", Direction: gapsync.Both,
		FileColumns: []string{"path"}, Enabled: true}))

	addr := freeAddr(t)
	external := startExternal(t, bin, env, addr, intraDSN)
	inetStore := t.TempDir()
	report := bytes.Repeat([]byte{0}, 1200<<10) // NUL bytes: each escaped to two in a text statement
	is.NoErr(os.WriteFile(filepath.Join(inetStore, "nul.bin"), report, 0o644))
	_, err = inet.Bun().DB.ExecContext(ctx, "INSERT INTO docs VALUES (1, 'nul.bin', NOW(6))")
	is.NoErr(err)
	time.Sleep(300 * time.Millisecond)
	inetArgs := []string{"-once", "-db", inetDSN, "-gateway", "http://" + addr, "-table", "docs:id:updated_at:both:path", "-lag", "200ms", "-store", "dir:" + inetStore}
	out, err = run("internet", inetArgs...)
	is.NoErr(err)
	if !strings.Contains(out, "files_sent=1") {
		t.Fatalf("cycle:\n%s", out)
	}
	var size, chunks int64
	is.NoErr(intra.Bun().DB.QueryRowContext(ctx, "SELECT chunk_size, chunks FROM file_record WHERE origin = 'internet'").Scan(&size, &chunks))
	is.Equal(size, int64(504<<10)) // -chunk-size followed the device
	is.Equal(chunks, int64(3))
	var stored int64
	is.NoErr(intra.Bun().DB.QueryRowContext(ctx, "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM file_chunk").Scan(&stored))
	is.Equal(stored, int64(len(report)))
	stop(t, external)

	out, err = run("internet", append(inetArgs, "-chunk-size", "1MiB")...)
	is.True(err != nil)
	is.True(strings.Contains(out, "-chunk-size 1MiB is over the 504KiB"))
}
