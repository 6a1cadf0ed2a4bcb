package storage_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/storage"
)

// eachDB runs fn on a migrated database of each engine (storage.EachEngine).
func eachDB(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	storage.EachEngine(t, testOpts, func(t *testing.T, db *storage.DB) {
		target(t, db)
		fn(t, db)
	})
}

// TestFileTablesInBatches: the many-to-a-statement file-table calls keep
// order, count only what is new, replace on conflict, and report what is
// missing, across more rows than one statement carries.
func TestFileTablesInBatches(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		const n = 600 // more than one statement's worth
		var refs []string
		for i := range n {
			refs = append(refs, fmt.Sprintf("docs/%04d.pdf", i))
		}
		got, err := db.NoteFiles(ctx, gapsync.Internet, refs)
		is.NoErr(err)
		is.Equal(got, n)
		got, err = db.NoteFiles(ctx, gapsync.Internet, append(refs[:10:10], "docs/new.pdf"))
		is.NoErr(err)
		is.Equal(got, 1) // only the new one

		recs, err := db.FileRecords(ctx, gapsync.Internet, 0, gapsync.FileExtracted)
		is.NoErr(err)
		is.Equal(len(recs), n+1)
		var chunks []gapsync.Chunk
		for i := range recs {
			recs[i].Status, recs[i].Size, recs[i].Chunks, recs[i].ChunkSize = gapsync.FileStored, 3, 1, 1024
			chunks = append(chunks, gapsync.Chunk{FileID: recs[i].ID, Idx: 0, MD5: "m", SHA256: "s", Data: []byte(recs[i].Ref)})
		}
		chunks = append(chunks, gapsync.Chunk{FileID: recs[0].ID, Idx: 1, Data: []byte{}}) // an empty chunk stays empty, not NULL
		is.NoErr(db.PutFileRecords(ctx, recs))
		is.NoErr(db.PutChunks(ctx, chunks))
		chunks[5].Data = []byte("replaced")
		is.NoErr(db.PutChunks(ctx, chunks[5:6])) // a second copy replaces the first

		stored, err := db.FileRecords(ctx, gapsync.Internet, 0, gapsync.FileStored)
		is.NoErr(err)
		is.Equal(len(stored), n+1)
		byID, err := db.FileRecordsByID(ctx, []string{recs[3].ID, recs[599].ID, "nope"})
		is.NoErr(err)
		is.Equal(len(byID), 2)
		is.Equal(byID[recs[599].ID].Ref, recs[599].Ref)
		is.Equal(byID[recs[3].ID].Status, gapsync.FileStored)

		keys := []gapsync.ChunkKey{{FileID: recs[400].ID}, {FileID: recs[5].ID}, {FileID: recs[0].ID, Idx: 1}, {FileID: recs[7].ID}}
		for i := 10; i < 300; i++ {
			keys = append(keys, gapsync.ChunkKey{FileID: recs[i].ID})
		}
		cs, err := db.GetChunks(ctx, keys)
		is.NoErr(err)
		is.Equal(len(cs), len(keys))
		is.Equal(string(cs[0].Data), recs[400].Ref) // in the order asked
		is.Equal(string(cs[1].Data), "replaced")
		is.True(cs[2].Data != nil && len(cs[2].Data) == 0)
		is.Equal(cs[3].MD5, "m")
		for i, c := range cs[4:] {
			is.True(bytes.Equal(c.Data, []byte(recs[10+i].Ref)))
		}
		_, err = db.GetChunks(ctx, append(keys[:1:1], gapsync.ChunkKey{FileID: recs[9].ID, Idx: 7}))
		is.True(errors.Is(err, sql.ErrNoRows)) // a missing chunk is an error, not a gap

		held, err := db.HeldChunks(ctx, []string{recs[0].ID, recs[1].ID, "nope"})
		is.NoErr(err)
		is.Equal(held[recs[0].ID], []int{0, 1})
		is.Equal(held[recs[1].ID], []int{0})
		is.Equal(len(held["nope"]), 0)
	})
}

// TestPutChunksSplitsBigStatements: chunks whose bytes together exceed
// one statement's cap are stored across several, all of them.
func TestPutChunksSplitsBigStatements(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		var cs []gapsync.Chunk
		for i := range 5 {
			cs = append(cs, gapsync.Chunk{FileID: "big", Idx: i, Data: bytes.Repeat([]byte{byte(i)}, 3<<20)})
		}
		is.NoErr(db.PutChunks(ctx, cs)) // 15 MiB: more than fits one statement
		for i := range 5 {
			c, err := db.GetChunk(ctx, "big", i)
			is.NoErr(err)
			is.True(bytes.Equal(c.Data, cs[i].Data))
		}
	})
}

