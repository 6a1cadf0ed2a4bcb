package syncer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

const notesDDL = `CREATE TABLE notes (
	id BIGINT NOT NULL PRIMARY KEY,
	body VARCHAR(200) NULL,
	qty BIGINT NULL,
	gone INT NULL,
	updated_at DATETIME(6) NULL)`

var notes = gapsync.Table{Name: "notes", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}

// twoWay sets up notes on both sides, with tombstones for hard deletes.
func twoWay(t *testing.T, kind string, o zoneOpts, tb gapsync.Table) *zones {
	z := newZones(t, kind, o)
	z.both(tb, notesDDL)
	for _, db := range []*storage.DB{z.inet, z.intra} {
		if err := db.InstallTombstones(context.Background(), tb); err != nil {
			t.Fatal(err)
		}
	}
	return z
}

// set writes a note on one side, stamped by that side's clock.
func (z *zones) set(side gapsync.Side, id int, body string, qty int) {
	z.t.Helper()
	db := z.src()
	if side == gapsync.Intranet {
		db = z.dst()
	}
	q := "INSERT INTO notes (id, body, qty, updated_at) VALUES (?, ?, ?, " + z.now + ") ON DUPLICATE KEY UPDATE body = VALUES(body), qty = VALUES(qty), updated_at = VALUES(updated_at)"
	if z.kind == "sqlite" {
		q = "INSERT INTO notes (id, body, qty, updated_at) VALUES (?, ?, ?, " + z.now + ") ON CONFLICT (id) DO UPDATE SET body = excluded.body, qty = excluded.qty, updated_at = excluded.updated_at"
	}
	mustExec(z.t, db, q, id, body, qty)
}

func (z *zones) del(side gapsync.Side, id int) {
	z.t.Helper()
	db := z.src()
	if side == gapsync.Intranet {
		db = z.dst()
	}
	mustExec(z.t, db, "DELETE FROM notes WHERE id = ?", id)
}

func (z *zones) body(side gapsync.Side, id int) string {
	z.t.Helper()
	db := z.src()
	if side == gapsync.Intranet {
		db = z.dst()
	}
	var b string
	err := db.QueryRow("SELECT COALESCE(body, '<null>') FROM notes WHERE id = ?", id).Scan(&b)
	if err != nil {
		return "<none>"
	}
	return b
}

// cycle waits out the lag and runs one cycle, which must succeed.
func (z *zones) cycle() *syncer.Report {
	z.t.Helper()
	z.waitLag()
	r, err := z.runOnce()
	if err != nil {
		z.t.Fatalf("cycle: %v", err)
	}
	return r
}

// Must-show 1: a round trip, then 20 quiet cycles that move nothing.
func TestRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := twoWay(t, kind, zoneOpts{}, notes)
		z.set(gapsync.Internet, 1, "from the internet 互联网", 1)
		r := z.cycle()
		is.Equal(r.Rows(gapsync.Push), int64(1))
		is.Equal(z.body(gapsync.Intranet, 1), "from the internet 互联网")
		z.set(gapsync.Intranet, 1, "changed on the intranet 内网", 2)
		r = z.cycle()
		is.Equal(r.Rows(gapsync.Pull), int64(1))
		is.Equal(r.Rows(gapsync.Push), int64(0)) // not echoed back
		is.Equal(z.body(gapsync.Internet, 1), "changed on the intranet 内网")
		for i := 0; i < 20; i++ {
			r, err := z.runOnce()
			is.NoErr(err)
			is.Equal(r.Rows(""), int64(0)) // nothing travels either way
		}
		z.assertSame("notes", "id")
		// A later local change to a row that arrived by sync does travel.
		z.set(gapsync.Internet, 1, "internet again", 3)
		r = z.cycle()
		is.Equal(r.Rows(gapsync.Push), int64(1))
		is.Equal(z.body(gapsync.Intranet, 1), "internet again")
		is.Equal(r.Conflicts(), 0)
	})
}

