package sqltest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// RunTwoWay runs the two-way rule suite. Two targets sync as the zones
// do: the internet one behind a syncer.Coordinator, the intranet one
// behind a syncer.Gateway on a loopback HTTP server, sealed with a fresh
// key, a whole cycle at a time. It checks the rules the core keeps over
// an adapter's primitives: a row that arrived by sync is not sent back
// (echo); a key changed on both sides in one window is settled by the
// policy on both sides and the loser is logged (conflict); a hard delete
// travels both ways and stays deleted (tombstones); a row's file
// reference is rewritten to the far side's published copy, and not sent
// back (references). It needs Target.Internet and Target.Intranet;
// Conflicts, Tombstones and Files enable their parts. Run runs it too.
func RunTwoWay(t *testing.T, h Harness) {
	t.Run("Echo", func(t *testing.T) { testEcho(t, h) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, h) })
	t.Run("Tombstones", func(t *testing.T) { testTombstones(t, h) })
	t.Run("References", func(t *testing.T) { testReferences(t, h) })
	t.Run("SchemaDrift", func(t *testing.T) { testDrift(t, h) })
	t.Run("Selection", func(t *testing.T) { testSelection(t, h) })
	t.Run("Renamed", func(t *testing.T) { testRenamed(t, h) })
}

// pair is two targets and the core between them.
type pair struct {
	t           *testing.T
	h           Harness
	inet, intra *Target
	coord       *syncer.Coordinator
}

func newPair(t *testing.T, h Harness) *pair { return newPairWith(t, h, nil) }

