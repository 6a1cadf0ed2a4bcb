package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/transport"
)

// TestExternalUnderSlowBodyAttack builds the stock external main and runs
// it as a process over an SQLite intranet database, then holds a slow-body
// attack on it: 16 connections at all times, with no key, each announcing
// the largest body the gateway accepts, sending nearly all of it at once
// and then trickling the rest. While the attack runs, a coordinator cycle
// (the internet main) must still succeed; the gateway's peak resident
// memory must stay under 200 MiB; and the gateway must close every attack
// connection within its configured timeouts.
func TestExternalUnderSlowBodyAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs programs")
	}
	is := is.New(t)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./internet", "./external", "./intranet")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build mains: %v\n%s", err, out)
	}
	key, err := crypto.GenerateKey("attack1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())

	dir := t.TempDir()
	inetPath, intraPath := filepath.Join(dir, "internet.db"), filepath.Join(dir, "intranet.db")
	ctx := context.Background()
	const rows = 300
	for _, p := range []string{inetPath, intraPath} {
		db, err := storage.OpenSQLite(p, nil)
		is.NoErr(err)
		_, err = db.Bun().ExecContext(ctx, `CREATE TABLE demo (id INTEGER PRIMARY KEY, title TEXT NOT NULL, updated_at DATETIME NOT NULL)`)
		is.NoErr(err)
		if p == inetPath {
			for i := 1; i <= rows; i++ {
				_, err := db.Bun().DB.ExecContext(ctx, `INSERT INTO demo VALUES (?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 minute'))`, i, fmt.Sprintf("行 %d", i))
				is.NoErr(err)
			}
		}
		is.NoErr(db.Close())
	}
	run := func(name string, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("intranet", "-db", "sqlite:"+intraPath, "-table", "demo:id:updated_at:both")
	if err != nil {
		t.Fatalf("intranet: %v\n%s", err, out)
	}

	// Short timeouts, so that the test sees the gateway enforce them; the
	// size limits are the defaults.
	const (
		grace         = 2 * time.Second
		readTimeout   = 5 * time.Second
		headerTimeout = 2 * time.Second
	)
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	external := startExternal(t, bin, env, addr, "sqlite:"+intraPath, "-metrics", metricsAddr,
		"-body-grace", grace.String(), "-read-timeout", readTimeout.String(), "-header-timeout", headerTimeout.String(),
		"-idle-timeout", "2s", "-write-timeout", "5s")

	// The attack: 16 connections at all times until quit.
	quit := make(chan struct{})
	var (
		mu         sync.Mutex
		lifetimes  []time.Duration
		statuses   = map[int]int{}
		stillOpen  int
		attackWait sync.WaitGroup
	)
	for i := 0; i < 16; i++ {
		attackWait.Add(1)
		go func() {
			defer attackWait.Done()
			for {
				select {
				case <-quit:
					return
				default:
				}
				life, status, closed := slowBody(addr, transport.DefaultMaxBody, readTimeout+headerTimeout+5*time.Second)
				mu.Lock()
				lifetimes = append(lifetimes, life)
				statuses[status]++
				if !closed {
					stillOpen++
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	time.Sleep(time.Second) // the attack is in full swing

	began := time.Now()
	out, err = run("internet", "-once", "-db", "sqlite:"+inetPath, "-gateway", "http://"+addr,
		"-table", "demo:id:updated_at:both", "-lag", "200ms")
	took := time.Since(began)
	if err != nil || !strings.Contains(out, fmt.Sprintf("rows_pushed=%d ", rows)) {
		t.Fatalf("coordinator cycle under attack: %v\n%s", err, out)
	}
	t.Logf("coordinator cycle under attack took %v", took.Round(time.Millisecond))
	time.Sleep(readTimeout) // let the attack run a while past the cycle too
	close(quit)
	attackWait.Wait()

	hwm := peakRSS(t, external.Process.Pid)
	scraped := scrape(t, metricsAddr)
	stop(t, external)

	mu.Lock()
	defer mu.Unlock()
	var longest time.Duration
	for _, l := range lifetimes {
		longest = max(longest, l)
	}
	t.Logf("%d attack connections; HTTP statuses %v; longest lived %v; gateway peak RSS %d MiB",
		len(lifetimes), statuses, longest.Round(time.Millisecond), hwm>>20)
	is.Equal(stillOpen, 0)                                   // every attack connection was closed by the gateway
	is.True(longest < readTimeout+headerTimeout+time.Second) // within the configured timeouts
	is.True(statuses[http.StatusRequestTimeout] > 0)         // slow bodies were cut off
	is.True(statuses[http.StatusServiceUnavailable] > 0)     // the rest were turned away at once
	is.True(hwm < 200<<20)
	is.True(strings.Contains(scraped, `result="too_slow"`))
	is.True(strings.Contains(scraped, `result="busy"`))

	// The cycle's rows arrived.
	intra, err := storage.OpenSQLite(intraPath, nil)
	is.NoErr(err)
	defer intra.Close()
	demo := gapsync.Table{Name: "demo", Key: []string{"id"}, Cursor: "updated_at"}
	_, n, err := intra.Checksum(ctx, demo)
	is.NoErr(err)
	is.Equal(n, int64(rows))
}

// slowBody is one attack connection: it announces size bytes, sends all
// but 4 KiB at once, then trickles a byte every 100 ms. It returns how long
// the connection lived, the status of the gateway's answer (0: none), and
// whether the gateway closed it within wait.
func slowBody(addr string, size int64, wait time.Duration) (time.Duration, int, bool) {
	began := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, 0, true
	}
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", transport.PathApply, size)
		junk := bytes.Repeat([]byte{0x5a}, 256<<10)
		for sent := int64(0); sent < size-4096; {
			n, err := conn.Write(junk[:min(int64(len(junk)), size-4096-sent)])
			if err != nil {
				return
			}
			sent += int64(n)
		}
		for {
			time.Sleep(100 * time.Millisecond)
			if _, err := conn.Write([]byte{0x5a}); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(began.Add(wait))
	br := bufio.NewReader(conn)
	status := 0
	if resp, err := http.ReadResponse(br, nil); err == nil {
		status = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
	}
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	closed := !(errors.As(err, &ne) && ne.Timeout())
	life := time.Since(began)
	conn.Close()
	<-done
	return life, status, closed
}

// peakRSS reads a process's peak resident set (VmHWM) from /proc.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
