package examples_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

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

// TestMainsStatusDryRunReload runs the internet main's -dry-run, -status
// (text and JSON) and -reload as an operator would, against a real
// gateway: the dry run counts and writes nothing, the status shows the
// run that followed, and a reload makes the table go again from its first
// row while the history stays.
func TestMainsStatusDryRunReload(t *testing.T) {
	is := is.New(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("mains2")
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
	count := func(db *storage.DB, q string) (n int) {
		is.NoErr(db.Bun().QueryRowContext(ctx, q).Scan(&n))
		return n
	}
	for _, db := range []*storage.DB{inet, intra} {
		_, err := db.Bun().ExecContext(ctx, "CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100), updated_at DATETIME(6), KEY (updated_at))")
		is.NoErr(err)
	}
	_, err = inet.Bun().ExecContext(ctx, "INSERT INTO demo VALUES (1, 'a', NOW(6) - INTERVAL 1 SECOND), (2, 'b', NOW(6) - INTERVAL 1 SECOND), (3, 'c', NOW(6) - INTERVAL 1 SECOND)")
	is.NoErr(err)
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
	run("intranet", "-db", intraDSN, "-table", "demo:id:updated_at")
	addr := freeAddr(t)
	startExternal(t, bin, env, addr, intraDSN)
	inetArgs := []string{"-db", inetDSN, "-gateway", "http://" + addr, "-table", "demo:id:updated_at", "-lag", "200ms"}

	out := run("internet", append(inetArgs, "-dry-run")...)
	t.Log(out)
	is.True(strings.Contains(out, "one cycle would move 3 rows; nothing was written"))
	is.Equal(count(inet, "SELECT COUNT(*) FROM sync_log"), 0)
	is.Equal(count(intra, "SELECT COUNT(*) FROM demo"), 0)

	run("internet", append(inetArgs, "-once")...)
	is.Equal(count(intra, "SELECT COUNT(*) FROM demo"), 3)
	out = run("internet", "-db", inetDSN, "-status")
	t.Log(out)
	is.True(strings.Contains(out, "LAST GOOD WINDOW"))
	line := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "demo ") {
			line = l
		}
	}
	is.True(strings.Contains(line, " push "))
	is.True(strings.Contains(line, " ok "))
	var st storage.Status
	out = run("internet", "-db", inetDSN, "-status", "-json")
	is.NoErr(json.Unmarshal([]byte(out), &st))
	is.Equal(len(st.Tables), 1)
	is.Equal(st.Tables[0].LastRun.Rows, int64(3))
	is.Equal(st.Tables[0].Pending, int64(0))
	is.True(st.Tables[0].Window != "")

	out = run("internet", "-db", inetDSN, "-reload", "demo")
	is.True(strings.Contains(out, "demo reloaded"))
	is.Equal(count(inet, "SELECT COUNT(*) FROM sync_log"), 2) // the run, and the reload after it
	out = run("internet", append(inetArgs, "-dry-run", "-json")...)
	var plan struct {
		Runs []struct{ Rows int64 } `json:"runs"`
	}
	is.NoErr(json.Unmarshal([]byte(out), &plan))
	is.Equal(len(plan.Runs), 1)
	is.Equal(plan.Runs[0].Rows, int64(3)) // from the first row again
	out = run("internet", "-db", inetDSN, "-status")
	is.True(strings.Contains(out, " reload "))
}

// TestMainsMetricsLintClean scrapes a running coordinator and gateway:
// the per-table series (lag, rows pending, files pending) and the
// gateway's request timing are there, and each scrape passes the checks
// of promtool check metrics.
func TestMainsMetricsLintClean(t *testing.T) {
	is := is.New(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("mains3")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	ctx := context.Background()
	for _, dsn := range []string{inetDSN, intraDSN} {
		db, err := storage.OpenMySQL(dsn, nil)
		is.NoErr(err)
		_, err = db.Bun().ExecContext(ctx, "CREATE TABLE demo (id BIGINT PRIMARY KEY, updated_at DATETIME(6), KEY (updated_at))")
		is.NoErr(err)
		if dsn == inetDSN {
			_, err = db.Bun().ExecContext(ctx, "INSERT INTO demo VALUES (1, NOW(6)), (2, NOW(6))")
			is.NoErr(err)
		}
		db.Close()
	}
	cmd := exec.Command(filepath.Join(bin, "intranet"), "-db", intraDSN, "-table", "demo:id:updated_at")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	is.True(err == nil && strings.Contains(string(out), "demo enabled"))
	gw, gwMetrics, inetMetrics := freeAddr(t), freeAddr(t), freeAddr(t)
	startExternal(t, bin, env, gw, intraDSN, "-metrics", gwMetrics)
	inet := exec.Command(filepath.Join(bin, "internet"), "-db", inetDSN, "-gateway", "http://"+gw, "-table", "demo:id:updated_at",
		"-lag", "200ms", "-interval", "500ms", "-metrics", inetMetrics)
	inet.Env = env
	var inetOut strings.Builder
	inet.Stdout, inet.Stderr = &inetOut, &inetOut
	is.NoErr(inet.Start())
	t.Cleanup(func() { inet.Process.Kill(); inet.Wait() })

	// scrape waits for a scrape that holds every wanted series: the
	// first cycle may still be running when the endpoint first answers.
	scrape := func(addr string, wants ...string) string {
		t.Helper()
		var last string
		for i := 0; i < 400; i++ {
			if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				last = string(b)
				missing := ""
				for _, w := range wants {
					if !strings.Contains(last, w) {
						missing = w
						break
					}
				}
				if missing == "" {
					return last
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s never showed all of %q; last scrape:\n%s\ninternet said:\n%s", addr, wants, last, inetOut.String())
		return ""
	}
	lint := func(body string) {
		t.Helper()
		problems, err := promlint.New(strings.NewReader(body)).Lint()
		is.NoErr(err)
		for _, p := range problems {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	body := scrape(inetMetrics, `gapsync_table_lag_seconds{direction="push",table="demo"}`,
		`gapsync_table_rows_pending{direction="push",table="demo"}`,
		`gapsync_files_pending{origin="internet",status="extracted"} 0`, `gapsync_table_last_success_timestamp_seconds{direction="push",table="demo"}`,
		`gapsync_rows_total{direction="push",table="demo"} 2`, "go_goroutines", "gapsync_build_info{")
	lint(body)
	body = scrape(gwMetrics, `gapsync_gateway_request_duration_seconds_count{path="/v1/apply"}`,
		`gapsync_gateway_requests_total{path="/v1/apply",result="ok"}`)
	lint(body)
}
