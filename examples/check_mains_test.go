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

// TestMainsCheckDisableResume runs the mains' operator flags as a
// deployment would: -check prints every problem and exits 2, a -table typo
// is disabled with -disable, and the fixed setup checks clean (exit 0).
func TestMainsCheckDisableResume(t *testing.T) {
	is := is.New(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("mains1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	ctx := context.Background()
	exec1 := func(dsn, q string) {
		db, err := storage.OpenMySQL(dsn, nil)
		is.NoErr(err)
		defer db.Close()
		_, err = db.Bun().ExecContext(ctx, q)
		is.NoErr(err)
	}
	exec1(inetDSN, "CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100), updated_at DATETIME(6), KEY (updated_at))")
	exec1(intraDSN, "CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100) CHARACTER SET latin1, updated_at DATETIME(6), KEY (updated_at))")
	run := func(name string, args ...string) (string, int) {
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
	_, code := run("intranet", "-db", intraDSN, "-table", "demo:id:updated_at", "-table", "dmeo:id:updated_at")
	is.Equal(code, 0)
	addr := freeAddr(t)
	startExternal(t, bin, env, addr, intraDSN)
	check := []string{"-check", "-db", inetDSN, "-gateway", "http://" + addr, "-table", "demo:id:updated_at"}
	out, code := run("internet", check...)
	t.Log(out)
	is.Equal(code, 2)
	is.True(strings.Contains(out, "column title is latin1"))
	is.True(strings.Contains(out, "dmeo (internet): enabled on the intranet side but not in the internet's sync_config"))

	out, code = run("intranet", "-db", intraDSN, "-disable", "dmeo")
	is.Equal(code, 0)
	is.True(strings.Contains(out, "dmeo disabled"))
	exec1(intraDSN, "ALTER TABLE demo CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	out, code = run("internet", check...)
	is.Equal(code, 0)
	is.True(strings.Contains(out, "setup check clean"))

	out, code = run("internet", "-db", inetDSN, "-parked")
	is.Equal(code, 0)
	is.True(strings.Contains(out, "0 parked"))
	out, code = run("internet", "-db", inetDSN, "-resume", "demo")
	is.Equal(code, 1)
	is.True(strings.Contains(out, "demo is not parked"))
}