// Must-show 2: the same key changed on both sides in one cycle.
func TestConflictPolicies(t *testing.T) {
	biggerQty := gapsync.ResolverFunc{Label: "bigger-qty", Fn: func(c gapsync.Conflict) gapsync.Side {
		if fmt.Sprint(c.Intranet.Values[2]) > fmt.Sprint(c.Internet.Values[2]) {
			return gapsync.Intranet
		}
		return gapsync.Internet
	}}
	cases := []struct {
		name       string
		resolver   gapsync.Resolver
		laterSide  gapsync.Side // which side changes last
		winner     gapsync.Side
		policyName string
	}{
		{"newest wins, intranet later", nil, gapsync.Intranet, gapsync.Intranet, "newest-wins"},
		{"newest wins, internet later", nil, gapsync.Internet, gapsync.Internet, "newest-wins"},
		{"internet wins", gapsync.InternetWins{}, gapsync.Intranet, gapsync.Internet, "internet-wins"},
		{"intranet wins", gapsync.IntranetWins{}, gapsync.Internet, gapsync.Intranet, "intranet-wins"},
		{"user function", biggerQty, gapsync.Internet, gapsync.Intranet, "bigger-qty"},
	}
	eachBackend(t, func(t *testing.T, kind string) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				is := is.New(t)
				z := twoWay(t, kind, zoneOpts{}, notes)
				z.coord, _ = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Resolver: c.resolver})
				z.set(gapsync.Internet, 7, "original", 1)
				z.cycle()
				first, second := gapsync.Internet, gapsync.Intranet
				if c.laterSide == gapsync.Internet {
					first, second = second, first
				}
				qty := map[gapsync.Side]int{gapsync.Internet: 10, gapsync.Intranet: 20}
				z.set(first, 7, "edit by "+string(first), qty[first])
				time.Sleep(5 * time.Millisecond) // distinct cursor values
				z.set(second, 7, "edit by "+string(second), qty[second])
				r := z.cycle()
				is.Equal(r.Conflicts(), 1)
				want := "edit by " + string(c.winner)
				is.Equal(z.body(gapsync.Internet, 7), want)
				is.Equal(z.body(gapsync.Intranet, 7), want)
				z.cycle()
				z.assertSame("notes", "id")
				recs, err := z.inet.Conflicts(context.Background(), "notes")
				is.NoErr(err)
				is.Equal(len(recs), 1)
				is.Equal(recs[0].Winner, c.winner)
				is.Equal(recs[0].Policy, c.policyName)
				is.True(strings.Contains(recs[0].Internet, "edit by internet")) // both versions recorded
				is.True(strings.Contains(recs[0].Intranet, "edit by intranet"))
				is.Equal(recs[0].Key, `{"id":7}`)
			})
		}
	})
}

// Must-show 3: hard deletes (through triggers) and soft deletes travel
// both ways, and a deleted row does not come back.
func TestDeletesTravel(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		t.Run("hard", func(t *testing.T) {
			is := is.New(t)
			z := twoWay(t, kind, zoneOpts{}, notes)
			for i := 1; i <= 4; i++ {
				z.set(gapsync.Internet, i, "n"+strconv.Itoa(i), i)
			}
			z.cycle()
			z.del(gapsync.Internet, 1)
			z.del(gapsync.Intranet, 2)
			z.cycle()
			for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
				is.Equal(z.body(s, 1), "<none>")
				is.Equal(z.body(s, 2), "<none>")
				is.Equal(z.body(s, 3), "n3")
			}
			for i := 0; i < 3; i++ {
				r := z.cycle()
				is.Equal(r.Rows(""), int64(0)) // the deletions do not echo
			}
			is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM notes"), 2) // and nothing came back
			z.assertSame("notes", "id")
			// Deleted and inserted again before a cycle: the row wins.
			z.del(gapsync.Internet, 3)
			z.set(gapsync.Internet, 3, "reborn", 3)
			z.cycle()
			is.Equal(z.body(gapsync.Intranet, 3), "reborn")
		})
		for _, mode := range []string{"delete", "update"} {
			t.Run("soft as "+mode, func(t *testing.T) {
				is := is.New(t)
				tb := notes
				tb.SoftDelete, tb.SoftDeleteAs = "gone", mode
				z := twoWay(t, kind, zoneOpts{}, tb)
				z.set(gapsync.Internet, 1, "a", 1)
				z.set(gapsync.Intranet, 2, "b", 2)
				z.cycle()
				mustExec(t, z.src(), "UPDATE notes SET gone = 1, updated_at = "+z.now+" WHERE id = 1")
				mustExec(t, z.dst(), "UPDATE notes SET gone = 1, updated_at = "+z.now+" WHERE id = 2")
				z.cycle()
				z.cycle()
				if mode == "delete" {
					is.Equal(z.body(gapsync.Intranet, 1), "<none>") // deleted on the far side
					is.Equal(z.body(gapsync.Internet, 2), "<none>")
				} else {
					is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM notes WHERE gone = 1"), 2) // the flag travels as data
					z.assertSame("notes", "id")
				}
			})
		}
	})
}

