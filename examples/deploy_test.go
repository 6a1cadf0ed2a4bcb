package examples_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/go-sql-driver/mysql"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// buildMains builds the named mains into a temporary directory.
func buildMains(t *testing.T, names ...string) string {
	t.Helper()
	bin := t.TempDir()
	args := []string{"build", "-o", bin + "/"}
	for _, n := range names {
		args = append(args, "./"+n)
	}
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("build mains: %v\n%s", err, out)
	}
	return bin
}

// forwarder accepts on a listener and copies each connection to and from
// target; Close stops it and cuts every connection it carries, as a
// database that goes away would.
type forwarder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func forward(ln net.Listener, target string) *forwarder {
	f := &forwarder{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return f
}

func (f *forwarder) Close() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

// TestMainsWaitForTheDatabase starts the intranet main while its database
// is not reachable yet (as after a reboot, when MariaDB is still starting):
// it must wait, say what it waits for, and carry on once the database
// answers, instead of exiting 1.
func TestMainsWaitForTheDatabase(t *testing.T) {
	is := is.New(t)
	dsn := testdb.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	is.NoErr(err)
	target := cfg.Addr
	addr := freeAddr(t) // nothing listens here yet
	cfg.Addr = addr
	bin := buildMains(t, "intranet")

	cmd := exec.Command(filepath.Join(bin, "intranet"), "-table", "demo:id:updated_at:both")
	cmd.Env = append(os.Environ(), "GAPSYNC_DB="+cfg.FormatDSN()) // the flag from the environment
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	is.NoErr(cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	// The database "comes up" after a while: a forwarder to the real one.
	time.Sleep(2500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("intranet exited while the database was down (%v):\n%s", err, out.String())
	default:
	}
	ln, err := net.Listen("tcp", addr)
	is.NoErr(err)
	defer forward(ln, target).Close()
	// The demo table does not exist yet either: a real deployment creates it
	// before it enables it, so the main must say so and go on waiting.
	db, err := storage.OpenMySQL(dsn, nil)
	is.NoErr(err)
	defer db.Close()
	time.Sleep(1500 * time.Millisecond)
	_, err = db.Bun().ExecContext(context.Background(), "CREATE TABLE demo (id INT PRIMARY KEY, updated_at DATETIME(6))")
	is.NoErr(err)
	select {
	case err := <-done:
		is.NoErr(err)
	case <-time.After(60 * time.Second):
		t.Fatalf("intranet did not finish after the database came up:\n%s", out.String())
	}
	s := out.String()
	if !strings.Contains(s, "waiting before retrying a startup step") || !strings.Contains(s, "metadata tables ready") {
		t.Fatalf("output:\n%s", s)
	}
}

// TestOnceCarriesRealReferences runs the stock mains on references as
// applications store them (an absolute upload path with spaces, Chinese and
// parentheses), with the prefix flags, and a reference that is refused by
// design: -once exits 0, says what it refused, and the file arrives. The
// keyring is an SM4-GCM key: rows and files cross sealed with SM4; and the
// three mains take GAPSYNC_FILE_DIGEST=sm3, so the file record carries its
// SM3 digest, verified at publish.
func TestOnceCarriesRealReferences(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateCipherKey(crypto.SM4GCM, "deploy1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode(), "GAPSYNC_FILE_DIGEST=sm3")
	for _, dsn := range []string{inetDSN, intraDSN} {
		db, err := storage.OpenMySQL(dsn, nil)
		is.NoErr(err)
		_, err = db.Bun().ExecContext(ctx, "CREATE TABLE docs (id INT PRIMARY KEY, path VARCHAR(300), updated_at DATETIME(6) NOT NULL)")
		is.NoErr(err)
		db.Close()
	}
	inetStore, intraStore := t.TempDir(), t.TempDir()
	body := bytes.Repeat([]byte("报告 report "), 50_000)
	is.NoErr(os.MkdirAll(filepath.Join(inetStore, "2026"), 0o755))
	is.NoErr(os.WriteFile(filepath.Join(inetStore, "2026", "报告 final (1).pdf"), body, 0o644))
	inet, err := storage.OpenMySQL(inetDSN, nil)
	is.NoErr(err)
	defer inet.Close()
	_, err = inet.Bun().ExecContext(ctx, "INSERT INTO docs VALUES (1, '/upload/2026/报告 final (1).pdf', NOW(6)), (2, '/upload/../../etc/passwd', NOW(6))")
	is.NoErr(err)

	run := func(name string, extraEnv []string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = append(append([]string{}, env...), extraEnv...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// The intranet side, configured from the environment only.
	out, err := run("intranet", []string{"GAPSYNC_DB=" + intraDSN, "GAPSYNC_TABLE=docs:id:updated_at:both:path"})
	is.True(err == nil && strings.Contains(out, "docs enabled for both"))

	addr := freeAddr(t)
	external := startExternal(t, bin, env, addr, intraDSN)
	defer stop(t, external)
	time.Sleep(300 * time.Millisecond)
	inetArgs := []string{"-once", "-db", inetDSN, "-gateway", "http://" + addr, "-table", "docs:id:updated_at:both:path",
		"-lag", "200ms", "-store", "dir:" + inetStore, "-strip-prefix", "/upload/", "-ref-prefix", "/upload/"}
	out, err = run("internet", nil, inetArgs...)
	if err != nil || !strings.Contains(out, "rows_pushed=2") || !strings.Contains(out, "files_sent=1") || !strings.Contains(out, "refs_refused=1") {
		t.Fatalf("internet -once: %v\n%s", err, out)
	}
	is.True(!strings.Contains(out, "\r")) // stderr is not a terminal: log lines, no redrawn bar
	out, err = run("intranet", nil, "-once", "-db", intraDSN, "-store", "dir:"+intraStore, "-strip-prefix", "/upload/", "-ref-prefix", "/upload/")
	if err != nil || !strings.Contains(out, "published=1") {
		t.Fatalf("intranet -once: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(intraStore, "from-internet", "2026", "报告 final (1).pdf"))
	is.NoErr(err)
	is.True(bytes.Equal(got, body))
	intra, err := storage.OpenMySQL(intraDSN, nil)
	is.NoErr(err)
	defer intra.Close()
	var path string
	is.NoErr(intra.Bun().QueryRowContext(ctx, "SELECT path FROM docs WHERE id = 1").Scan(&path))
	is.Equal(path, "/upload/from-internet/2026/报告 final (1).pdf")
	var digest string
	is.NoErr(intra.Bun().QueryRowContext(ctx, "SELECT sm3 FROM file_record WHERE ref = ?", "/upload/2026/报告 final (1).pdf").Scan(&digest))
	want := sm3.Sum(body)
	is.Equal(digest, hex.EncodeToString(want[:]))

	// A coordinator that died holding the lease: -once waits for it.
	is.NoErr(inet.Acquire(ctx, "coordinator", "killed-coordinator", 3*time.Second))
	start := time.Now()
	out, err = run("internet", nil, append(inetArgs, "-lease-wait", "30s")...)
	if err != nil || !strings.Contains(out, "waiting for the lease") {
		t.Fatalf("internet -once behind a held lease: %v\n%s", err, out)
	}
	is.True(time.Since(start) >= 2*time.Second) // it did wait for the lapse
	// Without the wait it fails at once, and says why.
	is.NoErr(inet.Acquire(ctx, "coordinator", "killed-coordinator", 30*time.Second))
	out, err = run("internet", nil, append(inetArgs, "-lease-wait", "0")...)
	var exit *exec.ExitError
	is.True(errors.As(err, &exit))
	is.True(strings.Contains(out, "lease held"))
}

// TestKeygen makes a keyring and rotates it with the stock command.
func TestKeygen(t *testing.T) {
	is := is.New(t)
	bin := buildMains(t, "keygen")
	out, err := exec.Command(filepath.Join(bin, "keygen"), "-id", "k1").Output()
	is.NoErr(err)
	first := strings.TrimSpace(string(out))
	ring, err := crypto.ParseKeyring(first)
	is.NoErr(err)
	is.Equal(ring.ActiveID(), "k1")
	out, err = exec.Command(filepath.Join(bin, "keygen"), "-id", "k2", "-ring", first).Output()
	is.NoErr(err)
	rotated := strings.TrimSpace(string(out))
	ring, err = crypto.ParseKeyring(rotated)
	is.NoErr(err)
	is.Equal(ring.ActiveID(), "k2")            // the new key seals
	is.True(strings.HasSuffix(rotated, first)) // the old one still opens
	// Two runs never make the same secret, and a reused id is refused.
	again, err := exec.Command(filepath.Join(bin, "keygen"), "-id", "k1").Output()
	is.NoErr(err)
	is.True(strings.TrimSpace(string(again)) != first)
	err = exec.Command(filepath.Join(bin, "keygen"), "-id", "k1", "-ring", first).Run()
	is.True(err != nil)
	// Rotation to SM4: the new SM4 key seals, the AES keys still open.
	out, err = exec.Command(filepath.Join(bin, "keygen"), "-id", "k3", "-cipher", "sm4", "-ring", rotated).Output()
	is.NoErr(err)
	toSM4 := strings.TrimSpace(string(out))
	is.True(strings.HasPrefix(toSM4, "k3:sm4:"))
	ring, err = crypto.ParseKeyring(toSM4)
	is.NoErr(err)
	is.Equal(ring.ActiveCipher(), crypto.SM4GCM)
	is.True(strings.HasSuffix(toSM4, ","+rotated))
	err = exec.Command(filepath.Join(bin, "keygen"), "-cipher", "des").Run()
	is.True(err != nil)
}

// TestMainsKeygen asks each of the three mains for a key with -keygen,
// needing no database or flags else: ParseKeyring takes every answer.
func TestMainsKeygen(t *testing.T) {
	is := is.New(t)
	bin := buildMains(t, "internet", "external", "intranet")
	for _, name := range []string{"internet", "external", "intranet"} {
		cmd := exec.Command(filepath.Join(bin, name), "-keygen")
		cmd.Env = append(os.Environ(), "GAPSYNC_KEYS=", "GAPSYNC_DB=")
		out, err := cmd.Output()
		is.NoErr(err)
		ring, err := crypto.ParseKeyring(strings.TrimSpace(string(out)))
		is.NoErr(err)
		is.True(strings.HasPrefix(ring.ActiveID(), "k20")) // named after the date
		is.Equal(ring.ActiveCipher(), crypto.AES256GCM)

		cmd = exec.Command(filepath.Join(bin, name), "-keygen", "-cipher", "sm4")
		cmd.Env = append(os.Environ(), "GAPSYNC_KEYS=", "GAPSYNC_DB=")
		out, err = cmd.Output()
		is.NoErr(err)
		ring, err = crypto.ParseKeyring(strings.TrimSpace(string(out)))
		is.NoErr(err)
		is.Equal(ring.ActiveCipher(), crypto.SM4GCM)
	}
}

// TestWorkerHealth runs the intranet worker with -metrics and asks it
// what an orchestrator asks: alive, ready, and the runtime's metrics.
func TestWorkerHealth(t *testing.T) {
	is := is.New(t)
	bin := buildMains(t, "intranet")
	addr := freeAddr(t)
	db := filepath.Join(t.TempDir(), "intra.db")
	cmd := exec.Command(filepath.Join(bin, "intranet"), "-db", "sqlite:"+db, "-store", "dir:"+t.TempDir(),
		"-interval", "200ms", "-metrics", addr, "-log-format", "json")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	is.NoErr(cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	fetch := func(path string) (int, string) {
		for i := 0; i < 200; i++ {
			resp, err := http.Get("http://" + addr + path)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode, string(b)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no answer at %s:\n%s", path, out.String())
		return 0, ""
	}
	code, body := fetch("/healthz")
	is.Equal(code, 200)
	is.Equal(body, "ok\n")
	var ready string
	for i := 0; i < 50; i++ { // ready once a worker run has succeeded
		if code, ready = fetch("/readyz"); code == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	is.Equal(code, 200)
	is.True(strings.Contains(ready, "ok database") && strings.Contains(ready, "ok last-cycle"))
	_, metricsText := fetch("/metrics")
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "gapsync_build_info{", `gapsync_cycles_total{result="ok",role="worker"}`} {
		is.True(strings.Contains(metricsText, want))
	}
	// The logs are JSON, every line of them.
	cmd.Process.Kill()
	cmd.Wait()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "{") && !strings.HasPrefix(line, "intranet:") {
			t.Fatalf("a line outside the JSON handler: %q", line)
		}
	}
}

// TestGatewayWaitsAndAnswersHealth starts the gateway before its intranet
// database is reachable: it waits instead of exiting, then serves, and its
// own address answers /healthz and /readyz without error details.
func TestGatewayWaitsAndAnswersHealth(t *testing.T) {
	is := is.New(t)
	dsn := testdb.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	is.NoErr(err)
	target := cfg.Addr
	dbAddr, addr := freeAddr(t), freeAddr(t)
	cfg.Addr = dbAddr
	bin := buildMains(t, "external")
	key, err := crypto.GenerateKey("health1")
	is.NoErr(err)
	keys := filepath.Join(t.TempDir(), "keys")
	is.NoErr(os.WriteFile(keys, []byte(key.Encode()+"\n"), 0o600))
	cmd := exec.Command(filepath.Join(bin, "external"), "-listen", addr)
	cmd.Env = append(os.Environ(), "GAPSYNC_KEYS_FILE="+keys, "GAPSYNC_DB="+cfg.FormatDSN())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	is.NoErr(cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	time.Sleep(2500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("external exited while its database was down (%v):\n%s", err, out.String())
	default:
	}
	ln, err := net.Listen("tcp", dbAddr)
	is.NoErr(err)
	fw := forward(ln, target)
	defer fw.Close()
	var code int
	var body string
	for i := 0; i < 400; i++ {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 200 || body != "ok database\n" {
		t.Fatalf("readyz %d %q:\n%s", code, body, out.String())
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	is.NoErr(err)
	resp.Body.Close()
	is.Equal(resp.StatusCode, 200)
	// The database goes away: not ready, and nothing said about where it was.
	fw.Close()
	mysqlDown := func() (int, string) {
		resp, err := http.Get("http://" + addr + "/readyz")
		is.NoErr(err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	for i := 0; i < 50; i++ {
		if code, body = mysqlDown(); code == 503 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	is.Equal(code, 503)
	is.Equal(body, "fail database\n")
}
