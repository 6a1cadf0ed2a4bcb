package throttle_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/throttle"
)

// A copier asks the Throttler before each page goes. Here: 20,000 rows
// a second overall, 2,000 for one noisy table, 10 MiB/s of files, and a
// pause while the database runs more than 25 statements at once or
// answers slower than 200 ms. A *storage.DB is the Probe; the coordinator
// takes the Throttler as syncer.CoordinatorOptions.Throttle.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gapsync-example-")
	defer os.RemoveAll(dir)
	db, err := storage.Open("sqlite:"+filepath.Join(dir, "app.db"), nil)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	th, err := throttle.New(&throttle.Options{
		Overall:    throttle.Limits{Rows: 20_000, Bytes: 8 << 20},
		Tables:     map[string]throttle.Limits{"audit_log": {Rows: 2_000}},
		FileBytes:  10 << 20,
		Probes:     map[string]throttle.Probe{"internet": db},
		MaxRunning: 25,
		MaxLatency: 200 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	start := time.Now()
	for range 4 { // four pages of 1,000 rows, 64 KiB each
		if err := th.Wait(ctx, "orders", 1000, 64<<10); err != nil {
			panic(err)
		}
	}
	fmt.Println("4,000 rows took at least 0.2 s:", time.Since(start) >= 200*time.Millisecond)

	_, err = throttle.New(&throttle.Options{Overall: throttle.Limits{Rows: -1}})
	fmt.Println(err)
	// Output:
	// 4,000 rows took at least 0.2 s: true
	// throttle: overall rows per second is -1: want 0 (no limit) or a positive number
}
