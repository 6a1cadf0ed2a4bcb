package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
)

// Config is one run of the suite.
type Config struct {
	Trials   int
	Seed     uint64        // the first trial's seed; trial i uses Seed+i
	Quick    bool          // small files, short fault phase: for CI
	Duration time.Duration // fault phase per trial (0: 20 s quick, 60 s otherwise)
	Settle   time.Duration // longest wait for convergence after the faults (0: 3 min, 90 s with Quick)
	MySQL    string        // an existing server's DSN; empty starts a private mariadbd
	Port     int           // the private mariadbd's port
	Dir      string        // working directory (empty: a temporary one)
	Keep     bool          // keep databases, stores and logs of converged trials too
	Repo     string        // the module root to build the mains from (empty: found from the working directory)
	Out      io.Writer     // one line per trial and the summary
	Notes    io.Writer     // what a trial that did not converge found, row by row (nil: Verbose)
	Verbose  io.Writer     // the schedule and every note (nil: quiet)
}

// Summary is the outcome of a run.
type Summary struct {
	Trials, Converged, Lost, Doubled, FilesBad int
}

func (s Summary) String() string {
	return fmt.Sprintf("chaos: %d/%d converged, %d lost, %d doubled, %d files bad", s.Converged, s.Trials, s.Lost, s.Doubled, s.FilesBad)
}

// Run builds the zone mains, starts (or connects to) the server and runs
// the trials one after the other.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	var sum Summary
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Verbose == nil {
		cfg.Verbose = io.Discard
	}
	if cfg.Duration == 0 {
		cfg.Duration = 60 * time.Second
		if cfg.Quick {
			cfg.Duration = 20 * time.Second
		}
	}
	if cfg.Notes == nil {
		cfg.Notes = cfg.Verbose
	}
	if cfg.Settle == 0 {
		cfg.Settle = 3 * time.Minute
		if cfg.Quick {
			cfg.Settle = 90 * time.Second
		}
	}
	if cfg.Port == 0 {
		cfg.Port = 3391
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "gapsync-chaos-")
		if err != nil {
			return sum, err
		}
		dir = d
	}
	repo := cfg.Repo
	if repo == "" {
		r, err := moduleRoot()
		if err != nil {
			return sum, err
		}
		repo = r
	}
	bin := filepath.Join(dir, "bin")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator), "./examples/internet", "./examples/external", "./examples/intranet")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return sum, fmt.Errorf("build the zone mains: %v\n%s", err, out)
	}
	var srv *Server
	var err error
	if cfg.MySQL != "" {
		srv, err = External(ctx, cfg.MySQL)
	} else {
		srv, err = StartPrivate(ctx, filepath.Join(dir, "mariadb"), cfg.Port)
	}
	if err != nil {
		return sum, err
	}
	defer srv.Stop()
	fmt.Fprintf(cfg.Verbose, "chaos: server %s (private %v), work in %s\n", srv.Addr, srv.Private(), dir)
	allGood := true
	for i := 0; i < cfg.Trials && ctx.Err() == nil; i++ {
		seed := cfg.Seed + uint64(i)
		tr := &trial{cfg: cfg, n: i + 1, seed: seed, srv: srv, bin: bin, dir: filepath.Join(dir, fmt.Sprintf("trial-%d-seed-%d", i+1, seed))}
		res, err := tr.run(ctx)
		if err != nil {
			fmt.Fprintf(cfg.Out, "trial %d seed %d: ERROR %v (kept in %s)\n", tr.n, seed, err, tr.dir)
			sum.Trials++
			allGood = false
			continue
		}
		sum.Trials++
		if res.converged {
			sum.Converged++
		} else {
			allGood = false
		}
		sum.Lost += res.v.Lost
		sum.Doubled += res.v.Doubled
		sum.FilesBad += res.v.FilesBad
		fmt.Fprintln(cfg.Out, res.line)
		for _, n := range res.v.Notes {
			w := cfg.Verbose
			if !res.converged {
				w = cfg.Notes
			}
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	if allGood && !cfg.Keep && cfg.Dir == "" {
		srv.Stop()
		os.RemoveAll(dir)
	}
	return sum, ctx.Err()
}

func moduleRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/gapsync/gapsync\n") {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("run from inside the gapsync module, or pass -repo")
		}
		d = p
	}
}

type trial struct {
	cfg  Config
	n    int
	seed uint64
	srv  *Server
	bin  string
	dir  string
}

type trialResult struct {
	converged bool
	v         Verdict
	line      string
}