// Must-show 4: two coordinators at once, with changes on both sides while
// they run; no window is worked twice and both sides end equal.
func TestTwoCoordinators(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := twoWay(t, kind, zoneOpts{}, notes)
		var coords []*syncer.Coordinator
		for i := 0; i < 2; i++ {
			c, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Holder: "c" + strconv.Itoa(i), LeaseTTL: 5 * time.Second})
			is.NoErr(err)
			coords = append(coords, c)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		held, ran := 0, 0
		stop := make(chan struct{})
		for _, c := range coords {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := c.RunOnce(ctx)
					mu.Lock()
					if errors.Is(err, gapsync.ErrLeaseHeld) {
						held++
					} else if err == nil {
						ran++
					} else {
						t.Errorf("cycle: %v", err)
					}
					mu.Unlock()
					time.Sleep(time.Millisecond)
				}
			}()
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 60; i++ {
			side := []gapsync.Side{gapsync.Internet, gapsync.Intranet}[rng.IntN(2)]
			z.set(side, rng.IntN(20), fmt.Sprintf("v%d", i), i)
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		for i := 0; i < 3; i++ {
			z.cycle()
		}
		z.assertSame("notes", "id")
		is.True(ran > 2)
		is.True(held > 0) // they did contend, and one waited
		// Per direction, successful windows follow each other exactly: no
		// window was worked twice.
		logs := logRows(t, z.inet, "notes")
		last := map[string]string{}
		for i := len(logs) - 1; i >= 0; i-- {
			l := logs[i]
			if l.Status != storage.StatusOK {
				continue
			}
			is.Equal(l.WindowFrom, last[l.Direction])
			last[l.Direction] = l.WindowTo
		}
	})
}

// Must-show 5: random interleavings of inserts, updates and deletes on
// both sides, with cycles in between, converge. Set GAPSYNC_SEED to
// replay a failure.
func TestConvergesProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GAPSYNC_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	eachBackend(t, func(t *testing.T, kind string) {
		for round := uint64(0); round < 3; round++ {
			s := seed + round
			t.Run(fmt.Sprint("seed=", s), func(t *testing.T) {
				defer func() {
					if t.Failed() {
						t.Logf("reproduce with GAPSYNC_SEED=%d go test -run TestConvergesProperty ./syncer/", s)
					}
				}()
				z := twoWay(t, kind, zoneOpts{page: gapsync.Page{Rows: 7}}, notes)
				rng := rand.New(rand.NewPCG(s, s))
				for step := 0; step < 60; step++ {
					side := []gapsync.Side{gapsync.Internet, gapsync.Intranet}[rng.IntN(2)]
					id := rng.IntN(12)
					switch op := rng.IntN(10); {
					case op < 6:
						z.set(side, id, fmt.Sprintf("s%d-%s", step, side), step)
						trace(t, "step %d: set %s %d", step, side, id)
					default:
						z.del(side, id)
						trace(t, "step %d: delete %s %d", step, side, id)
					}
					if rng.IntN(5) == 0 {
						r := z.cycle()
						for _, e := range r.Tables {
							trace(t, "  cycle %s [%s, %s) rows=%d conflicts=%d", e.Direction, e.Window.From, e.Window.To, e.Rows, e.Conflicts)
						}
					}
				}
				for i := 0; i < 3; i++ {
					r := z.cycle()
					for _, e := range r.Tables {
						trace(t, "  final cycle %s [%s, %s) rows=%d conflicts=%d", e.Direction, e.Window.From, e.Window.To, e.Rows, e.Conflicts)
					}
				}
				if os.Getenv("GAPSYNC_TRACE") != "" {
					for _, q := range []string{"SELECT id, body, updated_at FROM notes ORDER BY id", "SELECT id, deleted_at FROM gst_notes ORDER BY id"} {
						for name, db := range map[string]*sql.DB{"internet": z.src(), "intranet": z.dst()} {
							rows, _ := db.Query(q)
							for rows.Next() {
								var a, b, c any
								if strings.Contains(q, "body") {
									rows.Scan(&a, &b, &c)
								} else {
									rows.Scan(&a, &b)
								}
								t.Logf("%s %s: %v %s %s", name, q[7:20], a, b, c)
							}
							rows.Close()
						}
					}
				}
				z.assertSame("notes", "id")
				if r := z.cycle(); r.Rows("") != 0 {
					t.Fatalf("a quiet cycle after convergence moved %d rows", r.Rows(""))
				}
			})
		}
	})
}