// newPairWith is newPair with the coordinator's options.
func newPairWith(t *testing.T, h Harness, o *syncer.CoordinatorOptions) *pair {
	t.Helper()
	p := &pair{t: t, h: h, inet: h.Open(t), intra: h.Open(t)}
	if p.inet.Internet == nil || p.intra.Intranet == nil {
		t.Skip("the target has no Internet and Intranet roles")
	}
	k, err := crypto.GenerateKey("sqltest")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := syncer.NewGateway(p.intra.Intranet, keys, &syncer.GatewayOptions{Replay: p.intra.Replay})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	client, err := transport.NewClient(srv.URL, keys, &transport.ClientOptions{RetryMax: 2, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if p.coord, err = syncer.NewCoordinator(p.inet.Internet, client, o); err != nil {
		t.Fatal(err)
	}
	setupItems(t, h, p.inet, p.intra)
	return p
}

func (p *pair) side(s gapsync.Side) *Target {
	if s == gapsync.Intranet {
		return p.intra
	}
	return p.inet
}

// set writes item (id, "k") on side s, stamped by that database's clock,
// as an application does.
func (p *pair) set(s gapsync.Side, id int, name string) {
	p.t.Helper()
	db := p.side(s).SQL
	if count(p.t, db, "SELECT COUNT(*) FROM items WHERE id = ? AND k2 = 'k'", id) == 0 {
		mustExec(p.t, db, "INSERT INTO items (id, k2, name, qty, updated_at) VALUES (?, 'k', ?, ?, "+p.h.Now+")", id, name, id)
		return
	}
	mustExec(p.t, db, "UPDATE items SET name = ?, updated_at = "+p.h.Now+" WHERE id = ? AND k2 = 'k'", name, id)
}

// name reads item id's name on side s; "" when the row is not there.
func (p *pair) name(s gapsync.Side, id int) string {
	p.t.Helper()
	var n sql.NullString
	err := p.side(s).SQL.QueryRow("SELECT name FROM items WHERE id = ? AND k2 = 'k'", id).Scan(&n)
	if err == sql.ErrNoRows {
		return ""
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return n.String
}

// cycle runs one coordinator cycle once the rows written so far lie
// inside a window (the lag is under a second, see Harness.Open), and
// fails the test on any table's error.
func (p *pair) cycle() *syncer.Report {
	p.t.Helper()
	time.Sleep(time.Second)
	r, err := p.coord.RunOnce(context.Background())
	if err != nil {
		p.t.Fatalf("cycle: %v", err)
	}
	for _, e := range r.Tables {
		if e.Err != nil {
			p.t.Fatalf("cycle: %s %s: %v", e.Table, e.Direction, e.Err)
		}
	}
	return r
}

// same checks that both sides hold the same items, value for value.
func (p *pair) same() {
	p.t.Helper()
	a, n := RowHash(p.t, p.inet.SQL, "items", "id, k2")
	b, m := RowHash(p.t, p.intra.SQL, "items", "id, k2")
	if a != b || n != m {
		p.t.Fatalf("the sides differ: %d rows here, %d there", n, m)
	}
}

// quiet runs cycles that must move nothing.
func (p *pair) quiet(n int) {
	p.t.Helper()
	for i := 0; i < n; i++ {
		if r := p.cycle(); r.Rows("") != 0 || r.Conflicts() != 0 {
			p.t.Fatalf("quiet cycle %d moved %d rows and settled %d conflicts: an echo", i, r.Rows(""), r.Conflicts())
		}
	}
}

func testEcho(t *testing.T, h Harness) {
	is := is.New(t)
	p := newPair(t, h)
	p.set(gapsync.Internet, 1, "from the internet 互联网")
	p.set(gapsync.Intranet, 2, "from the intranet 内网")
	r := p.cycle()
	is.Equal(r.Rows(gapsync.Push), int64(1))
	is.Equal(r.Rows(gapsync.Pull), int64(1))
	is.Equal(p.name(gapsync.Intranet, 1), "from the internet 互联网")
	is.Equal(p.name(gapsync.Internet, 2), "from the intranet 内网")
	p.same()
	p.quiet(2) // neither row goes back
	// An edit of a synced row on the side it arrived at travels, once.
	p.set(gapsync.Intranet, 1, "edited on the intranet")
	r = p.cycle()
	is.Equal(r.Rows(gapsync.Pull), int64(1))
	is.Equal(r.Rows(gapsync.Push), int64(0))
	is.Equal(p.name(gapsync.Internet, 1), "edited on the intranet")
	p.same()
	p.quiet(1)
}

func testConflict(t *testing.T, h Harness) {
	is := is.New(t)
	p := newPair(t, h)
	p.set(gapsync.Internet, 1, "v0")
	p.set(gapsync.Internet, 2, "v0")
	p.cycle()
	p.same()
	// Both sides change each key within one window; the later change wins
	// (gapsync.NewestWins, the default policy).
	p.set(gapsync.Internet, 1, "internet, earlier")
	p.set(gapsync.Intranet, 2, "intranet, earlier")
	time.Sleep(20 * time.Millisecond)
	p.set(gapsync.Intranet, 1, "intranet, later")
	p.set(gapsync.Internet, 2, "internet, later")
	settled := 0
	for i := 0; i < 3; i++ {
		settled += p.cycle().Conflicts()
	}
	is.Equal(settled, 2)
	for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
		is.Equal(p.name(s, 1), "intranet, later")
		is.Equal(p.name(s, 2), "internet, later")
	}
	p.same()
	p.quiet(1)
	if p.inet.Conflicts == nil {
		return
	}
	cs, err := p.inet.Conflicts.Conflicts(context.Background(), "items")
	is.NoErr(err)
	is.Equal(len(cs), 2) // each loser logged
	winners := map[gapsync.Side]int{}
	for _, c := range cs {
		winners[c.Winner]++
		is.True(c.Key != "" && c.Internet != "" && c.Intranet != "" && c.Policy != "")
	}
	is.Equal(winners[gapsync.Internet], 1)
	is.Equal(winners[gapsync.Intranet], 1)
}

func testTombstones(t *testing.T, h Harness) {
	is := is.New(t)
	p := newPair(t, h)
	if p.inet.Tombstones == nil || p.intra.Tombstones == nil {
		t.Skip("the target has no Tombstones")
	}
	for _, x := range []*Target{p.inet, p.intra} {
		is.NoErr(x.Tombstones(context.Background(), items))
	}
	for id := 1; id <= 4; id++ {
		p.set(gapsync.Internet, id, "row")
	}
	p.cycle()
	p.same()
	mustExec(t, p.inet.SQL, "DELETE FROM items WHERE id = 1")
	mustExec(t, p.intra.SQL, "DELETE FROM items WHERE id = 2")
	p.cycle()
	for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
		is.Equal(p.name(s, 1), "") // deleted here or there: gone on both sides
		is.Equal(p.name(s, 2), "")
		is.Equal(p.name(s, 3), "row")
	}
	p.same()
	p.quiet(2) // and stays gone
	// A key deleted and written again is a new row that travels.
	p.set(gapsync.Intranet, 1, "again")
	p.cycle()
	is.Equal(p.name(gapsync.Internet, 1), "again")
	p.same()
}

// newStore is a file store in a directory of the test's own.
func newStore(t *testing.T) syncer.FileStore {
	t.Helper()
	st, err := localstore.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func putFile(t *testing.T, st syncer.FileStore, key string, data []byte) {
	t.Helper()
	if err := st.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), syncer.FileInfo{}); err != nil {
		t.Fatal(err)
	}
}