// event is one scheduled fault.
type event struct {
	at    time.Duration
	what  string // "kill coordinator", "kill gateway", "kill worker", "kill mariadb", "proxy"
	proxy int    // 0: coordinator→gateway, 1: gateway→intranet DB
	fault Fault
	down  time.Duration // how long mariadb stays down
	dur   time.Duration // how long a proxy fault stays armed
}

func (e event) String() string {
	if e.what == "proxy" {
		return fmt.Sprintf("%6.2fs %s %s for %s", e.at.Seconds(), []string{"coord→gw", "gw→db"}[e.proxy], e.fault, e.dur)
	}
	if e.down > 0 {
		return fmt.Sprintf("%6.2fs %s, down %s", e.at.Seconds(), e.what, e.down)
	}
	return fmt.Sprintf("%6.2fs %s", e.at.Seconds(), e.what)
}

// schedule draws the trial's faults from its seed alone, so that a seed
// replays the same schedule.
func schedule(seed uint64, d time.Duration, private bool) []event {
	r := rand.New(rand.NewPCG(seed, 0xfa17))
	var out []event
	dbKills := 0
	for at := time.Duration(1000+r.IntN(2000)) * time.Millisecond; at < d; at += time.Duration(800+r.IntN(3500)) * time.Millisecond {
		e := event{at: at}
		switch p := r.IntN(100); {
		case p < 15:
			e.what = "kill coordinator"
		case p < 27:
			e.what = "kill gateway"
		case p < 39:
			e.what = "kill worker"
		case p < 45 && private && dbKills < 3:
			e.what = "kill mariadb"
			e.down = time.Duration(200+r.IntN(2500)) * time.Millisecond
			dbKills++
		default:
			e.what = "proxy"
			e.proxy = r.IntN(2)
			kinds := []FaultKind{Reset, Stall, CutRequest, CutResponse}
			e.fault.Kind = kinds[r.IntN(len(kinds))]
			// k from 0 bytes to 256 KiB, spread over the orders of magnitude.
			e.fault.K = int64(1<<r.IntN(18)) - 1 + int64(r.IntN(3))
			e.dur = time.Duration(200+r.IntN(3000)) * time.Millisecond
		}
		out = append(out, e)
	}
	return out
}

