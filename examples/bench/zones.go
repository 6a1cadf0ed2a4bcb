package main

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
)

// procZones is two zone databases with the three zone mains as
// processes, as a deployment runs them: the gateway (external) serves
// while the zones live; the coordinator (internet -once) and the worker
// (intranet -once) run one cycle each and exit. Each role's peak RSS is
// the largest getrusage max RSS of its processes, so it is the role's
// own and not the bench's.
type procZones struct {
	bin, table          string // the mains' directory; the -table spec
	inetDSN, intraDSN   string
	inetStore, intraDir string // dir: stores ("" for rows only)
	env                 []string
	url                 string
	gw                  *exec.Cmd
	gwPeak              func() int64     // the gateway's peak RSS so far, KiB
	rss                 map[string]int64 // KiB, by role
	steps               []string         // each run of internet or intranet, with its time
}

// startZones prepares the intranet database for table (a -table spec),
// starts the gateway on a free loopback port and waits until it listens.
func startZones(bin, table, inetDSN, intraDSN, inetStore, intraStore string) (*procZones, error) {
	key, _ := crypto.GenerateCipherKey(keyCipher, "bench")
	z := &procZones{bin: bin, table: table, inetDSN: inetDSN, intraDSN: intraDSN, inetStore: inetStore, intraDir: intraStore,
		env: append(os.Environ(), "GAPSYNC_KEYS="+key.Encode()), rss: map[string]int64{}}
	if _, _, err := z.proc("intranet", "-db", intraDSN, "-table", table); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	z.url = "http://" + addr
	z.gw = exec.Command(filepath.Join(bin, "external"), "-listen", addr, "-db", intraDSN)
	z.gw.Env = z.env
	if err := z.gw.Start(); err != nil {
		return nil, err
	}
	z.gwPeak = watchPeak(z.gw)
	for i := 0; i < 400; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return z, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	z.stop()
	return nil, fmt.Errorf("the gateway did not listen on %s in 10 s", addr)
}

// stop ends the gateway and records its peak RSS.
func (z *procZones) stop() {
	if z.gw == nil {
		return
	}
	z.gw.Process.Signal(syscall.SIGTERM)
	z.gw.Wait()
	z.rss["external"] = max(z.rss["external"], z.gwPeak())
	z.gw = nil
}

// internet runs one coordinator cycle and returns its wall time.
func (z *procZones) internet() (time.Duration, error) {
	args := []string{"-once", "-db", z.inetDSN, "-gateway", z.url, "-table", z.table, "-lag", "1s"}
	if z.inetStore != "" {
		args = append(args, "-store", "dir:"+z.inetStore)
	}
	took, _, err := z.proc("internet", args...)
	return took, err
}

// intranet runs the intranet worker once and returns its wall time.
func (z *procZones) intranet() (time.Duration, error) {
	took, _, err := z.proc("intranet", "-once", "-db", z.intraDSN, "-store", "dir:"+z.intraDir)
	return took, err
}

// proc runs one zone main to completion and returns its wall time and
// peak RSS in KiB; for a cycle (-once) it notes both.
func (z *procZones) proc(name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.Command(filepath.Join(z.bin, name), args...)
	cmd.Env = z.env
	out, err := os.CreateTemp("", "gapsync-bench-log-")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	var peak func() int64
	if err = cmd.Start(); err == nil {
		peak = watchPeak(cmd)
		err = cmd.Wait()
	}
	took := time.Since(start)
	if err != nil {
		log, _ := os.ReadFile(out.Name())
		return took, 0, fmt.Errorf("%s: %w\n%s", name, err, log)
	}
	rss := peak()
	if len(args) > 0 && args[0] == "-once" { // a cycle, not the setup
		z.rss[name] = max(z.rss[name], rss)
		z.steps = append(z.steps, fmt.Sprintf("%s %.1f s", name, took.Seconds()))
	}
	return took, rss, nil
}

// deliver runs the coordinator and the worker in turn, as many times as
// it takes (up to rounds each), until the receiving side has published
// want files, and returns the time they took.
func (z *procZones) deliver(dir gapsync.Direction, want, rounds int) (time.Duration, error) {
	recv := z.intraDSN
	if dir == gapsync.Pull {
		recv = z.inetDSN
	}
	db, err := sql.Open("mysql", recv)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	published := func() (int, error) {
		var n int
		err := db.QueryRow("SELECT COUNT(*) FROM file_record WHERE status = ?", gapsync.FilePublished).Scan(&n)
		return n, err
	}
	var total time.Duration
	for range rounds {
		for _, step := range []func() (time.Duration, error){z.internet, z.intranet} {
			took, err := step()
			total += took
			if err != nil {
				return total, err
			}
			n, err := published()
			if err != nil {
				return total, err
			}
			if n == want {
				return total, nil
			}
		}
	}
	n, _ := published()
	return total, fmt.Errorf("%d of %d files published after %d rounds (%s)", n, want, rounds, strings.Join(z.steps, ", "))
}

// rssCells is the peak RSS of each role, as table cells.
func (z *procZones) rssCells() string {
	var cells []string
	for _, role := range []string{"internet", "external", "intranet"} {
		if kib, ok := z.rss[role]; ok {
			cells = append(cells, fmt.Sprintf("%d MiB", kib>>10))
		} else {
			cells = append(cells, "")
		}
	}
	return strings.Join(cells, " | ")
}

// watchPeak follows the peak RSS (VmHWM, KiB) of cmd's process from
// /proc while it runs, and returns what reads it, to call once cmd was
// waited for. The child's own accounting (rusage's ru_maxrss) is no
// measure here: Linux keeps in it the address space the child started
// from, which for a child of this process (started with vfork) is this
// process's, so every role would read at least the bench's own peak.
// Where /proc cannot be read the rusage is the figure.
func watchPeak(cmd *exec.Cmd) func() int64 {
	var (
		mu   sync.Mutex
		high int64
	)
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	read := func() {
		b, err := os.ReadFile(status)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
					mu.Lock()
					high = max(high, kb)
					mu.Unlock()
				}
			}
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		if high == 0 && cmd.ProcessState != nil {
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				return ru.Maxrss
			}
		}
		return high
	}
}
