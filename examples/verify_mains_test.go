package examples_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// TestMainsVerify runs internet -verify as an operator would: after a
// sync it exits 0; after damage made on the intranet behind sync's back
// (a row deleted, a DECIMAL digit and a BLOB byte changed, a row added)
// it prints exactly those rows, with their kinds and columns, and exits 3.
func TestMainsVerify(t *testing.T) {
	is := is.New(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("mains3")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	ctx := context.Background()
	open := func(dsn string) *storage.DB {
		db, err := storage.OpenMySQL(dsn, nil)
		is.NoErr(err)
		t.Cleanup(func() { db.Close() })
		return db
	}
	inet, intra := open(inetDSN), open(intraDSN)
	exec1 := func(db *storage.DB, q string) {
		t.Helper()
		_, err := db.Bun().ExecContext(ctx, q)
		is.NoErr(err)
	}
	for _, db := range []*storage.DB{inet, intra} {
		exec1(db, "CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100), price DECIMAL(10,2), data BLOB, updated_at DATETIME(6), KEY (updated_at))")
	}
	exec1(inet, "INSERT INTO demo SELECT seq, CONCAT('t', seq), seq + 0.25, UNHEX(LPAD(HEX(seq), 8, '0')), NOW(6) - INTERVAL 1 SECOND FROM seq_1_to_2500")
	run := func(name string, args ...string) (string, int) { return runMain(t, bin, env, name, args...) }
	_, code := run("intranet", "-db", intraDSN, "-table", "demo:id:updated_at")
	is.Equal(code, 0)
	addr := freeAddr(t)
	startExternal(t, bin, env, addr, intraDSN)
	inetArgs := []string{"-db", inetDSN, "-gateway", "http://" + addr, "-table", "demo:id:updated_at", "-lag", "200ms", "-log-level", "warn"}
	_, code = run("internet", append(inetArgs, "-once")...)
	is.Equal(code, 0)

	out, code := run("internet", append(inetArgs, "-verify")...)
	t.Log(out)
	is.Equal(code, 0)
	is.True(strings.Contains(out, "verify: 1 tables, 2500 rows compared, 0 differ"))

	exec1(intra, "DELETE FROM demo WHERE id = 17")
	exec1(intra, "UPDATE demo SET price = 1200.35 WHERE id = 1200")          // was 1200.25
	exec1(intra, "UPDATE demo SET data = UNHEX('000007D1') WHERE id = 2000") // was 000007D0
	exec1(intra, "INSERT INTO demo VALUES (9000, 'stray', 1, NULL, NOW(6))")
	out, code = run("internet", append(inetArgs, "-verify", "demo")...)
	t.Log(out)
	is.Equal(code, 3)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "demo\t") || strings.HasPrefix(l, "verify:") {
			lines = append(lines, l)
		}
	}
	is.Equal(lines, []string{
		"demo\t17\tmissing on intranet",
		"demo\t1200\tdifferent on intranet\tprice",
		"demo\t2000\tdifferent on intranet\tdata",
		"demo\t9000\textra on intranet",
		"verify: 1 tables, 2501 rows compared, 4 differ", // the union of both sides
	})
	var kept int
	is.NoErr(inet.Bun().QueryRowContext(ctx, "SELECT COUNT(*) FROM sync_verify WHERE kind <> 'table'").Scan(&kept))
	is.Equal(kept, 4)

	// Without tombstones on the internet deletions do not travel: the
	// extra row stays, and says why.
	out, code = run("internet", append(inetArgs, "-verify", "-repair")...)
	t.Log(out)
	is.Equal(code, 3)
	is.True(strings.Contains(out, "demo\t1200\trepaired (upsert)"))
	is.True(strings.Contains(out, "demo\t9000\tnot repaired: deletions do not travel"))
	is.True(strings.Contains(out, "after repair: demo\t9000\textra on intranet\nverify: 1 tables, 2501 rows compared, 1 differ"))

	exec1(intra, "DELETE FROM demo WHERE id = 9000")
	exec1(intra, "UPDATE demo SET title = 'x' WHERE id = 5")
	out, code = run("internet", append(inetArgs, "-verify", "-repair", "demo")...)
	t.Log(out)
	is.Equal(code, 0)
	is.True(strings.Contains(out, "after repair: verify: 1 tables, 2500 rows compared, 0 differ"))
}

// runMain runs main name from bin with env and returns its output and
// exit status.
func runMain(t *testing.T, bin string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out), 0
}