func testReferences(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	inetStore, intraStore := newStore(t), newStore(t)
	files := func(st syncer.FileStore) syncer.FileOptions {
		return syncer.FileOptions{Store: st, ChunkSize: h.chunkSize(), Retention: -1}
	}
	fo := files(inetStore)
	p := newPairWith(t, h, &syncer.CoordinatorOptions{Files: &fo})
	if p.inet.Files == nil || p.intra.Files == nil {
		t.Skip("the target has no Files")
	}
	worker, err := syncer.NewIntranetWorker(p.intra.Files, &syncer.WorkerOptions{Files: files(intraStore)})
	is.NoErr(err)
	docs := gapsync.Table{Name: "docs", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", FileColumns: []string{"path"}, Enabled: true}
	for _, x := range []*Target{p.inet, p.intra} {
		mustExec(t, x.SQL, "CREATE TABLE docs (id BIGINT NOT NULL PRIMARY KEY, path VARCHAR(600) NULL, updated_at "+h.timeType()+" NULL)")
		is.NoErr(x.Configure(ctx, docs))
	}
	// Text, then NUL bytes over two more chunks (each doubled when
	// escaped into a text statement).
	cs := int(h.chunkSize())
	inFile := append(bytes.Repeat([]byte("互联网 "), 3000), make([]byte, 2*cs+100)...)
	outFile := append([]byte("intranet file"), make([]byte, cs+7)...)
	putFile(t, inetStore, "in/报告 a.pdf", inFile)
	putFile(t, intraStore, "out/b.bin", outFile)
	mustExec(t, p.inet.SQL, "INSERT INTO docs (id, path, updated_at) VALUES (1, 'in/报告 a.pdf', "+h.Now+")")
	mustExec(t, p.intra.SQL, "INSERT INTO docs (id, path, updated_at) VALUES (2, 'out/b.bin', "+h.Now+")")
	path := func(x *Target, id int) string {
		var s sql.NullString
		if err := x.SQL.QueryRow("SELECT path FROM docs WHERE id = ?", id).Scan(&s); err != nil {
			return "<none>"
		}
		return s.String
	}
	round := func() *syncer.Report {
		time.Sleep(time.Second)
		r, _ := p.coord.RunOnce(ctx)
		if r.Err() != nil && r.FilesErr == nil {
			t.Fatalf("cycle: %v", r.Err())
		}
		worker.RunOnce(ctx)
		return r
	}
	for i := 0; i < 4; i++ {
		round()
	}
	is.Equal(path(p.intra, 1), "from-internet/in/报告 a.pdf") // the far side's copy
	is.Equal(path(p.inet, 1), "in/报告 a.pdf")                // its own, not echoed back
	is.Equal(path(p.inet, 2), "from-intranet/out/b.bin")
	is.Equal(path(p.intra, 2), "out/b.bin")
	for _, c := range []struct {
		st   syncer.FileStore
		key  string
		data []byte
	}{{intraStore, "from-internet/in/报告 a.pdf", inFile}, {inetStore, "from-intranet/out/b.bin", outFile}} {
		info, err := c.st.Stat(ctx, c.key)
		is.NoErr(err)
		is.Equal(info.Size, int64(len(c.data)))
		rc, err := c.st.OpenRange(ctx, c.key, 0, info.Size)
		is.NoErr(err)
		got, err := io.ReadAll(rc)
		rc.Close()
		is.NoErr(err)
		is.True(bytes.Equal(got, c.data)) // the bytes, exactly
	}
	r := round()
	is.Equal(r.Rows(""), int64(0)) // the rewrites do not travel
	is.NoErr(r.FilesErr)
}

// note reads item id's note on side s.
func (p *pair) note(s gapsync.Side, id int) string {
	p.t.Helper()
	var n sql.NullString
	if err := p.side(s).SQL.QueryRow("SELECT note FROM items WHERE id = ? AND k2 = 'k'", id).Scan(&n); err != nil {
		p.t.Fatal(err)
	}
	return n.String
}

// testDrift: a column added on one side only does not stop the table; its
// values arrive for every row, also those sent before, once the other
// side has it; a column dropped on one side parks the table until the
// other side matches.
func testDrift(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	p := newPair(t, h)
	// Another configured table, described in the same shape answers.
	for _, x := range []*Target{p.inet, p.intra} {
		mustExec(t, x.SQL, "CREATE TABLE a_other (id BIGINT NOT NULL PRIMARY KEY, x VARCHAR(5) NULL, updated_at "+h.timeType()+" NULL)")
		is.NoErr(x.Configure(ctx, gapsync.Table{Name: "a_other", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}))
	}
	for id := 1; id <= 3; id++ {
		p.set(gapsync.Internet, id, "before")
	}
	p.cycle()
	p.same()

	mustExec(t, p.inet.SQL, "ALTER TABLE items ADD COLUMN note VARCHAR(40) NULL")
	for id := 1; id <= 3; id++ {
		mustExec(t, p.inet.SQL, "UPDATE items SET note = ?, name = 'after', updated_at = "+h.Now+" WHERE id = ?", fmt.Sprintf("note %d 注", id), id)
	}
	mustExec(t, p.inet.SQL, "INSERT INTO items (id, k2, name, qty, updated_at, note) VALUES (4, 'k', 'new', 4, "+h.Now+", 'note 4')")
	p.set(gapsync.Intranet, 5, "from the intranet")
	r := p.cycle() // the shared columns go on, both ways
	is.Equal(r.Rows(gapsync.Push), int64(4))
	is.Equal(r.Rows(gapsync.Pull), int64(1))
	is.Equal(p.name(gapsync.Intranet, 1), "after")
	is.Equal(p.name(gapsync.Intranet, 4), "new")
	is.Equal(p.name(gapsync.Internet, 5), "from the intranet")
	dr, ok := p.inet.Internet.(syncer.Drifter)
	if ok {
		ms, err := dr.MissingColumns(ctx)
		is.NoErr(err)
		is.Equal(len(ms), 1)
		is.Equal(ms[0].Column, "note")
		is.Equal(ms[0].Direction, gapsync.Push)
		is.True(strings.Contains(ms[0].Alter, "ADD COLUMN"))
	}
	p.quiet(1) // a column on one side only makes no echo

	mustExec(t, p.intra.SQL, "ALTER TABLE items ADD COLUMN note VARCHAR(40) NULL")
	p.cycle() // reads the table again: the notes sent before arrive
	if !ok {
		return
	}
	for id := 1; id <= 3; id++ {
		is.Equal(p.note(gapsync.Intranet, id), fmt.Sprintf("note %d 注", id))
	}
	is.Equal(p.note(gapsync.Intranet, 4), "note 4")
	p.same()
	ms, err := dr.MissingColumns(ctx)
	is.NoErr(err)
	is.Equal(len(ms), 0)
	p.quiet(1)

	// A column dropped here while the intranet keeps it: parked, and
	// nothing of the run written there.
	mustExec(t, p.inet.SQL, "ALTER TABLE items DROP COLUMN qty")
	p.set(gapsync.Internet, 1, "after the drop")
	time.Sleep(time.Second)
	r, err = p.coord.RunOnce(ctx)
	is.True(err != nil)
	is.True(errors.Is(err, gapsync.ErrSchemaDrift))
	is.Equal(p.name(gapsync.Intranet, 1), "after")
	parked, err := p.coord.Parked(ctx)
	is.NoErr(err)
	is.Equal(len(parked), 1)
	is.Equal(parked[0].Direction, gapsync.Push)
	is.True(strings.Contains(parked[0].Reason, "DROP COLUMN"))
	// The intranet follows; the operator resumes; the change arrives.
	mustExec(t, p.intra.SQL, "ALTER TABLE items DROP COLUMN qty")
	is.NoErr(p.coord.Resume(ctx, "items"))
	p.cycle()
	is.Equal(p.name(gapsync.Intranet, 1), "after the drop")
	p.same()
}

// qty reads item id's qty on side s; -1 for NULL, -2 when the row is not
// there.
func (p *pair) qty(s gapsync.Side, id int) int64 {
	p.t.Helper()
	var n sql.NullInt64
	err := p.side(s).SQL.QueryRow("SELECT qty FROM items WHERE id = ? AND k2 = 'k'", id).Scan(&n)
	if err == sql.ErrNoRows {
		return -2
	}
	if err != nil {
		p.t.Fatal(err)
	}
	if !n.Valid {
		return -1
	}
	return n.Int64
}

// testSelection: columns excluded (or not listed) on the sending side
// never leave it, and the row filter sends only matching rows; a row
// changed out of it travels as a deletion where so configured. Both ways,
// and without echoes. A filter outside the grammar (an injection) is
// refused at configuration and changes nothing.
func testSelection(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	p := newPair(t, h)
	inetCfg := items
	inetCfg.Exclude = []string{"qty"}
	inetCfg.Filter, inetCfg.FilterAs = "name <> 'secret' AND name NOT LIKE 'hidden%'", "delete"
	is.NoErr(p.inet.Configure(ctx, inetCfg))
	intraCfg := items
	intraCfg.Columns = []string{"name"}
	intraCfg.Filter = "name IS NOT NULL"
	is.NoErr(p.intra.Configure(ctx, intraCfg))

	for _, bad := range []gapsync.Table{
		func() gapsync.Table { x := inetCfg; x.Filter = "name = 'x'; DROP TABLE items"; return x }(),
		func() gapsync.Table { x := inetCfg; x.Filter = `name = 'x\' OR 1=1 -- '`; return x }(),
		func() gapsync.Table { x := inetCfg; x.Filter = "name = (SELECT name FROM sync_config)"; return x }(),
	} {
		is.True(errors.Is(p.inet.Configure(ctx, bad), gapsync.ErrBadFilter))
	}
	unknown := inetCfg
	unknown.Filter = "password = 'x'"
	is.True(errors.Is(p.inet.Configure(ctx, unknown), gapsync.ErrUnknownColumn))
	excludeKey := inetCfg
	excludeKey.Exclude = []string{"id"}
	is.True(p.inet.Configure(ctx, excludeKey) != nil)

	mustExec(t, p.inet.SQL, "INSERT INTO items (id, k2, name, qty, updated_at) VALUES (1, 'k', 'public', 7, "+h.Now+")")
	mustExec(t, p.inet.SQL, "INSERT INTO items (id, k2, name, qty, updated_at) VALUES (2, 'k', 'secret', 8, "+h.Now+")")
	mustExec(t, p.intra.SQL, "INSERT INTO items (id, k2, name, qty, updated_at) VALUES (3, 'k', 'from the intranet', 9, "+h.Now+")")
	p.cycle()
	is.Equal(p.name(gapsync.Intranet, 1), "public")
	is.Equal(p.qty(gapsync.Intranet, 1), int64(-1)) // qty never left the internet side
	is.Equal(p.qty(gapsync.Intranet, 2), int64(-2)) // filtered out
	is.Equal(p.name(gapsync.Internet, 3), "from the intranet")
	is.Equal(p.qty(gapsync.Internet, 3), int64(-1)) // the intranet sends only name
	is.Equal(p.qty(gapsync.Intranet, 3), int64(9))  // and keeps its own
	p.quiet(1)

	// Out of the filter: sent as a deletion.
	mustExec(t, p.inet.SQL, "UPDATE items SET name = 'hidden now', updated_at = "+h.Now+" WHERE id = 1")
	p.cycle()
	is.Equal(p.qty(gapsync.Intranet, 1), int64(-2))
	is.Equal(p.name(gapsync.Internet, 1), "hidden now") // the deletion is not echoed back
	p.quiet(1)
	// A change of an excluded column alone sends the row (its cursor
	// moved) without the column.
	mustExec(t, p.inet.SQL, "UPDATE items SET qty = 70, name = 'public again', updated_at = "+h.Now+" WHERE id = 1")
	p.cycle()
	is.Equal(p.name(gapsync.Intranet, 1), "public again")
	is.Equal(p.qty(gapsync.Intranet, 1), int64(-1))
	p.quiet(1)
}

// testRenamed: a table and two of its columns have other names on the
// intranet side (items, id and name here; ext_items, ext_id and label
// there), declared in the internet side's sync_config. Rows travel both
// ways, nothing echoes, a conflict is settled, deletions travel, and the
// setup check sees one table.
func testRenamed(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	p := newPair(t, h)
	mustExec(t, p.intra.SQL, `CREATE TABLE ext_items (
	ext_id BIGINT NOT NULL,
	k2 VARCHAR(20) NOT NULL,
	label VARCHAR(200) NULL,
	qty BIGINT NULL,
	updated_at `+h.timeType()+` NULL,
	PRIMARY KEY (ext_id, k2))`)
	there := gapsync.Table{Name: "ext_items", Direction: gapsync.Both, Key: []string{"ext_id", "k2"}, Cursor: "updated_at", Enabled: true}
	is.NoErr(p.intra.Configure(ctx, there))
	disabled := items
	disabled.Enabled = false
	is.NoErr(p.intra.Configure(ctx, disabled)) // the intranet's own items is another table
	here := items
	here.RemoteName, here.RemoteColumns = "ext_items", map[string]string{"id": "ext_id", "name": "label"}
	is.NoErr(p.inet.Configure(ctx, here))
	tombs := p.inet.Tombstones != nil && p.intra.Tombstones != nil
	if tombs {
		is.NoErr(p.inet.Tombstones(ctx, here))
		is.NoErr(p.intra.Tombstones(ctx, there))
	}
	label := func(id int) string {
		var n sql.NullString
		err := p.intra.SQL.QueryRow("SELECT label FROM ext_items WHERE ext_id = ? AND k2 = 'k'", id).Scan(&n)
		if err == sql.ErrNoRows {
			return ""
		}
		is.NoErr(err)
		return n.String
	}
	setThere := func(id int, v string) {
		if count(t, p.intra.SQL, "SELECT COUNT(*) FROM ext_items WHERE ext_id = ? AND k2 = 'k'", id) == 0 {
			mustExec(t, p.intra.SQL, "INSERT INTO ext_items (ext_id, k2, label, qty, updated_at) VALUES (?, 'k', ?, ?, "+h.Now+")", id, v, id)
			return
		}
		mustExec(t, p.intra.SQL, "UPDATE ext_items SET label = ?, updated_at = "+h.Now+" WHERE ext_id = ? AND k2 = 'k'", v, id)
	}

	p.set(gapsync.Internet, 1, "from the internet 互联网")
	setThere(2, "from the intranet 内网")
	r := p.cycle()
	is.Equal(r.Rows(gapsync.Push), int64(1))
	is.Equal(r.Rows(gapsync.Pull), int64(1))
	is.Equal(label(1), "from the internet 互联网")
	is.Equal(p.name(gapsync.Internet, 2), "from the intranet 内网")
	is.Equal(count(t, p.intra.SQL, "SELECT COUNT(*) FROM items"), 0) // the intranet's own items untouched
	p.quiet(2)

	// Changed on both sides in one window: settled, the later wins.
	p.set(gapsync.Internet, 1, "internet, earlier")
	time.Sleep(20 * time.Millisecond)
	setThere(1, "intranet, later")
	settled := 0
	for i := 0; i < 3; i++ {
		settled += p.cycle().Conflicts()
	}
	is.Equal(settled, 1)
	is.Equal(p.name(gapsync.Internet, 1), "intranet, later")
	is.Equal(label(1), "intranet, later")
	p.quiet(1)

	if tombs {
		mustExec(t, p.intra.SQL, "DELETE FROM ext_items WHERE ext_id = 2")
		p.cycle()
		is.Equal(p.name(gapsync.Internet, 2), "")
		p.quiet(1)
	}

	ps, err := p.coord.Check(ctx)
	is.NoErr(err)
	for _, pr := range ps {
		if pr.Table == "items" && !pr.Warning {
			t.Errorf("setup check: %s", pr)
		}
	}
}
