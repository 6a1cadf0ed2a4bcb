package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// growthCase runs the initial load of each -growth row count in each
// direction through the zone mains as processes (internet -once against
// the external gateway; rows need no intranet worker) and prints the
// time per row, its ratio to the first count's, and each role's peak
// RSS: cost that grows faster than the rows, or memory that grows with
// them, shows here.
func growthCase(ctx context.Context, b *bench) error {
	bin, err := b.mains()
	if err != nil {
		return err
	}
	e := b.maria
	fmt.Printf("| initial load through the zone mains | rows | time (internet -once) | µs per row | per row ÷ %d rows' | peak RSS internet | peak RSS external |\n|---|---|---|---|---|---|---|\n", b.growth[0])
	for _, dir := range b.directions {
		var first float64
		for i, n := range b.growth {
			took, z, err := growthLoad(ctx, e, bin, dir, n)
			if err != nil {
				return fmt.Errorf("%s %d rows: %w", dir, n, err)
			}
			per := took.Seconds() / float64(n) * 1e6
			if i == 0 {
				first = per
			}
			fmt.Printf("| %s | %d | %.1f s, %.0f rows/s | %.2f | **%.2f** | %d MiB | %d MiB |\n",
				dir, n, took.Seconds(), float64(n)/took.Seconds(), per, per/first, z.rss["internet"]>>10, z.rss["external"]>>10)
		}
	}
	fmt.Println()
	return nil
}

// growthLoad fills the source side with n rows and moves them in one
// coordinator cycle, as a process, and checks both tables agree.
func growthLoad(ctx context.Context, e engine, bin string, dir gapsync.Direction, n int) (time.Duration, *procZones, error) {
	inetDSN, err := e.fresh("gapsync_bench_internet")
	if err != nil {
		return 0, nil, err
	}
	intraDSN, err := e.fresh("gapsync_bench_intranet")
	if err != nil {
		return 0, nil, err
	}
	for _, d := range []string{inetDSN, intraDSN} {
		if err := execSQL(d, e.ddl); err != nil {
			return 0, nil, err
		}
	}
	src := inetDSN
	if dir == gapsync.Pull {
		src = intraDSN
	}
	if err := e.fill(src, n); err != nil {
		return 0, nil, err
	}
	z, err := startZones(bin, "load_rows:id:updated_at:"+string(dir), inetDSN, intraDSN, "", "")
	if err != nil {
		return 0, nil, err
	}
	took, err := z.internet()
	z.stop()
	if err != nil {
		return 0, nil, err
	}
	inet, err := storage.Open(inetDSN, nil)
	if err != nil {
		return 0, nil, err
	}
	defer inet.Close()
	intra, err := storage.Open(intraDSN, nil)
	if err != nil {
		return 0, nil, err
	}
	defer intra.Close()
	return took, z, sameTable(ctx, loadTable(dir), inet, intra)
}
