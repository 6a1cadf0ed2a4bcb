package syncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/throttle"
)

// BenchmarkThrottledLoad is must-show 2 of issue 14: with a limit of
// 20,000 rows/s, a first load of 200,000 rows on MariaDB takes at least
// 10 s and at most 12 s. Each iteration loads a fresh pair of databases
// through a loopback gateway and fails when the time falls outside that.
//
//	go test -run '^$' -bench ThrottledLoad -benchtime 1x ./syncer/
func BenchmarkThrottledLoad(b *testing.B) {
	const rows, limit = 200_000, 20_000
	ctx := context.Background()
	keys := benchKeys(b)
	open := func() *storage.DB { return benchMySQL(b, itemsDDL, items) }
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		inet, intra := open(), open()
		if _, err := inet.Bun().ExecContext(ctx, "INSERT INTO items (id, name, qty, updated_at) "+
			"SELECT seq, CONCAT('item ', seq, ' 物品'), seq, NOW(6) - INTERVAL 1 SECOND FROM seq_0_to_199999"); err != nil {
			b.Fatal(err)
		}
		client, stop := benchGateway(b, intra, keys)
		th, err := throttle.New(&throttle.Options{Overall: throttle.Limits{Rows: limit}})
		if err != nil {
			b.Fatal(err)
		}
		coord, err := syncer.NewCoordinator(inet, client, &syncer.CoordinatorOptions{Throttle: th})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		r, err := coord.RunOnce(ctx)
		d := time.Since(start)
		b.StopTimer()
		took += d
		stop()
		if err != nil {
			b.Fatal(err)
		}
		if n := r.Rows(gapsync.Push); n != rows {
			b.Fatalf("moved %d rows, want %d", n, rows)
		}
		if d < 10*time.Second || d > 12*time.Second {
			b.Errorf("200,000 rows at 20,000 rows/s took %v: want 10 s to 12 s", d)
		}
		b.StartTimer()
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/load")
	b.ReportMetric(float64(rows)*float64(b.N)/took.Seconds(), "rows/s")
}
