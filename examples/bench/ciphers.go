package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
)

// cipherReport measures the initial load of n rows under each cipher in
// the same run: one warm-up of each, then runs rounds of both, the order
// alternating from round to round so that neither always runs second, and
// prints the medians and the median of the per-round ratios, of the wall
// time and of this process's CPU time (the coordinator, the gateway, both
// drivers and the envelopes: everything but the database server), which a
// busy machine disturbs far less than the wall time.
func cipherReport(ctx context.Context, dsn string, n, runs int) error {
	defer func(c crypto.Cipher) { keyCipher = c }(keyCipher)
	aes, sm4 := crypto.AES256GCM, crypto.SM4GCM
	var walls, cpus [2][]time.Duration // by cipher
	var wallRatios, cpuRatios []time.Duration
	ratio := func(a, b time.Duration) time.Duration {
		return time.Duration(float64(time.Second) * b.Seconds() / a.Seconds())
	}
	for i := 0; i <= runs; i++ {
		order := []crypto.Cipher{aes, sm4}
		if i%2 == 1 {
			order = []crypto.Cipher{sm4, aes}
		}
		var wall, cpu [2]time.Duration
		for _, c := range order {
			keyCipher = c
			before := cpuTime()
			z, _, load, err := initialLoad(ctx, mysqlEngine(dsn), gapsync.Push, n, i == 0)
			if z != nil {
				z.Close()
			}
			if err != nil {
				return fmt.Errorf("%v: %w", c, err)
			}
			wall[c], cpu[c] = load, cpuTime()-before
		}
		what := fmt.Sprintf("run %d", i)
		if i == 0 {
			what = "warm-up"
		}
		fmt.Fprintf(os.Stderr, "bench: ciphers %s: aes-256-gcm %.2f s (CPU %.2f s), sm4-gcm %.2f s (CPU %.2f s), sm4 ÷ aes %.3f (CPU %.3f)\n",
			what, wall[aes].Seconds(), cpu[aes].Seconds(), wall[sm4].Seconds(), cpu[sm4].Seconds(),
			ratio(wall[aes], wall[sm4]).Seconds(), ratio(cpu[aes], cpu[sm4]).Seconds())
		if i > 0 {
			for _, c := range []crypto.Cipher{aes, sm4} {
				walls[c], cpus[c] = append(walls[c], wall[c]), append(cpus[c], cpu[c])
			}
			wallRatios, cpuRatios = append(wallRatios, ratio(wall[aes], wall[sm4])), append(cpuRatios, ratio(cpu[aes], cpu[sm4]))
		}
	}
	list := func(ds []time.Duration) string {
		var s []string
		for _, d := range ds {
			s = append(s, fmt.Sprintf("%.3f", d.Seconds()))
		}
		return strings.Join(s, ", ")
	}
	fmt.Printf("| initial load, %d rows, median of %d runs | AES-256-GCM | SM4-GCM | ratio SM4 ÷ AES |\n|---|---|---|---|\n", n, runs)
	fmt.Printf("| wall time | %.2f s, %.0f rows/s | %.2f s, %.0f rows/s | per run %s; median **%.3f** |\n",
		median(walls[aes]).Seconds(), float64(n)/median(walls[aes]).Seconds(), median(walls[sm4]).Seconds(), float64(n)/median(walls[sm4]).Seconds(),
		list(wallRatios), median(wallRatios).Seconds())
	fmt.Printf("| CPU time of the gapsync process | %.2f s | %.2f s | per run %s; median **%.3f** |\n\n",
		median(cpus[aes]).Seconds(), median(cpus[sm4]).Seconds(), list(cpuRatios), median(cpuRatios).Seconds())
	return nil
}
