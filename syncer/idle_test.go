package syncer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/transport"
)

// pathCount counts the gateway's requests by path.
type pathCount struct {
	mu   sync.Mutex
	n    map[string]int
	next http.Handler
}

func (p *pathCount) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.n[r.URL.Path]++
	p.mu.Unlock()
	p.next.ServeHTTP(w, r)
}

func (p *pathCount) take() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.n
	p.n = map[string]int{}
	return n
}

// A cycle over tables with nothing to move asks the gateway once for all
// the pulled ones and runs no window; the tables' last good windows
// still advance; and a change in any one of them, either side, arrives
// at the next cycle.
func TestIdleTablesAreCheckedTogether(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{})
		pc := &pathCount{n: map[string]int{}, next: z.faults.next}
		z.faults.next = pc
		const n = 12
		name := func(i int) string { return fmt.Sprintf("idle_%02d", i) }
		for i := 0; i < n; i++ {
			z.both(gapsync.Table{Name: name(i), Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true},
				"CREATE TABLE "+name(i)+" (id BIGINT NOT NULL PRIMARY KEY, body VARCHAR(50) NULL, updated_at DATETIME(6) NULL)")
			mustExec(t, z.src(), "INSERT INTO "+name(i)+" (id, body, updated_at) VALUES (1, 'a', "+z.now+")")
		}
		ver := gapsync.Table{Name: "idle_ver", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "v", Enabled: true}
		z.both(ver, "CREATE TABLE idle_ver (id BIGINT NOT NULL PRIMARY KEY, v BIGINT NOT NULL)")
		mustExec(t, z.src(), "INSERT INTO idle_ver (id, v) VALUES (1, 1)")

		z.waitLag()
		r, err := z.runOnce() // first loads
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(n+1))
		// The pulls' bounds of the first cycle may be held back behind the
		// pushes applied meanwhile (open writers): their next windows hold
		// those rows, which run and are left out as echoes.
		z.waitLag()
		r, err = z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(""), int64(0))
		first, _, err := z.inet.LastWindow(ctx, name(3), gapsync.Push)
		is.NoErr(err)

		z.waitLag()
		pc.take()
		r, err = z.runOnce() // nothing to move
		is.NoErr(err)
		is.Equal(len(r.Tables), 2*n+1)
		is.Equal(r.Rows(""), int64(0))
		got := pc.take()
		is.Equal(got["/v1/empty"], 1) // one request for every pulled table
		is.Equal(got["/v1/bound"], 0) // and no window of its own
		is.Equal(got["/v1/pull"], 0)
		is.Equal(got["/v1/apply"], 0)
		second, _, err := z.inet.LastWindow(ctx, name(3), gapsync.Push)
		is.NoErr(err)
		is.True(second > first) // the empty window is logged: the table's last good window advances
		log, err := z.inet.Log(ctx, name(3), 1)
		is.NoErr(err)
		is.Equal(log[0].Status, "ok")
		is.Equal(log[0].WindowFrom, first)

		// A change on each side and in the integer-cursor table.
		mustExec(t, z.src(), "UPDATE "+name(5)+" SET body = 'pushed', updated_at = "+z.now+" WHERE id = 1")
		mustExec(t, z.dst(), "INSERT INTO "+name(9)+" (id, body, updated_at) VALUES (2, 'pulled', "+z.now+")")
		mustExec(t, z.src(), "INSERT INTO idle_ver (id, v) VALUES (2, 2)")
		z.waitLag()
		r, err = z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(2))
		is.Equal(r.Rows(gapsync.Pull), int64(1))
		got = pc.take()
		is.Equal(got["/v1/empty"], 1)
		is.Equal(got["/v1/bound"], 1) // the pull of the table changed there
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM "+name(5)+" WHERE body = 'pushed'"), 1)
		is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM "+name(9)+" WHERE body = 'pulled'"), 1)
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM idle_ver"), 2)
	})
}

// The gateway's batched check refuses what is not a list of configured
// names and bounds, and answers "" (run the window) for a table it does
// not serve for pull.
func TestEmptyWindowsRefusesBadInput(t *testing.T) {
	is := is.New(t)
	z := newZones(t, "sqlite", zoneOpts{})
	z.both(gapsync.Table{Name: "items", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}, itemsDDL)
	bound := "2026-01-01 00:00:00.000000"
	many := make([]transport.WindowProbe, transport.MaxWindowProbes+1)
	for i := range many {
		many[i] = transport.WindowProbe{Table: "items", From: bound}
	}
	for _, c := range []struct {
		name string
		body []byte
		code string
	}{
		{"not JSON", []byte("{"), "malformed"},
		{"a name that is no identifier", mustJSON(t, transport.EmptyRequest{Tables: []transport.WindowProbe{{Table: "items; DROP TABLE x", From: bound}}}), "bad_identifier"},
		{"a bound that is none", mustJSON(t, transport.EmptyRequest{Tables: []transport.WindowProbe{{Table: "items", From: "1; --"}}}), "malformed"},
		{"no bound", mustJSON(t, transport.EmptyRequest{Tables: []transport.WindowProbe{{Table: "items"}}}), "malformed"},
		{"too many tables", mustJSON(t, transport.EmptyRequest{Tables: many}), "malformed"},
	} {
		got := z.post(transport.PathEmpty, sealWith(t, z.keys, crypto.Header{Endpoint: "POST " + transport.PathEmpty}, c.body))
		if got.status != 400 && got.status != 422 || got.code != c.code {
			t.Fatalf("%s: got %d %q, want %q", c.name, got.status, got.code, c.code)
		}
	}
	bounds, err := z.client.EmptyWindows(context.Background(), []transport.WindowProbe{{Table: "items", From: bound}, {Table: "nope", From: bound}})
	is.NoErr(err)
	is.Equal(len(bounds), 2)
	is.True(bounds[0] > bound) // idle since then: the new bound
	is.Equal(bounds[1], "")    // not served: its own requests say why
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A table added beside idle ones, with no window logged yet, is left out
// of the batched check (it has nothing to ask about) instead of making
// the gateway refuse the whole request: the idle ones still cost no
// window, and the new one runs its first load.
func TestNewTableBesideIdleOnes(t *testing.T) {
	is := is.New(t)
	z := newZones(t, "sqlite", zoneOpts{})
	pc := &pathCount{n: map[string]int{}, next: z.faults.next}
	z.faults.next = pc
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("idle_%02d", i)
		z.both(gapsync.Table{Name: name, Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true},
			"CREATE TABLE "+name+" (id BIGINT NOT NULL PRIMARY KEY, body VARCHAR(50) NULL, updated_at DATETIME(6) NULL)")
	}
	for range 2 {
		z.waitLag()
		_, err := z.runOnce()
		is.NoErr(err)
	}
	z.both(gapsync.Table{Name: "fresh", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true},
		"CREATE TABLE fresh (id BIGINT NOT NULL PRIMARY KEY, body VARCHAR(50) NULL, updated_at DATETIME(6) NULL)")
	mustExec(t, z.dst(), "INSERT INTO fresh (id, body, updated_at) VALUES (1, 'new', "+z.now+")")
	z.waitLag()
	pc.take()
	r, err := z.runOnce()
	is.NoErr(err)
	is.Equal(r.Rows(gapsync.Pull), int64(1)) // the new table's first load
	got := pc.take()
	is.Equal(got["/v1/empty"], 1)
	is.Equal(got["/v1/bound"], 1) // the new table's window alone
}
