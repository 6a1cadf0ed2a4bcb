package sqltest

import (
	"context"
	"database/sql"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// ConflictStore is a conflict log that can be read back, as storage's
// *DB can (Conflicts), so that the suite sees what was logged.
type ConflictStore interface {
	RecordConflict(ctx context.Context, c gapsync.ConflictRecord) error
	// Conflicts returns the recorded conflicts, oldest first, of table
	// ("" for every table).
	Conflicts(ctx context.Context, table string) ([]gapsync.ConflictRecord, error)
}

// testReader: syncer.IsolationReader, the pull side of the intranet.
func testReader(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	x := h.Open(t)
	if x.Reader == nil {
		t.Skip("the target has no Reader")
	}
	setupItems(t, h, x)
	got, err := x.Reader.Table(ctx, "items", gapsync.Pull)
	is.NoErr(err)
	is.Equal(got.Key, items.Key)
	is.Equal(got.Cursor, items.Cursor)
	_, err = x.Reader.Table(ctx, "nope", gapsync.Pull)
	is.True(errors.Is(err, gapsync.ErrUnknownTable))
	_, err = x.Reader.Table(ctx, "items; DROP TABLE items", gapsync.Pull)
	is.True(errors.Is(err, gapsync.ErrBadIdentifier) || errors.Is(err, gapsync.ErrUnknownTable))
	_, _, _, err = x.Reader.ReadPage(ctx, items, gapsync.Window{To: "2999-01-01 00:00:00.000000"}, []byte("\xffnot a position"), gapsync.Page{})
	is.True(errors.Is(err, gapsync.ErrMalformed))
	b, err := x.Reader.Bound(ctx, items)
	is.NoErr(err)
	_, err = time.Parse("2006-01-02 15:04:05.000000", b)
	is.NoErr(err)
}

// readAll reads every page of tb's changes in w through the reader, a
// few rows a page, and returns the rows.
func readAll(t *testing.T, x *Target, tb gapsync.Table, w gapsync.Window) []batch.Row {
	t.Helper()
	var out []batch.Row
	var after []byte
	for {
		b, next, more, err := x.Reader.ReadPage(context.Background(), tb, w, after, gapsync.Page{Rows: 3})
		if err != nil {
			t.Fatalf("read %s %v: %v", tb.Name, w, err)
		}
		out = append(out, b.Rows...)
		if !more {
			return out
		}
		after = next
	}
}

// testVersionLedger: a two-way table's rows that arrived by sync are left
// out of its pages until they change here (no echo), in the reader and in
// the change source alike; a row changed here after it arrived travels.
func testVersionLedger(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	src, x := h.Open(t), h.Open(t)
	if x.Reader == nil {
		t.Skip("the target has no Reader")
	}
	setupItems(t, h, src, x)
	for i := 1; i <= 7; i++ {
		insertItem(t, src.SQL, i, "arrived 到达", "synced", "2020-01-01 00:00:00.000000")
	}
	is.Equal(Sync(t, src, x, items, gapsync.Window{To: "2020-01-02 00:00:00.000000"}, gapsync.Page{Rows: 3}), 7)
	insertItem(t, x.SQL, 100, "local", "typed here", "2020-01-01 00:00:00.000000")
	all := gapsync.Window{To: "2999-01-01 00:00:00.000000"}
	rows := readAll(t, x, items, all)
	is.Equal(len(rows), 1) // only this side's own row
	n := 0
	is.NoErr(x.Source.Changes(ctx, items, all, gapsync.Page{Rows: 2}, func(b *batch.Batch) error { n += len(b.Rows); return nil }))
	is.Equal(n, 1)
	mustExec(t, x.SQL, "UPDATE items SET name = 'edited here' WHERE id = 3")
	rows = readAll(t, x, items, all)
	is.Equal(len(rows), 2) // the edit travels
	// The same rows applied again under a new batch id change nothing
	// and stay left out.
	is.Equal(Sync(t, src, x, items, gapsync.Window{To: "2020-01-02 00:00:00.000000"}, gapsync.Page{Rows: 3}), 7)
	var name string
	is.NoErr(x.SQL.QueryRow("SELECT name FROM items WHERE id = 5").Scan(&name))
	is.Equal(name, "synced")
}

// testConflictLog: syncer.ConflictLog keeps every record, in order, with
// every field.
func testConflictLog(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	x := h.Open(t)
	if x.Conflicts == nil {
		t.Skip("the target has no Conflicts")
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	recs := []gapsync.ConflictRecord{
		{RunID: "r1", Table: "items", Key: `[1,"a"]`, Policy: "newest-wins", Winner: gapsync.Intranet,
			Internet: `{"name":"互联网"}`, Intranet: `{"name":"内网 side"}`, DetectedAt: at},
		{RunID: "r1", Table: "other", Key: `[2]`, Policy: "internet-wins", Winner: gapsync.Internet, Internet: `{}`, Intranet: `null`, DetectedAt: at},
		{RunID: "r2", Table: "items", Key: `[3,"b"]`, Policy: "newest-wins", Winner: gapsync.Internet, Internet: `{"qty":1}`, Intranet: `{"qty":2}`, DetectedAt: at.Add(time.Second)},
	}
	for _, c := range recs {
		is.NoErr(x.Conflicts.RecordConflict(ctx, c))
	}
	got, err := x.Conflicts.Conflicts(ctx, "items")
	is.NoErr(err)
	is.Equal(len(got), 2)
	for i, want := range []gapsync.ConflictRecord{recs[0], recs[2]} {
		g := got[i]
		is.Equal(g.RunID, want.RunID)
		is.Equal(g.Key, want.Key)
		is.Equal(g.Policy, want.Policy)
		is.Equal(g.Winner, want.Winner)
		is.Equal(g.Internet, want.Internet)
		is.Equal(g.Intranet, want.Intranet)
		is.True(g.DetectedAt.Equal(want.DetectedAt))
	}
	all, err := x.Conflicts.Conflicts(ctx, "")
	is.NoErr(err)
	is.Equal(len(all), 3)
}

// testParking: syncer.Parker.
func testParking(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	x := h.Open(t)
	if x.Parking == nil {
		t.Skip("the target has no Parking")
	}
	is.NoErr(x.Parking.Park(ctx, "items", gapsync.Push, "rejected: first"))
	is.NoErr(x.Parking.Park(ctx, "items", gapsync.Push, "rejected: second")) // keeps the first reason
	is.NoErr(x.Parking.Park(ctx, "items", gapsync.Pull, "rejected: pull"))
	is.NoErr(x.Parking.Park(ctx, "other", gapsync.Push, "rejected: other"))
	ps, err := x.Parking.Parked(ctx)
	is.NoErr(err)
	is.Equal(len(ps), 3)
	reasons := map[string]string{}
	for _, p := range ps {
		reasons[p.Table+"/"+string(p.Direction)] = p.Reason
	}
	is.Equal(reasons["items/push"], "rejected: first")
	is.Equal(reasons["items/pull"], "rejected: pull")
	n, err := x.Parking.Resume(ctx, "items")
	is.NoErr(err)
	is.Equal(n, 2) // both directions
	n, err = x.Parking.Resume(ctx, "items")
	is.NoErr(err)
	is.Equal(n, 0)
	ps, err = x.Parking.Parked(ctx)
	is.NoErr(err)
	is.Equal(len(ps), 1)
	is.Equal(ps[0].Table, "other")
}

// testFileLedger: syncer.FileDB's file records and chunks.
func testFileLedger(t *testing.T, h Harness) {
	is := is.New(t)
	ctx := context.Background()
	x := h.Open(t)
	f := x.Files
	if f == nil {
		t.Skip("the target has no Files")
	}
	n, err := f.NoteFiles(ctx, gapsync.Internet, []string{"docs/a.pdf", "图片/b c.png", "docs/a.pdf"})
	is.NoErr(err)
	is.Equal(n, 2) // one record per distinct reference
	n, err = f.NoteFiles(ctx, gapsync.Internet, []string{"docs/a.pdf", "docs/d.pdf"})
	is.NoErr(err)
	is.Equal(n, 1) // only the new one
	recs, err := f.FileRecords(ctx, gapsync.Internet, 0, gapsync.FileExtracted)
	is.NoErr(err)
	is.Equal(len(recs), 3)
	byRef := map[string]gapsync.FileRecord{}
	for _, r := range recs {
		is.Equal(r.Origin, gapsync.Internet)
		is.Equal(r.Status, gapsync.FileExtracted)
		is.Equal(len(r.ID), 32)
		byRef[r.Ref] = r
	}
	a, b := byRef["docs/a.pdf"], byRef["图片/b c.png"]
	is.True(a.ID != "" && b.ID != "" && a.ID != b.ID)
	none, err := f.FileRecords(ctx, gapsync.Intranet, 0, gapsync.FileExtracted)
	is.NoErr(err)
	is.Equal(len(none), 0) // by origin
	_, err = f.FileRecord(ctx, "nope")
	is.True(errors.Is(err, sql.ErrNoRows))

	a.Status, a.Size, a.Chunks, a.ChunkSize, a.MD5, a.SHA256 = gapsync.FileStored, 5, 2, 3, "md5a", "sha-a"
	b.Status, b.Size, b.Chunks, b.ChunkSize, b.SHA256 = gapsync.FileStored, 5, 1, 8, "sha-b"
	is.NoErr(f.PutFileRecords(ctx, []gapsync.FileRecord{a, b}))
	got, err := f.FileRecord(ctx, a.ID)
	is.NoErr(err)
	is.Equal(got.Status, gapsync.FileStored)
	is.Equal(got.Size, int64(5))
	is.Equal(got.Chunks, 2)
	is.Equal(got.SHA256, "sha-a")
	is.Equal(got.Ref, "docs/a.pdf")
	many, err := f.FileRecordsByID(ctx, []string{a.ID, b.ID, "nope"})
	is.NoErr(err)
	is.Equal(len(many), 2)
	is.Equal(many[b.ID].Ref, "图片/b c.png")
	stored, err := f.FileRecords(ctx, gapsync.Internet, 1, gapsync.FileStored, gapsync.FileExtracted)
	is.NoErr(err)
	is.Equal(len(stored), 1) // the limit

	is.NoErr(f.PutChunks(ctx, []gapsync.Chunk{
		{FileID: a.ID, Idx: 0, MD5: "m0", SHA256: "s0", Data: []byte("abc")},
		{FileID: a.ID, Idx: 1, MD5: "m1", SHA256: "s1", Data: []byte{0, 0xff}},
		{FileID: b.ID, Idx: 0, SHA256: "sb", Data: []byte{}},
	}))
	is.NoErr(f.PutChunks(ctx, []gapsync.Chunk{{FileID: a.ID, Idx: 1, MD5: "m1", SHA256: "s1", Data: []byte("de")}})) // a second copy replaces the first
	c, err := f.GetChunk(ctx, a.ID, 1)
	is.NoErr(err)
	is.Equal(string(c.Data), "de")
	is.Equal(c.SHA256, "s1")
	_, err = f.GetChunk(ctx, a.ID, 7)
	is.True(errors.Is(err, sql.ErrNoRows))
	cs, err := f.GetChunks(ctx, []gapsync.ChunkKey{{FileID: b.ID}, {FileID: a.ID, Idx: 1}, {FileID: a.ID}})
	is.NoErr(err)
	is.Equal(len(cs), 3) // in the order asked
	is.True(cs[0].Data != nil && len(cs[0].Data) == 0)
	is.Equal(string(cs[1].Data), "de")
	is.Equal(string(cs[2].Data), "abc")
	_, err = f.GetChunks(ctx, []gapsync.ChunkKey{{FileID: a.ID}, {FileID: b.ID, Idx: 3}})
	is.True(errors.Is(err, sql.ErrNoRows)) // a missing chunk is an error, not a gap
	held, err := f.HeldChunks(ctx, []string{a.ID, b.ID, "nope"})
	is.NoErr(err)
	is.Equal(held[a.ID], []int{0, 1})
	is.Equal(held[b.ID], []int{0})
	is.Equal(len(held["nope"]), 0)
	sums, err := f.ChunkSums(ctx, a.ID)
	is.NoErr(err)
	is.Equal(sums, map[int]string{0: "s0", 1: "s1"})

	synced, err := f.AllChunksSynced(ctx, a.ID)
	is.NoErr(err)
	is.True(!synced)
	is.NoErr(f.AckChunks(ctx, a.ID, []int{0}))
	synced, err = f.AllChunksSynced(ctx, a.ID)
	is.NoErr(err)
	is.True(!synced)
	is.NoErr(f.AckChunks(ctx, a.ID, []int{1}))
	synced, err = f.AllChunksSynced(ctx, a.ID)
	is.NoErr(err)
	is.True(synced)

	unacked, err := f.UnackedFiles(ctx, gapsync.Internet, 0)
	is.NoErr(err)
	is.Equal(ids(unacked), sorted(a.ID, b.ID))
	is.NoErr(f.AckFiles(ctx, []string{a.ID}))
	unacked, err = f.UnackedFiles(ctx, gapsync.Internet, 0)
	is.NoErr(err)
	is.Equal(ids(unacked), []string{b.ID})

	same, ok, err := f.SameContent(ctx, "sha-a", b.ID)
	is.NoErr(err)
	is.True(ok)
	is.Equal(same.ID, a.ID)
	_, ok, err = f.SameContent(ctx, "sha-a", a.ID) // other than itself
	is.NoErr(err)
	is.True(!ok)
	ok, err = f.SameSize(ctx, 5, a.ID)
	is.NoErr(err)
	is.True(ok) // b
	ok, err = f.SameSize(ctx, 6, a.ID)
	is.NoErr(err)
	is.True(!ok)

	is.NoErr(f.DeleteChunks(ctx, a.ID, []int{1}))
	held, err = f.HeldChunks(ctx, []string{a.ID})
	is.NoErr(err)
	is.Equal(held[a.ID], []int{0})
	is.NoErr(f.DeleteChunks(ctx, a.ID, nil))
	held, err = f.HeldChunks(ctx, []string{a.ID})
	is.NoErr(err)
	is.Equal(len(held[a.ID]), 0)
	n, err = f.PurgeChunks(ctx, gapsync.FileStored, time.Now().Add(-time.Hour))
	is.NoErr(err)
	is.Equal(n, 0) // b's chunk changed just now
	n, err = f.PurgeChunks(ctx, gapsync.FileStored, time.Now().Add(time.Hour))
	is.NoErr(err)
	is.Equal(n, 1)
	_, err = f.GetChunk(ctx, b.ID, 0)
	is.True(errors.Is(err, sql.ErrNoRows))
	is.NoErr(f.AddMappings(ctx, map[string]string{"their/a.pdf": "from-internet/a.pdf"}))
}

func ids(rs []gapsync.FileRecord) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string {
	sort.Strings(s)
	return s
}