// Must-show 6: the pull flow refuses bad requests and forged ones return
// nothing.
func TestPullRefusesBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := twoWay(t, kind, zoneOpts{}, notes)
		mustExec(t, z.dst(), "CREATE TABLE secret (id BIGINT PRIMARY KEY, updated_at DATETIME(6))")
		mustExec(t, z.dst(), "INSERT INTO secret VALUES (1, '2020-01-01 00:00:00')")
		z.set(gapsync.Intranet, 1, "intranet only", 1)
		ctx := context.Background()
		w := gapsync.Window{To: "2999-01-01 00:00:00.000000"}
		_, err := z.client.Pull(ctx, transport.PullRequest{Table: "secret", Window: w})
		is.True(errors.Is(err, gapsync.ErrUnknownTable))
		_, err = z.client.Bound(ctx, "secret")
		is.True(errors.Is(err, gapsync.ErrUnknownTable))
		_, err = z.client.Pull(ctx, transport.PullRequest{Table: "notes`", Window: w})
		is.True(errors.Is(err, gapsync.ErrBadIdentifier))
		_, err = z.client.Pull(ctx, transport.PullRequest{Table: "notes", Window: w, After: []byte("forged position")})
		is.True(errors.Is(err, gapsync.ErrMalformed))
		// A sealed, valid pull works once; its replay and a wrong key get
		// a refusal, and no page.
		body := []byte(`{"table":"notes","window":{"To":"2999-01-01 00:00:00.000000"}}`)
		env := sealWith(t, z.keys, crypto_h(transport.PathPull), body)
		is.Equal(z.post(transport.PathPull, env).status, 200)
		got := z.post(transport.PathPull, env)
		is.Equal(got.status, 409)
		is.Equal(got.code, "replayed")
		other := otherKeyring(t)
		got = z.post(transport.PathPull, sealWith(t, other, crypto_h(transport.PathPull), body))
		is.Equal(got.status, 401)
	})
}

// trace logs a property-test step when GAPSYNC_TRACE is set.
func trace(t *testing.T, format string, args ...any) {
	if os.Getenv("GAPSYNC_TRACE") != "" {
		t.Logf(format, args...)
	}
}

// Run loops on its interval and stops cleanly on cancel, leaving the lease
// free for the next instance.
func TestRunStopsGracefully(t *testing.T) {
	is := is.New(t)
	z := twoWay(t, "sqlite", zoneOpts{}, notes)
	c, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Interval: 30 * time.Millisecond, Holder: "runner"})
	is.NoErr(err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	z.set(gapsync.Internet, 1, "while running", 1)
	z.set(gapsync.Intranet, 2, "also while running", 2)
	deadline := time.Now().Add(5 * time.Second)
	for z.body(gapsync.Intranet, 1) != "while running" || z.body(gapsync.Internet, 2) != "also while running" {
		if time.Now().After(deadline) {
			t.Fatal("Run did not sync within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		is.True(errors.Is(err, context.Canceled))
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop on cancel")
	}
	is.NoErr(z.inet.Acquire(context.Background(), "coordinator", "next", time.Minute)) // the lease was released
}
