package syncer_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// snapshot is what a dry run must leave as it is: the rows, logs,
// ledgers, file records and the lease, on both sides.
func (z *zones) snapshot() string {
	z.t.Helper()
	var s string
	for _, side := range []struct {
		name string
		db   *storage.DB
	}{{"internet", z.inet}, {"intranet", z.intra}} { // a fixed order: the snapshots are compared as text
		name, db := side.name, side.db
		for _, q := range []string{"SELECT COUNT(*) FROM docs", "SELECT COUNT(*) FROM sync_log", "SELECT COUNT(*) FROM sync_applied",
			"SELECT COUNT(*) FROM file_record", "SELECT COUNT(*) FROM file_chunk", "SELECT COUNT(*) FROM sync_row_version", "SELECT COUNT(*) FROM sync_lease"} {
			s += fmt.Sprintf("%s %s: %d\n", name, q, count(z.t, db.Bun().DB, q))
		}
	}
	return s
}

func planned(p *syncer.Plan, table string, d gapsync.Direction) syncer.PlannedRun {
	for _, r := range p.Runs {
		if r.Table == table && r.Direction == d {
			return r
		}
	}
	return syncer.PlannedRun{Err: "not planned"}
}

// A dry run counts what the cycle then moves, rows and files both ways,
// and writes nothing on either side.
func TestDryRunCountsAndWritesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newFileZones(t, kind, "local", 64<<10)
		put(t, z.inetStore, "in/a.bin", randBytes(1, 1000))
		put(t, z.inetStore, "in/b.bin", randBytes(2, 2000))
		z.doc(gapsync.Internet, 1, "in/a.bin")
		z.doc(gapsync.Internet, 2, "in/a.bin") // one file, two rows
		z.doc(gapsync.Internet, 3, "in/b.bin")
		put(t, z.intraStore, "out/c.bin", randBytes(3, 3000))
		z.doc(gapsync.Intranet, 10, "out/c.bin")
		z.waitLag()

		before := z.snapshot()
		p, err := z.coord.DryRun(ctx)
		is.NoErr(err)
		is.Equal(z.snapshot(), before) // nothing written, on either side
		push, pull := planned(p, "docs", gapsync.Push), planned(p, "docs", gapsync.Pull)
		is.Equal(push.Err, "")
		is.Equal(pull.Err, "")
		is.Equal(push.Rows, int64(3))
		is.Equal(push.Files, 2)
		is.Equal(push.NewFiles, 2)
		is.True(push.Bytes > 0)
		is.Equal(pull.Rows, int64(1))
		is.Equal(pull.Files, 1)
		is.Equal(len(p.FilesWaiting), 0)

		r, err := z.coord.RunOnce(ctx)
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), push.Rows) // the cycle moved what the dry run said
		is.Equal(r.Rows(gapsync.Pull), pull.Rows)

		// Files recorded but not yet across show as waiting.
		p, err = z.coord.DryRun(ctx)
		is.NoErr(err)
		waiting := 0
		for _, n := range p.FilesWaiting {
			waiting += n
		}
		is.True(waiting > 0)
		for range 3 {
			z.round()
		}
		z.waitLag()
		p, err = z.coord.DryRun(ctx)
		is.NoErr(err)
		r, err = z.coord.RunOnce(ctx)
		is.NoErr(err)
		is.Equal(planned(p, "docs", gapsync.Push).Rows, r.Rows(gapsync.Push))
		is.Equal(planned(p, "docs", gapsync.Pull).Rows, r.Rows(gapsync.Pull))
	})
}

// After a reload the next cycle sends every row of the table again (the
// far side had lost some), and the sync log keeps its whole history.
func TestReloadResendsTable(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{page: gapsync.Page{Rows: 7}})
		z.both(items, itemsDDL)
		z.insertItems(0, 20)
		z.waitLag()
		r, err := z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(20))
		mustExec(t, z.dst(), "DELETE FROM items WHERE id >= 5") // lost on the far side
		r, err = z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(0)) // nothing changed here: nothing sent

		before := logRows(t, z.inet, "items")
		dirs, err := z.inet.Reload(ctx, "items", "coordinator", 0)
		is.NoErr(err)
		is.Equal(dirs, []gapsync.Direction{gapsync.Push})
		p, err := z.coord.DryRun(ctx)
		is.NoErr(err)
		is.Equal(planned(p, "items", gapsync.Push).Rows, int64(20))
		r, err = z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(20))
		z.assertSame("items", "id")

		after := logRows(t, z.inet, "items")
		is.Equal(len(after), len(before)+2) // the reload and the run after it
		is.Equal(after[0].Status, storage.StatusOK)
		is.Equal(after[0].WindowFrom, "") // from the first row
		is.Equal(after[1].Status, storage.StatusReload)
		is.Equal(after[1].WindowFrom, before[0].WindowTo)
		is.Equal(after[2:], before) // history kept
		r, err = z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(0)) // and on from there
	})
}

// The gateway times every request to a route it serves, per route, and
// no other path.
func TestGatewayTimesRequests(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	z := newZones(t, "sqlite", zoneOpts{gw: &syncer.GatewayOptions{Metrics: m}})
	z.both(items, itemsDDL)
	z.insertItems(0, 3)
	z.waitLag()
	_, err := z.runOnce()
	is.NoErr(err)
	resp, err := http.Post("http://"+z.addr+"/not-a-route", "application/octet-stream", nil)
	is.NoErr(err)
	resp.Body.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	got := map[string]uint64{}
	// The time is taken once the answer is written, so it may be counted
	// just after the client has read it.
	for i := 0; i < 100 && got[transport.PathApply] == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		mfs, err := reg.Gather()
		is.NoErr(err)
		for _, mf := range mfs {
			if mf.GetName() == "gapsync_gateway_request_duration_seconds" {
				for _, s := range mf.GetMetric() {
					got[s.GetLabel()[0].GetValue()] = s.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	is.Equal(got[transport.PathApply], uint64(1))
	is.True(got[transport.PathBound] == 0) // items is push only: no pull bound asked
	_, other := got["/not-a-route"]
	is.True(!other)
}
