package examples_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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

	// The killed run keeps the lease for its -lease-ttl; the next one
	// waits for it (-lease-wait) instead of being refused.
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

// TestMainsVerifyResumesAfterKill kills internet -verify with SIGKILL in
// the middle of a table of 200,000 rows (paced so that it is still at
// work), then runs it again: the second run continues from the last range
// the first one kept, and prints the same report as a run in one go,
// the row found before the kill included, each differing row kept once.
// The lease the killed run kept is waited for, not a refusal.
func TestMainsVerifyResumesAfterKill(t *testing.T) {
	is := is.New(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("mains4")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	ctx := context.Background()
	var dbs []*storage.DB
	for _, dsn := range []string{inetDSN, intraDSN} {
		db, err := storage.OpenMySQL(dsn, nil)
		is.NoErr(err)
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	inet, intra := dbs[0], dbs[1]
	exec1 := func(db *storage.DB, q string) {
		t.Helper()
		_, err := db.Bun().ExecContext(ctx, q)
		is.NoErr(err)
	}
	const n = 200_000
	for _, db := range dbs { // the same rows on both sides, as a sync leaves them
		exec1(db, "CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100), price DECIMAL(10,2), updated_at DATETIME(6), KEY (updated_at))")
		exec1(db, fmt.Sprintf("INSERT INTO demo SELECT seq, CONCAT('t', seq), seq + 0.25, '2026-01-01 00:00:00' FROM seq_1_to_%d", n))
	}
	exec1(intra, "DELETE FROM demo WHERE id = 17")                       // found before the kill
	exec1(intra, "UPDATE demo SET price = 1.00 WHERE id = 190000")       // found after it
	exec1(intra, "INSERT INTO demo VALUES (900000, 'stray', 1, NOW(6))") // past the end
	run := func(name string, args ...string) (string, int) { return runMain(t, bin, env, name, args...) }
	_, code := run("intranet", "-db", intraDSN, "-table", "demo:id:updated_at")
	is.Equal(code, 0)
	addr := freeAddr(t)
	startExternal(t, bin, env, addr, intraDSN)
	inetArgs := []string{"-db", inetDSN, "-gateway", "http://" + addr, "-table", "demo:id:updated_at", "-log-level", "warn"}

	cmd := exec.Command(filepath.Join(bin, "internet"), append(inetArgs, "-verify", "-verify-rows-per-second", "20000", "-lease-ttl", "3s")...)
	cmd.Env = env
	var first bytes.Buffer
	cmd.Stdout, cmd.Stderr = &first, &first
	is.NoErr(cmd.Start())
	var kept int64
	for deadline := time.Now().Add(60 * time.Second); kept < 40_000; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no progress kept after 60 s:\n%s", first.String())
		}
		inet.Bun().QueryRowContext(ctx, "SELECT COALESCE(MAX(rows_compared), 0) FROM sync_verify_progress").Scan(&kept)
	}
	is.NoErr(cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	is.True(!strings.Contains(first.String(), "verify:")) // killed before its end
	is.True(kept < n)
	t.Logf("killed after %d rows were kept", kept)

	want := []string{
		"demo\t17\tmissing on intranet",
		"demo\t190000\tdifferent on intranet\tprice",
		"demo\t900000\textra on intranet",
		fmt.Sprintf("verify: 1 tables, %d rows compared, 3 differ", n+1),
	}
	report := func(out string) []string {
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if strings.HasPrefix(l, "demo\t") && !strings.Contains(l, "continued after") || strings.HasPrefix(l, "verify:") {
				lines = append(lines, l)
			}
		}
		return lines
	}
	// The killed run keeps the lease for its -lease-ttl; the next one
	// waits for it (-lease-wait) instead of being refused.
	out, code := run("internet", append(inetArgs, "-verify")...)
	t.Log(out)
	is.Equal(code, 3)
	is.True(strings.Contains(out, "demo\tcontinued after "))
	is.Equal(report(out), want)
	var diffs int
	is.NoErr(inet.Bun().QueryRowContext(ctx, "SELECT COUNT(*) FROM sync_verify WHERE kind <> 'table'").Scan(&diffs))
	is.Equal(diffs, 3) // each once, the one found before the kill too

	out, code = run("internet", append(inetArgs, "-verify")...) // finished: a new run, from the start
	is.Equal(code, 3)
	is.True(!strings.Contains(out, "continued after"))
	is.Equal(report(out), want)

	out, code = run("internet", append(inetArgs, "-status")...)
	is.Equal(code, 0)
	is.True(strings.Contains(out, "VERIFY"))
	is.True(strings.Contains(out, fmt.Sprintf("%d\t3", n+1)) || strings.Contains(out, fmt.Sprintf("%d  3", n+1)))
}
