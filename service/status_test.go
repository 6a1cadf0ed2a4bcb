package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/service"
	"github.com/gapsync/gapsync/storage"
)

// history opens an SQLite internet database with a scripted history: a
// push table that last synced an hour ago and then failed, a two-way
// table parked in pull, and file records waiting, failed and refused.
func history(t *testing.T) *storage.DB {
	t.Helper()
	is := is.New(t)
	ctx := context.Background()
	db, err := storage.OpenSQLite(filepath.Join(t.TempDir(), "inet.db"), nil)
	is.NoErr(err)
	t.Cleanup(func() { db.Close() })
	is.NoErr(db.Migrate(ctx))
	for _, q := range []string{
		"CREATE TABLE orders (id INTEGER PRIMARY KEY, updated_at DATETIME(6) NOT NULL)",
		"CREATE TABLE events (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
		"INSERT INTO orders VALUES (1, '2026-01-01 10:00:00.000000'), (2, '2026-01-02 10:00:00.000000'), (3, '2026-01-03 10:00:00.000000')",
	} {
		_, err := db.Bun().ExecContext(ctx, q)
		is.NoErr(err)
	}
	is.NoErr(db.Configure(ctx, gapsync.Table{Name: "orders", Key: []string{"id"}, Cursor: "updated_at", Direction: gapsync.Push, Enabled: true}))
	is.NoErr(db.Configure(ctx, gapsync.Table{Name: "events", Key: []string{"id"}, Cursor: "version", Direction: gapsync.Both, Enabled: true}))
	now := time.Now().UTC()
	for _, e := range []gapsync.LogEntry{
		{Table: "orders", Direction: gapsync.Push, Window: gapsync.Window{To: "2026-01-02 00:00:00.000000"}, Rows: 12, Conflicts: 2,
			StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-time.Hour)},
		{Table: "orders", Direction: gapsync.Push, Err: errors.New("gateway unreachable:\n  dial tcp"), StartedAt: now.Add(-time.Minute), FinishedAt: now.Add(-time.Minute)},
		{Table: "events", Direction: gapsync.Pull, Err: errors.New("rows refused"), StartedAt: now.Add(-time.Minute), FinishedAt: now.Add(-time.Minute)},
	} {
		e.RunID = "r"
		is.NoErr(db.Record(ctx, e))
	}
	is.NoErr(db.Park(ctx, "events", gapsync.Pull, "rows refused: charset"))
	is.NoErr(db.NoteMissing(ctx, "orders", gapsync.Push, map[string]string{"note": "ALTER TABLE `orders` ADD COLUMN `note` varchar(40)"}))
	is.NoErr(db.PutFileRecords(ctx, []gapsync.FileRecord{
		{ID: "f1", Origin: gapsync.Internet, Ref: "a.png", Status: gapsync.FilePublished, Size: 2048},
		{ID: "f2", Origin: gapsync.Internet, Ref: "c.png", Status: gapsync.FileExtracted},
		{ID: "f3", Origin: gapsync.Internet, Ref: "d.png", Status: gapsync.FileFailed, Error: `stage "d.png": open d.png: no such file or directory`},
		{ID: "f4", Origin: gapsync.Intranet, Ref: "e.png", Status: gapsync.FileIncoming},
	}))
	return db
}

func TestWriteStatus(t *testing.T) {
	is := is.New(t)
	db := history(t)
	st, err := db.Status(context.Background())
	is.NoErr(err)
	var b bytes.Buffer
	is.NoErr(service.WriteStatus(&b, st, false))
	out := b.String()
	t.Log("\n" + out)
	rows := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && (f[0] == "orders" || f[0] == "events") {
			rows[f[0]+" "+f[1]] = f
		}
	}
	o := rows["orders push"]
	is.Equal(o[2], "failing")
	is.Equal(o[3]+" "+o[4], "2026-01-02 00:00:00.000000")
	is.True(strings.HasPrefix(o[5], "1h0m")) // its age
	is.Equal(o[6]+" "+o[7]+" "+o[8], "failed 1m0s ago")
	is.Equal(o[10:], []string{"2", "2"}) // pending (Jan 2 and 3), conflicts of the day
	e := rows["events pull"]
	is.Equal(e[2:5], []string{"parked", "-", "never"})
	is.Equal(e[len(e)-2], "?") // pull rows are counted on the intranet side
	is.Equal(rows["events push"][2], "new")
	is.True(strings.Contains(out, "orders push: last error: gateway unreachable: dial tcp\n")) // one line
	is.True(strings.Contains(out, "events pull: parked since "))
	is.True(strings.Contains(out, "fix the cause, then: -resume events"))
	is.True(strings.Contains(out, "orders push: column note is missing on the receiving side since "))
	is.True(strings.Contains(out, "run there: ALTER TABLE `orders` ADD COLUMN `note` varchar(40)"))
	is.True(strings.Contains(out, "internet  published  1  2.0KiB"))
	is.True(strings.Contains(out, "no such file or directory"))

	b.Reset()
	is.NoErr(service.WriteStatus(&b, st, true))
	is.True(strings.Contains(b.String(), `"last_error": "gateway unreachable:\n  dial tcp"`))
	is.True(strings.Contains(b.String(), `"rows_pending": 2`))
}

// TestExportStatus scrapes the per-table series that ExportStatus adds
// beside the counters, and lints the scrape as promtool would.
func TestExportStatus(t *testing.T) {
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := history(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	addr := ln.Addr().String()
	ln.Close()
	rec := service.Observe(ctx, addr, nil, 0, nil)
	service.ExportStatus(rec, db, 2*time.Second, nil)
	service.ExportStatus(nil, db, 0, nil) // no metrics address: nothing to do
	var body string
	for i := 0; i < 100 && body == ""; i++ {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	is.NoErr(err)
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	value := func(series string) float64 {
		t.Helper()
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, series+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				is.NoErr(err)
				return f
			}
		}
		t.Fatalf("no %s in:\n%s", series, body)
		return 0
	}
	lag := value(`gapsync_table_lag_seconds{direction="push",table="orders"}`)
	is.True(lag > 3600 && lag < 3700) // an hour old, plus the 2 s window lag
	is.Equal(value(`gapsync_table_rows_pending{direction="push",table="orders"}`), 2.0)
	is.Equal(value(`gapsync_table_rows_pending{direction="push",table="events"}`), 0.0)            // empty table
	is.True(!strings.Contains(body, `gapsync_table_lag_seconds{direction="pull",table="events"}`)) // never synced
	is.Equal(value(`gapsync_files_pending{origin="internet",status="extracted"}`), 1.0)
	is.Equal(value(`gapsync_files_pending{origin="internet",status="failed"}`), 1.0)
	is.Equal(value(`gapsync_files_pending{origin="intranet",status="incoming"}`), 1.0)
	is.Equal(value(`gapsync_files_pending{origin="internet",status="stored"}`), 0.0)
}
