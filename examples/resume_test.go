package examples_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// resumeRows is the size of the first load the kill tests cut: 150,000
// rows by default, GAPSYNC_RESUME_ROWS to change it (RELIABILITY.md gives
// the 1,000,000-row command).
func resumeRows(t *testing.T) int {
	n := 150_000
	if s := os.Getenv("GAPSYNC_RESUME_ROWS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 10_000 {
			t.Fatalf("GAPSYNC_RESUME_ROWS=%q: want a number of at least 10000", s)
		}
		n = v
	}
	return n
}

// The page the mains read in a first load (CoordinatorOptions.LoadRows's
// default).
const mainsPageRows = 10_000

// TestKillCoordinatorMidLoad kills the internet main with SIGKILL a third
// of the way through a first push of resumeRows rows. The next run goes on
// from the checkpoint: its sync_log entry counts only the rows after it,
// which are the rows not yet applied and at most one page more (with
// -in-flight 1; InFlight pages with more), and the tables end equal.
func TestKillCoordinatorMidLoad(t *testing.T) {
	testKillMidLoad(t, gapsync.Push, "coordinator", 1)
}

// TestKillGatewayMidLoad kills the external main with SIGKILL a third of
// the way through a first pull of resumeRows rows, with three batches in
// flight; the coordinator's run fails, the gateway comes back, and the
// next run reads the rows not yet applied and at most three pages more.
func TestKillGatewayMidLoad(t *testing.T) {
	testKillMidLoad(t, gapsync.Pull, "gateway", 3)
}

func testKillMidLoad(t *testing.T, d gapsync.Direction, victim string, inFlight int) {
	if testing.Short() {
		t.Skip("builds the mains and loads a large table")
	}
	is := is.New(t)
	ctx := context.Background()
	n := resumeRows(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("resume1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	const ddl = `CREATE TABLE big (id BIGINT PRIMARY KEY, body VARCHAR(200) NOT NULL, n INT NOT NULL,
		updated_at DATETIME(6) NOT NULL, KEY (updated_at))`
	open := func(dsn string) *storage.DB {
		db, err := storage.OpenMySQL(dsn, nil)
		is.NoErr(err)
		t.Cleanup(func() { db.Close() })
		_, err = db.Bun().ExecContext(ctx, ddl)
		is.NoErr(err)
		return db
	}
	inet, intra := open(inetDSN), open(intraDSN)
	is.NoErr(inet.Migrate(ctx)) // the main does it too; the test reads sync_checkpoint from the start
	src, dst := inet, intra
	if d == gapsync.Pull {
		src, dst = intra, inet
	}
	_, err = src.Bun().DB.ExecContext(ctx, "INSERT INTO big SELECT seq, CONCAT('行 row ', seq, ' ', REPEAT('x', 100)), seq % 1000, NOW(6) FROM seq_1_to_"+strconv.Itoa(n))
	is.NoErr(err)
	table := "big:id:updated_at:" + string(d)
	cmd := exec.Command(filepath.Join(bin, "intranet"), "-db", intraDSN, "-table", table)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	is.True(err == nil || len(out) == 0)
	addr := freeAddr(t)
	external := startExternal(t, bin, env, addr, intraDSN)
	inetArgs := []string{"-once", "-db", inetDSN, "-gateway", "http://" + addr, "-table", table, "-lag", "200ms",
		"-lease-ttl", "3s", "-lease-wait", "1m", "-in-flight", strconv.Itoa(inFlight)}
	time.Sleep(300 * time.Millisecond) // past the lag

	// The first run, cut a third of the way.
	first := exec.Command(filepath.Join(bin, "internet"), inetArgs...)
	first.Env = env
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	is.NoErr(first.Start())
	exited := make(chan error, 1)
	go func() { exited <- first.Wait() }()
	done := func() int64 {
		var rows int64
		err := inet.Bun().DB.QueryRowContext(ctx, "SELECT rows_done FROM sync_checkpoint WHERE table_name = 'big'").Scan(&rows)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		return rows
	}
	deadline := time.Now().Add(2 * time.Minute)
	for done() < int64(n/3) {
		select {
		case err := <-exited:
			t.Fatalf("the first run ended (%v) before a third of the load:\n%s", err, firstOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no third of the load in 2 minutes:\n%s", firstOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if victim == "coordinator" {
		is.NoErr(first.Process.Kill())
		<-exited
	} else {
		is.NoErr(external.Process.Kill())
		external.Wait()
		select { // the run fails once its retries give up
		case err := <-exited:
			is.True(err != nil)
		case <-time.After(time.Minute):
			t.Fatalf("the coordinator did not give up on a dead gateway:\n%s", firstOut.String())
		}
	}
	var applied int64
	is.NoErr(dst.Bun().DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM big").Scan(&applied))
	cp, ok, err := inet.Checkpoint(ctx, "big", d)
	is.NoErr(err)
	is.True(ok)
	t.Logf("%s killed: %d of %d rows applied, checkpoint after %d (%d batches), about %d left", victim, applied, n, cp.Rows, cp.Batches, cp.Left)
	is.True(applied < int64(n))
	is.True(cp.Rows <= applied)

	if victim == "gateway" {
		external = startExternal(t, bin, env, addr, intraDSN)
	}
	defer stop(t, external)
	// -status shows the window in progress.
	status := exec.Command(filepath.Join(bin, "internet"), "-db", inetDSN, "-status")
	status.Env = env
	out, err = status.CombinedOutput()
	is.NoErr(err)
	if !strings.Contains(string(out), "in progress") || !strings.Contains(string(out), strconv.FormatInt(cp.Rows, 10)+" rows done") {
		t.Fatalf("-status does not show the window in progress:\n%s", out)
	}

	second := exec.Command(filepath.Join(bin, "internet"), inetArgs...)
	second.Env = env
	out, err = second.CombinedOutput()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	is.True(strings.Contains(string(out), "window goes on from its checkpoint"))
	logs, err := inet.Log(ctx, "big", 1)
	is.NoErr(err)
	e := logs[0]
	t.Logf("the next run read %d rows; %d were not applied", e.Rows, int64(n)-applied)
	is.Equal(e.Status, storage.StatusOK)
	is.Equal(e.WindowTo, cp.Window.To)                                // the same window
	is.Equal(e.Rows, int64(n)-cp.Rows)                                // the rows after the checkpoint…
	is.True(e.Rows >= int64(n)-applied)                               // …which hold every row not applied…
	is.True(e.Rows <= int64(n)-applied+int64(inFlight*mainsPageRows)) // …and at most InFlight pages more
	_, ok, err = inet.Checkpoint(ctx, "big", d)
	is.NoErr(err)
	is.True(!ok)

	tbl := gapsync.Table{Name: "big", Key: []string{"id"}, Cursor: "updated_at"}
	a, na, err := inet.Checksum(ctx, tbl)
	is.NoErr(err)
	b, nb, err := intra.Checksum(ctx, tbl)
	is.NoErr(err)
	is.Equal(na, int64(n))
	is.Equal(nb, na)
	is.Equal(a, b)
}
