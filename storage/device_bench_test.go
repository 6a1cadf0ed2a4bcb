package storage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// BenchmarkDeviceApply applies batches of 500 rows (an integer key, a
// DECIMAL, a DATETIME(6), 200 bytes of text and a FLOAT) to MariaDB over
// the binary protocol (prepared) and as text (text-only). With -count N
// the two alternate, N times each.
func BenchmarkDeviceApply(b *testing.B) {
	for _, name := range []string{storage.DevicePrepared, storage.DeviceTextOnly} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			p, err := storage.DevicePreset(name)
			if err != nil {
				b.Fatal(err)
			}
			o := *testOpts
			o.Device = p
			db, err := storage.OpenMySQL(testdb.MySQL(b), &o)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Bun().DB.ExecContext(ctx, "CREATE TABLE bench (id BIGINT PRIMARY KEY, amount DECIMAL(20,6), at DATETIME(6), note VARCHAR(300), f FLOAT, updated_at DATETIME(6))"); err != nil {
				b.Fatal(err)
			}
			tb := gapsync.Table{Name: "bench", Key: []string{"id"}, Cursor: "updated_at", Direction: gapsync.Push, Enabled: true}
			if err := db.Configure(ctx, tb); err != nil {
				b.Fatal(err)
			}
			note := make([]byte, 200)
			for i := range note {
				note[i] = 'a' + byte(i%26)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bt := &batch.Batch{ID: fmt.Sprintf("b%d", i), Table: "bench", Direction: string(gapsync.Push),
					Columns: []batch.Column{{Name: "id", Key: true}, {Name: "amount"}, {Name: "at"}, {Name: "note"}, {Name: "f"}, {Name: "updated_at"}}}
				for r := range 500 {
					bt.Rows = append(bt.Rows, batch.Row{Op: batch.OpUpsert, Values: []any{int64(i*500 + r), []byte("12345.678901"),
						[]byte("2026-01-02 03:04:05.123456"), note, float32(r) / 3, []byte("2026-01-02 03:04:05.123456")}})
				}
				if _, err := db.Apply(ctx, bt); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
