// Command chaos is gapsync's fault-injection suite. It builds the three
// zone mains, runs them as processes against MariaDB, lets a writer on
// each side insert, update, delete (hard and soft), hold transactions
// open and upload files while it kills roles and the database with
// SIGKILL and breaks connections with a fault proxy; then it waits for
// quiet and checks that both sides agree with each other and with what
// the writers did.
//
//	go run ./examples/chaos -trials 20 -seed 1
//	go run ./examples/chaos -quick -trials 2        # the CI run
//	go run ./examples/chaos -mysql 'user:pw@tcp(db:3306)/' -trials 5   # against your own server
//
// It prints one line per trial and a last line
//
//	chaos: N/N converged, L lost, D doubled, F files bad
//
// and exits 1 if any trial did not converge. A trial's seed replays its
// fault schedule and its writers' choices (timing still varies);
// -v prints the schedule and what happened when.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

func main() {
	mysql.SetLogger(log.New(io.Discard, "", 0)) // connections die here on purpose
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(ctx context.Context) (bool, error) {
	cfg := Config{Out: os.Stdout, Notes: os.Stderr}
	flag.IntVar(&cfg.Trials, "trials", 5, "number of trials")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "seed of the first trial; trial i uses seed+i (0: from the clock)")
	flag.BoolVar(&cfg.Quick, "quick", false, "short fault phase and small files (the CI run)")
	flag.DurationVar(&cfg.Duration, "duration", 0, "fault phase per trial (default 60s, 20s with -quick)")
	flag.DurationVar(&cfg.Settle, "settle", 0, "longest wait for convergence after the faults (default 3m, 90s with -quick)")
	flag.StringVar(&cfg.MySQL, "mysql", os.Getenv("GAPSYNC_CHAOS_MYSQL"), "use this existing server (a DSN whose user may create and drop databases) instead of a private mariadbd; it is never killed")
	flag.IntVar(&cfg.Port, "port", 3391, "port of the private mariadbd")
	flag.StringVar(&cfg.Dir, "dir", "", "working directory (default: a temporary one, removed when every trial converged)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the databases, stores and logs of converged trials too")
	flag.StringVar(&cfg.Repo, "repo", "", "build the zone mains from this checkout of the module (default: the one around the working directory)")
	verbose := flag.Bool("v", false, "print each trial's schedule, faults and notes on stderr")
	flag.Parse()
	if *verbose {
		cfg.Verbose = os.Stderr
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano() % 1_000_000)
	}
	sum, err := Run(ctx, cfg)
	fmt.Println(sum)
	return err == nil && sum.Converged == sum.Trials && sum.Trials == cfg.Trials, err
}
