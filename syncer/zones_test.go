package syncer_test

import (
	"context"
	"database/sql"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/sqltest"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// zones is the three zones in one test: the internet DB and coordinator,
// the gateway on a loopback HTTP server, and the intranet DB behind it.
type zones struct {
	t          *testing.T
	kind       string
	inet       *storage.DB
	intra      *storage.DB
	keys       *crypto.Keyring
	faults     *faults
	addr       string
	srv        *http.Server
	gwOpts     *syncer.GatewayOptions
	client     *transport.Client
	coord      *syncer.Coordinator
	typesTable sqltest.TypesTable
	now        string
}

type zoneOpts struct {
	retries  int // client retries; -1 none
	gw       *syncer.GatewayOptions
	page     gapsync.Page
	inFlight int // batches in flight per table; 0: the default
	loadRows int // rows of a first load's pages; 0: the default
	cipher   crypto.Cipher
}

func eachBackend(t *testing.T, fn func(t *testing.T, kind string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite") })
	t.Run("mariadb", func(t *testing.T) { fn(t, "mysql") })
}

func openDB(t *testing.T, kind string) *storage.DB {
	t.Helper()
	o := &storage.Options{Lag: 60 * time.Millisecond}
	var (
		db  *storage.DB
		err error
	)
	switch kind {
	case "mysql":
		db, err = storage.OpenMySQL(testdb.MySQL(t), o)
	case "postgres":
		db, err = storage.OpenPostgres(testdb.Postgres(t), o)
	default:
		db, err = storage.OpenSQLite(testdb.SQLite(t), o)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func newZones(t *testing.T, kind string, o zoneOpts) *zones {
	t.Helper()
	z := &zones{t: t, kind: kind, inet: openDB(t, kind), intra: openDB(t, kind), gwOpts: o.gw}
	z.typesTable, z.now = sqltest.SQLiteTypes, "strftime('%Y-%m-%d %H:%M:%f', 'now')"
	switch kind {
	case "mysql":
		z.typesTable, z.now = sqltest.MySQLTypes, "NOW(6)"
	case "postgres":
		z.typesTable, z.now = sqltest.PostgresTypes, "LOCALTIMESTAMP(6)"
	}
	k, err := crypto.GenerateCipherKey(o.cipher, "test1")
	if err != nil {
		t.Fatal(err)
	}
	z.keys, _ = crypto.NewKeyring(k)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = ln.Addr().String()
	z.startGateway(ln)
	if o.retries == 0 {
		o.retries = -1
	}
	z.client, err = transport.NewClient("http://"+z.addr, z.keys, &transport.ClientOptions{
		RetryMax: o.retries, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Page: o.page, InFlight: o.inFlight, LoadRows: o.loadRows})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.stopGateway(); z.client.Close() })
	return z
}

// startGateway starts a fresh Gateway (as a restarted process would: no
// memory but the intranet DB) on ln, behind the fault injector.
func (z *zones) startGateway(ln net.Listener) {
	gw, err := syncer.NewGateway(z.intra, z.keys, z.gwOpts)
	if err != nil {
		z.t.Fatal(err)
	}
	if z.faults == nil {
		z.faults = &faults{}
	}
	z.faults.next = gw
	z.srv = &http.Server{Handler: z.faults}
	go z.srv.Serve(ln)
}

func (z *zones) stopGateway() { z.srv.Close() }

// restartGateway stops the gateway and starts a new one on the same address.
func (z *zones) restartGateway() {
	z.stopGateway()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", z.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		z.t.Fatal(err)
	}
	z.faults = &faults{}
	z.startGateway(ln)
}

// both runs DDL on both sides and configures table on both.
func (z *zones) both(table gapsync.Table, ddl ...string) {
	z.t.Helper()
	for _, db := range []*storage.DB{z.inet, z.intra} {
		for _, q := range ddl {
			mustExec(z.t, db.Bun().DB, q)
		}
		if err := db.Configure(context.Background(), table); err != nil {
			z.t.Fatal(err)
		}
	}
}

func (z *zones) src() *sql.DB { return z.inet.Bun().DB }
func (z *zones) dst() *sql.DB { return z.intra.Bun().DB }

// waitLag sleeps past the window lag so that rows just written fall inside
// the next window.
func (z *zones) waitLag() { time.Sleep(80 * time.Millisecond) }

// runOnce runs a cycle and waits for the requests the client gave up on
// (a run that failed cancels what it had in flight) to finish at the
// gateway, so that a test may set the faults for the next run.
func (z *zones) runOnce() (*syncer.Report, error) {
	r, err := z.coord.RunOnce(context.Background())
	if z.faults != nil {
		z.faults.inflight.Wait()
	}
	return r, err
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// faults sits in front of the gateway and misbehaves on request.
type faults struct {
	mu        sync.Mutex
	fail500   int    // answer 500 without calling the gateway
	dropLate  int    // call the gateway, then cut the connection before the answer
	only      string // when set, faults hit only this path
	passFirst int    // let this many matching requests through first
	next      http.Handler
	requests  int
	paths     map[string]int  // requests by path
	gone      map[string]bool // paths answered 404, as a gateway without them
	inflight  sync.WaitGroup  // requests still being served (a client may have given up on them)
	slow      time.Duration   // each request waits this long before it is served
	active    map[string]int  // requests being served, by path
	peak      map[string]int  // the most served at once, by path
}

// most returns the most requests to path that were served at once.
func (f *faults) most(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak[path]
}

// calls returns how many requests went to path.
func (f *faults) calls(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.paths[path]
}

func (f *faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.inflight.Add(1)
	defer f.inflight.Done()
	f.mu.Lock()
	f.requests++
	if f.paths == nil {
		f.paths = map[string]int{}
	}
	f.paths[r.URL.Path]++
	if f.active == nil {
		f.active, f.peak = map[string]int{}, map[string]int{}
	}
	f.active[r.URL.Path]++
	f.peak[r.URL.Path] = max(f.peak[r.URL.Path], f.active[r.URL.Path])
	defer func() {
		f.mu.Lock()
		f.active[r.URL.Path]--
		f.mu.Unlock()
	}()
	if f.slow > 0 {
		f.mu.Unlock()
		time.Sleep(f.slow)
		f.mu.Lock()
	}
	if f.gone[r.URL.Path] {
		f.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	if (f.only != "" && r.URL.Path != f.only) || f.passFirst > 0 {
		if f.only == "" || r.URL.Path == f.only {
			f.passFirst--
		}
		f.mu.Unlock()
		f.next.ServeHTTP(w, r)
		return
	}
	fail, drop := f.fail500 > 0, f.dropLate > 0
	if fail {
		f.fail500--
	} else if drop {
		f.dropLate--
	}
	f.mu.Unlock()
	switch {
	case fail:
		http.Error(w, "injected failure", http.StatusInternalServerError)
	case drop:
		f.next.ServeHTTP(httptest.NewRecorder(), r) // applied…
		conn, _, err := w.(http.Hijacker).Hijack()  // …but the answer never arrives
		if err == nil {
			conn.Close()
		}
	default:
		f.next.ServeHTTP(w, r)
	}
}

func crypto_h(path string) crypto.Header { return crypto.Header{Endpoint: "POST " + path} }

func otherKeyring(t *testing.T) *crypto.Keyring {
	k, err := crypto.GenerateKey("test1")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := crypto.NewKeyring(k)
	return r
}
