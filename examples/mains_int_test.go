package examples_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// TestZoneMainsIntegerTombstones runs the three zone mains as processes on
// a table whose cursor is a BIGINT version, with -tombstones: hard deletes
// on each side travel to the other, and nothing comes back.
func TestZoneMainsIntegerTombstones(t *testing.T) {
	is := is.New(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("mains1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	ctx := context.Background()
	open := func(dsn string) *storage.DB {
		db, err := storage.OpenMySQL(dsn, nil)
		is.NoErr(err)
		t.Cleanup(func() { db.Close() })
		_, err = db.Bun().ExecContext(ctx, "CREATE TABLE ledger (id BIGINT PRIMARY KEY, body VARCHAR(100) NOT NULL, ver BIGINT NOT NULL, KEY (ver))")
		is.NoErr(err)
		return db
	}
	inet, intra := open(inetDSN), open(intraDSN)
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	exec := func(db *storage.DB, q string, args ...any) {
		t.Helper()
		_, err := db.Bun().DB.ExecContext(ctx, q, args...)
		is.NoErr(err)
	}
	rows := func(db *storage.DB) int {
		var n int
		is.NoErr(db.Bun().DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM ledger").Scan(&n))
		return n
	}
	table := "ledger:id:ver:both"
	run("intranet", "-db", intraDSN, "-table", table, "-tombstones")
	addr := freeAddr(t)
	external := startExternal(t, bin, env, addr, intraDSN)
	defer stop(t, external)
	for i := 1; i <= 20; i++ {
		exec(inet, "INSERT INTO ledger VALUES (?, 'internet', ?)", i, i)
	}
	inetArgs := []string{"-once", "-db", inetDSN, "-gateway", "http://" + addr, "-table", table, "-tombstones", "-lag", "200ms"}
	time.Sleep(300 * time.Millisecond)
	out := run("internet", inetArgs...)
	is.True(strings.Contains(out, "rows_pushed=20 rows_pulled=0"))
	is.Equal(rows(intra), 20)

	exec(inet, "DELETE FROM ledger WHERE id IN (20, 5)") // the top version among them
	exec(inet, "INSERT INTO ledger VALUES (21, 'internet new', 21)")
	exec(intra, "DELETE FROM ledger WHERE id IN (3, 4)")
	exec(intra, "UPDATE ledger SET body = 'intranet edit', ver = 22 WHERE id = 1")
	time.Sleep(300 * time.Millisecond)
	out = run("internet", inetArgs...)
	if !strings.Contains(out, "rows_pushed=3 rows_pulled=3") {
		t.Fatalf("second cycle:\n%s", out)
	}
	for _, db := range []*storage.DB{inet, intra} {
		is.Equal(rows(db), 17)
		var body string
		is.NoErr(db.Bun().DB.QueryRowContext(ctx, "SELECT body FROM ledger WHERE id = 1").Scan(&body))
		is.Equal(body, "intranet edit")
	}
	time.Sleep(300 * time.Millisecond)
	out = run("internet", inetArgs...)
	if !strings.Contains(out, "rows_pushed=0 rows_pulled=0") {
		t.Fatalf("quiet cycle:\n%s", out)
	}
}