// TestRewriteRefsMany: many references rewritten at once, in equality
// columns across more rows than one statement finds and inside text with
// a pattern, each reference once, text that merely contains one left alone.
func TestRewriteRefsMany(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		sqldb := db.Bun().DB
		storage.MustExec(t, db,
			"CREATE TABLE docs (id BIGINT PRIMARY KEY, path VARCHAR(300), updated_at DATETIME(6))",
			"CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT, updated_at DATETIME(6))")
		is.NoErr(db.Configure(ctx, gapsync.Table{Name: "docs", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", FileColumns: []string{"path"}, Enabled: true}))
		is.NoErr(db.Configure(ctx, gapsync.Table{Name: "notes", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at",
			FileColumns: []string{"body"}, FilePattern: `[\w./%!\\-]+\.png`, Enabled: true}))
		// The rows arrive by sync, as the other side's references do.
		cols := []batch.Column{{Name: "id", Key: true}, {Name: "path"}, {Name: "updated_at"}}
		docs := &batch.Batch{ID: "docs-1", Table: "docs", Direction: "push", Columns: cols}
		refs := map[string]string{}
		for i := range 300 {
			ref := fmt.Sprintf("f%03d.png", i)
			refs[ref] = "from-internet/" + ref
			docs.Rows = append(docs.Rows, batch.Row{Op: batch.OpUpsert, Values: []any{int64(i), ref, nil}})
		}
		docs.Rows = append(docs.Rows, batch.Row{Op: batch.OpUpsert, Values: []any{int64(1000), "other.png", nil}})
		_, err := db.Apply(ctx, docs)
		is.NoErr(err)
		cols[1].Name = "body"
		notes := &batch.Batch{ID: "notes-1", Table: "notes", Direction: "push", Columns: cols, Rows: []batch.Row{
			{Op: batch.OpUpsert, Values: []any{int64(1), "see f001.png and f002.png", nil}},
			{Op: batch.OpUpsert, Values: []any{int64(2), "not xf001.png", nil}},
			{Op: batch.OpUpsert, Values: []any{int64(3), `odd a\b%c_!.png`, nil}},
		}}
		_, err = db.Apply(ctx, notes)
		is.NoErr(err)
		// This side's own rows, typed here, that name files alike.
		_, err = sqldb.Exec("INSERT INTO docs VALUES (2000, 'f005.png', NULL)")
		is.NoErr(err)
		_, err = sqldb.Exec("INSERT INTO notes VALUES (4, 'mine: f001.png', NULL)")
		is.NoErr(err)
		refs[`a\b%c_!.png`] = "from-internet/odd.png" // LIKE's special characters, and a backslash
		refs["from-internet/f001.png"] = "twice"      // a replacement is not replaced again

		n, err := db.RewriteRefsMany(ctx, refs)
		is.NoErr(err)
		is.Equal(n, 302) // 300 docs and two notes
		var path, body string
		is.NoErr(sqldb.QueryRow("SELECT path FROM docs WHERE id = 299").Scan(&path))
		is.Equal(path, "from-internet/f299.png")
		is.NoErr(sqldb.QueryRow("SELECT path FROM docs WHERE id = 1000").Scan(&path))
		is.Equal(path, "other.png")
		is.NoErr(sqldb.QueryRow("SELECT body FROM notes WHERE id = 1").Scan(&body))
		is.Equal(body, "see from-internet/f001.png and from-internet/f002.png")
		is.NoErr(sqldb.QueryRow("SELECT body FROM notes WHERE id = 2").Scan(&body))
		is.Equal(body, "not xf001.png")
		is.NoErr(sqldb.QueryRow("SELECT body FROM notes WHERE id = 3").Scan(&body))
		is.Equal(body, "odd from-internet/odd.png")
		is.NoErr(sqldb.QueryRow("SELECT path FROM docs WHERE id = 2000").Scan(&path))
		is.Equal(path, "f005.png") // a same-named file of this side is not redirected
		is.NoErr(sqldb.QueryRow("SELECT body FROM notes WHERE id = 4").Scan(&body))
		is.Equal(body, "mine: f001.png")
		n, err = db.RewriteRefsMany(ctx, map[string]string{"f001.png": "again"})
		is.NoErr(err)
		is.Equal(n, 0) // nothing holds the old reference any more
	})
}

// TestFileRecordSM3: a record's SM3 digest is kept and read back, and
// Migrate adds the column to a file_record made before it existed,
// keeping the rows there.
func TestFileRecordSM3(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		_, err := db.NoteFiles(ctx, gapsync.Internet, []string{"a.pdf", "b.pdf"})
		is.NoErr(err)
		recs, err := db.FileRecords(ctx, gapsync.Internet, 0, gapsync.FileExtracted)
		is.NoErr(err)
		is.Equal(len(recs), 2)
		const sm3 = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
		recs[0].SM3 = sm3
		is.NoErr(db.PutFileRecords(ctx, recs))
		got, err := db.FileRecordsByID(ctx, []string{recs[0].ID, recs[1].ID})
		is.NoErr(err)
		is.Equal(got[recs[0].ID].SM3, sm3)
		is.Equal(got[recs[1].ID].SM3, "")

		// A table of the release before: no sm3 column.
		_, err = db.Bun().ExecContext(ctx, "ALTER TABLE file_record DROP COLUMN sm3")
		is.NoErr(err)
		is.NoErr(db.Migrate(ctx))
		is.NoErr(db.Migrate(ctx)) // and again: nothing to add
		got, err = db.FileRecordsByID(ctx, []string{recs[0].ID})
		is.NoErr(err)
		is.Equal(got[recs[0].ID].Ref, recs[0].Ref) // the row stayed
		is.Equal(got[recs[0].ID].SM3, "")
		recs[1].SM3 = sm3
		is.NoErr(db.PutFileRecords(ctx, recs[1:]))
		got, err = db.FileRecordsByID(ctx, []string{recs[1].ID})
		is.NoErr(err)
		is.Equal(got[recs[1].ID].SM3, sm3)
	})
}
