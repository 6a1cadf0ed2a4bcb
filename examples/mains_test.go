package examples_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// TestZoneMains builds the three zone mains and runs them as separate
// processes against two MariaDB databases, as a deployment would: the
// intranet main prepares its database, the external main serves the
// gateway, the internet main runs cycles; the gateway is restarted in
// between, and with it the keyring rotates from AES-256-GCM to SM4-GCM
// (the gateway first, then the coordinator), so the second cycle moves
// rows both ways under an SM4 key.
func TestZoneMains(t *testing.T) {
	is := is.New(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("mains1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())

	const ddl = `CREATE TABLE demo (id BIGINT UNSIGNED PRIMARY KEY, title VARCHAR(100) NOT NULL,
		amount DECIMAL(20,6), at TIMESTAMP(6) NULL, data VARBINARY(64), updated_at DATETIME(6) NOT NULL)`
	ctx := context.Background()
	open := func(dsn string) *storage.DB {
		db, err := storage.OpenMySQL(dsn, nil)
		is.NoErr(err)
		t.Cleanup(func() { db.Close() })
		_, err = db.Bun().ExecContext(ctx, ddl)
		is.NoErr(err)
		return db
	}
	inet, intra := open(inetDSN), open(intraDSN)
	for _, db := range []*storage.DB{inet, intra} {
		_, err := db.Bun().ExecContext(ctx, "CREATE TABLE docs (id BIGINT PRIMARY KEY, path VARCHAR(300), updated_at DATETIME(6))")
		is.NoErr(err)
	}
	inetStore, intraStore := t.TempDir(), t.TempDir()
	report := bytes.Repeat([]byte("年度报告 annual report\n"), 100_000) // ~2.6 MiB: several chunks
	is.NoErr(os.MkdirAll(filepath.Join(inetStore, "reports"), 0o755))
	is.NoErr(os.WriteFile(filepath.Join(inetStore, "reports", "2026 年报.txt"), report, 0o644))
	_, err = inet.Bun().DB.ExecContext(ctx, "INSERT INTO docs VALUES (1, 'reports/2026 年报.txt', NOW(6))")
	is.NoErr(err)
	insert := func(from, to int) {
		for i := from; i < to; i++ {
			_, err := inet.Bun().DB.ExecContext(ctx, "INSERT INTO demo VALUES (?, ?, ?, NOW(6), ?, NOW(6))",
				i, "标题 "+strings.Repeat("😀", i%3), "123.456789", []byte{byte(i), 0, 255})
			is.NoErr(err)
		}
	}

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
	out := run("intranet", "-db", intraDSN, "-table", "demo:id:updated_at:both", "-table", "docs:id:updated_at:both:path", "-tombstones")
	is.True(strings.Contains(out, "demo enabled for both"))

	addr, metricsAddr := freeAddr(t), freeAddr(t)
	external := startExternal(t, bin, env, addr, intraDSN, "-metrics", metricsAddr)
	insert(0, 40)
	time.Sleep(300 * time.Millisecond) // past the -lag below
	inetArgs := []string{"-once", "-db", inetDSN, "-gateway", "http://" + addr, "-table", "demo:id:updated_at:both",
		"-table", "docs:id:updated_at:both:path", "-tombstones", "-lag", "200ms", "-store", "dir:" + inetStore}
	out = run("internet", inetArgs...)
	if !strings.Contains(out, "rows_pushed=41 rows_pulled=0") || !strings.Contains(out, "files_sent=1") {
		t.Fatalf("first cycle:\n%s", out)
	}
	// The gateway counted what it served.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	is.NoErr(err)
	scraped, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	is.True(strings.Contains(string(scraped), `gapsync_gateway_requests_total{path="/v1/apply",result="ok"}`))
	is.True(strings.Contains(string(scraped), `gapsync_gateway_requests_total{path="/v1/files/chunks",result="ok"} 1`))

	// The intranet worker publishes the file and points the row at it.
	out = run("intranet", "-db", intraDSN, "-store", "dir:"+intraStore, "-once")
	is.True(strings.Contains(out, "published=1"))
	got, err := os.ReadFile(filepath.Join(intraStore, "from-internet", "reports", "2026 年报.txt"))
	is.NoErr(err)
	is.True(bytes.Equal(got, report))
	var path string
	is.NoErr(intra.Bun().DB.QueryRowContext(ctx, "SELECT path FROM docs WHERE id = 1").Scan(&path))
	is.Equal(path, "from-internet/reports/2026 年报.txt")

	// The external zone restarts with an SM4 key first in its ring and
	// the AES key after it; so does the coordinator. The next cycle
	// carries on.
	stop(t, external)
	sm4Key, err := crypto.GenerateCipherKey(crypto.SM4GCM, "mains2")
	is.NoErr(err)
	env = append(os.Environ(), "GAPSYNC_KEYS="+sm4Key.Encode()+","+key.Encode())
	external = startExternal(t, bin, env, addr, intraDSN)
	insert(40, 55)
	_, err = inet.Bun().DB.ExecContext(ctx, "UPDATE demo SET title = 'changed 已改', updated_at = NOW(6) WHERE id < 3")
	is.NoErr(err)
	_, err = intra.Bun().DB.ExecContext(ctx, "UPDATE demo SET title = 'intranet edit 内网', updated_at = NOW(6) WHERE id IN (10, 11)")
	is.NoErr(err)
	_, err = intra.Bun().DB.ExecContext(ctx, "DELETE FROM demo WHERE id = 12")
	is.NoErr(err)
	time.Sleep(300 * time.Millisecond)
	out = run("internet", inetArgs...)
	if !strings.Contains(out, "rows_pushed=18 rows_pulled=3") {
		t.Fatalf("second cycle:\n%s", out)
	}
	stop(t, external)

	demo := gapsync.Table{Name: "demo", Key: []string{"id"}, Cursor: "updated_at"}
	a, n, err := inet.Checksum(ctx, demo)
	is.NoErr(err)
	b, m, err := intra.Checksum(ctx, demo)
	is.NoErr(err)
	is.Equal(n, int64(54))
	is.Equal(m, n)
	is.Equal(a, b)
	logs, err := inet.Log(ctx, "demo", 0)
	is.NoErr(err)
	is.Equal(len(logs), 4) // two cycles, both directions
	logs, err = inet.Log(ctx, "docs", 0)
	is.NoErr(err)
	is.Equal(logs[0].Rows, int64(0)) // the rewritten reference did not come back
	is.Equal(logs[0].Status, storage.StatusOK)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startExternal(t *testing.T, bin string, env []string, addr, dsn string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "external"), append([]string{"-listen", addr, "-db", dsn, "-lag", "200ms"}, extra...)...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return cmd
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("external did not start listening on %s:\n%s", addr, out.String())
	return nil
}

func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("external exited badly after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("external did not stop on SIGTERM")
	}
}

// TestQuickstart runs the newcomer's first command and checks its
// verdict, with the default AES-256-GCM key and with -cipher sm4.
func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	for _, c := range []struct{ flag, sealed string }{{"", "aes-256-gcm"}, {"sm4", "sm4-gcm"}} {
		args := []string{"run", "./quickstart"}
		if c.flag != "" {
			args = append(args, "-cipher", c.flag)
		}
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "quickstart: OK") || !strings.Contains(last, "internet→intranet 212 rows") ||
			!strings.Contains(last, "and 3 files") || !strings.Contains(last, "intranet→internet 5 rows") ||
			!strings.Contains(last, "envelopes sealed with "+c.sealed+";") {
			t.Fatalf("-cipher %q: last line %q", c.flag, last)
		}
	}
}