func (t *trial) run(ctx context.Context) (trialResult, error) {
	var res trialResult
	start := time.Now()
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return res, err
	}
	vlog := func(format string, args ...any) {
		fmt.Fprintf(t.cfg.Verbose, "trial %d +%5.1fs "+format+"\n", append([]any{t.n, time.Since(start).Seconds()}, args...)...)
	}
	names := [2]string{fmt.Sprintf("chaos_%d_inet", t.seed), fmt.Sprintf("chaos_%d_intra", t.seed)}
	admin, err := sql.Open("mysql", t.srv.DSN(""))
	if err != nil {
		return res, err
	}
	defer admin.Close()
	for _, n := range names {
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+n+"`"); err != nil {
			return res, err
		}
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+n+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			return res, err
		}
	}
	stores := [2]string{filepath.Join(t.dir, "internet-store"), filepath.Join(t.dir, "intranet-store")}
	var dbs [2]*sql.DB
	for i, n := range names {
		os.MkdirAll(stores[i], 0o755)
		db, err := sql.Open("mysql", t.srv.AppDSN(n))
		if err != nil {
			return res, err
		}
		defer db.Close()
		db.SetMaxOpenConns(16)
		dbs[i] = db
		for _, q := range schema {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return res, fmt.Errorf("%s: %w", n, err)
			}
		}
		// line needs a soft-delete column, which -table cannot say.
		sdb, err := storage.Open(t.srv.DSN(n), nil)
		if err != nil {
			return res, err
		}
		err = sdb.Migrate(ctx)
		if err == nil {
			err = sdb.Configure(ctx, gapsync.Table{Name: "line", Direction: gapsync.Both, Key: []string{"order_id", "line_no"},
				Cursor: "updated_at", SoftDelete: "deleted", Enabled: true})
		}
		sdb.Close()
		if err != nil {
			return res, fmt.Errorf("%s: configure line: %w", n, err)
		}
	}
	key, err := crypto.GenerateKey("chaos")
	if err != nil {
		return res, err
	}
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())

	// The intranet is prepared first, as a deployment does it.
	var tableArgs []string
	for _, s := range tableSpecs {
		tableArgs = append(tableArgs, "-table", s)
	}
	prep := exec.CommandContext(ctx, filepath.Join(t.bin, "intranet"), append([]string{"-db", t.srv.DSN(names[1]), "-tombstones"}, tableArgs...)...)
	prep.Env = env
	if out, err := prep.CombinedOutput(); err != nil {
		return res, fmt.Errorf("prepare the intranet: %v\n%s", err, out)
	}

	gwAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	gwProxy, err := NewProxy("coord→gw", gwAddr)
	if err != nil {
		return res, err
	}
	defer gwProxy.Close()
	dbProxy, err := NewProxy("gw→db", t.srv.Addr)
	if err != nil {
		return res, err
	}
	defer dbProxy.Close()
	proxies := []*Proxy{gwProxy, dbProxy}

	roles := map[string]*Role{
		"worker": {Name: "worker", Bin: filepath.Join(t.bin, "intranet"), Env: env, Log: filepath.Join(t.dir, "worker.log"),
			Args: append([]string{"-db", t.srv.DSN(names[1]), "-tombstones", "-store", "dir:" + stores[1], "-interval", "1s"}, tableArgs...)},
		"gateway": {Name: "gateway", Bin: filepath.Join(t.bin, "external"), Env: env, Log: filepath.Join(t.dir, "gateway.log"),
			Args: []string{"-listen", gwAddr, "-db", t.srv.DSNVia(dbProxy.Addr(), names[1]), "-lag", "500ms"}},
		"coordinator": {Name: "coordinator", Bin: filepath.Join(t.bin, "internet"), Env: env, Log: filepath.Join(t.dir, "coordinator.log"),
			Args: append([]string{"-db", t.srv.DSN(names[0]), "-gateway", "http://" + gwProxy.Addr(), "-tombstones",
				"-store", "dir:" + stores[0], "-interval", "1s", "-lag", "500ms"}, tableArgs...)},
	}
	if hasFlag(filepath.Join(t.bin, "internet"), "lease-ttl") {
		// A killed coordinator's lease lapses in seconds, not a minute.
		roles["coordinator"].Args = append(roles["coordinator"].Args, "-lease-ttl", "6s")
	}
	rctx, stopRoles := context.WithCancel(ctx)
	defer stopRoles()
	var rwg sync.WaitGroup
	for _, name := range []string{"worker", "gateway", "coordinator"} {
		rwg.Add(1)
		go roles[name].Supervise(rctx, &rwg)
	}
	defer rwg.Wait()

	j := newJournal()
	wctx, stopWriters := context.WithCancel(ctx)
	defer stopWriters()
	var wwg sync.WaitGroup
	wr := rand.New(rand.NewPCG(t.seed, 0x3717e))
	for i, s := range []string{"internet", "intranet"} {
		for _, slot := range writerSlots {
			w := &Writer{Side: s, Table: slot.table, Base: slot.base, DB: dbs[i], Store: stores[i], Rand: rand.New(rand.NewPCG(wr.Uint64(), wr.Uint64())), Journal: j, Quick: t.cfg.Quick, Log: vlog}
			wwg.Add(1)
			go w.Run(wctx, &wwg)
		}
	}

	// The fault phase.
	events := schedule(t.seed, t.cfg.Duration, t.srv.Private())
	for _, e := range events {
		fmt.Fprintf(t.cfg.Verbose, "trial %d schedule %s\n", t.n, e)
	}
	counts := map[string]int{}
	for _, e := range events {
		if d := time.Until(start.Add(e.at)); d > 0 {
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(d):
			}
		}
		switch e.what {
		case "kill mariadb":
			vlog("%s", e)
			t.srv.Kill()
			time.Sleep(e.down)
			if err := t.srv.Restart(ctx); err != nil {
				return res, fmt.Errorf("restart mariadb: %w", err)
			}
			vlog("mariadb back")
		case "proxy":
			f := e.fault
			f.Until = time.Now().Add(e.dur)
			proxies[e.proxy].SetFault(f)
			vlog("%s", e)
			e.what = "proxy " + f.Kind.String()
		default:
			role := roles[strings.TrimPrefix(e.what, "kill ")]
			if !role.Kill() {
				e.what += " (not running)"
			}
			vlog("%s", e.what)
		}
		counts[e.what]++
	}
	if d := time.Until(start.Add(t.cfg.Duration)); d > 0 {
		time.Sleep(d)
	}
	stopWriters()
	wwg.Wait()
	for _, p := range proxies {
		p.SetFault(Fault{})
	}
	faultEnd := time.Now()
	vlog("faults over; writers stopped: %s", j.Summary())

	// Quiet: wait until both sides agree with each other and the journal,
	// then until three more cycles moved nothing.
	inet := side{name: "internet", db: dbs[0], store: stores[0]}
	intra := side{name: "intranet", db: dbs[1], store: stores[1]}
	var v Verdict
	deadline := faultEnd.Add(t.cfg.Settle)
	converged, echo := false, int64(0)
	var lastShown time.Time
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Second)
		v, err = Check(ctx, inet, intra, j)
		if err != nil {
			vlog("check: %v", err)
			continue
		}
		if !v.Clean() {
			if time.Since(lastShown) > 10*time.Second {
				lastShown = time.Now()
				first := ""
				if len(v.Notes) > 0 {
					first = v.Notes[0]
				}
				vlog("not settled: lost %d doubled %d differ %d files bad %d stuck %d; %s", v.Lost, v.Doubled, v.Differ, v.FilesBad, v.Stuck, first)
			}
			continue
		}
		moved, err := quietCycles(ctx, dbs[0], 3, deadline)
		if err != nil {
			vlog("quiet cycles: %v", err)
			continue
		}
		echo = moved
		if moved > 0 {
			vlog("quiet cycles moved %d rows", moved)
			continue
		}
		if v, err = Check(ctx, inet, intra, j); err == nil && v.Clean() {
			converged = true
			break
		}
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("interrupted while settling: %w", ctx.Err())
	}
	if !converged {
		if v2, err := Check(ctx, inet, intra, j); err == nil {
			v = v2
		}
		if echo > 0 {
			v.note("the last quiet cycles still moved %d rows", echo)
		}
		if rows, err := dbs[0].QueryContext(ctx, "SELECT table_name, winner, policy, COUNT(*) FROM sync_conflict GROUP BY table_name, winner, policy"); err == nil {
			for rows.Next() {
				var tbl, winner, policy string
				var n int
				if rows.Scan(&tbl, &winner, &policy, &n) == nil {
					v.Notes = append(v.Notes, fmt.Sprintf("sync_conflict: %s %d settled winner=%s policy=%s (the writers never touch a key of the other side)", tbl, n, winner, policy))
				}
			}
			rows.Close()
		}
	}
	settle := time.Since(faultEnd)
	var exits []string
	for _, name := range []string{"coordinator", "gateway", "worker"} {
		if c := roles[name].Crashes(); len(c) > 0 {
			exits = append(exits, fmt.Sprintf("%s %d", name, len(c)))
			for _, e := range c {
				v.note("%s exited unasked: %s", name, e)
			}
		}
	}
	stopRoles()
	rwg.Wait()

	var fl []string
	for k, n := range counts {
		fl = append(fl, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(fl)
	verdict := "converged"
	if !converged {
		verdict = "NOT converged"
	}
	res.converged, res.v = converged, v
	res.line = fmt.Sprintf("trial %d seed %d: %s after %s; %d faults (%s); %d rows, %d files checked; lost %d, doubled %d, differ %d, files bad %d, stuck %d; unasked exits: %s; writers: %s",
		t.n, t.seed, verdict, settle.Round(time.Second), len(events), strings.Join(fl, ", "), v.Rows, v.Files, v.Lost, v.Doubled, v.Differ, v.FilesBad, v.Stuck,
		orNone(exits), j.Summary())
	if converged && !t.cfg.Keep {
		for _, n := range names {
			admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+n+"`")
		}
		os.RemoveAll(t.dir)
	} else {
		res.line += "; kept in " + t.dir
	}
	return res, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// quietCycles waits for n more coordinator cycles in sync_log and returns
// the rows they moved.
func quietCycles(ctx context.Context, db *sql.DB, n int, deadline time.Time) (int64, error) {
	var last int64
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM sync_log").Scan(&last); err != nil {
		return 0, err
	}
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		var runs, rows int64
		var failed int64
		err := db.QueryRowContext(ctx, "SELECT COUNT(DISTINCT run_id), COALESCE(SUM(rows_read), 0), COALESCE(SUM(status <> 'ok'), 0) FROM sync_log WHERE id > ?", last).
			Scan(&runs, &rows, &failed)
		if err != nil {
			return 0, err
		}
		if rows > 0 {
			return rows, nil
		}
		if runs >= int64(n) {
			if failed > 0 {
				return 0, fmt.Errorf("%d failed runs among the quiet cycles", failed)
			}
			return 0, nil
		}
	}
	return 0, errors.New("no cycles before the deadline")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// hasFlag reports whether the program at bin knows -name.
func hasFlag(bin, name string) bool {
	out, _ := exec.Command(bin, "-h").CombinedOutput()
	return strings.Contains(string(out), "-"+name+" ")
}
