package storage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// TestAckChunkPage: the chunks of many files acknowledged at once, and
// the files whose chunks are then all acknowledged (an empty file at
// once) marked delivered; a file with chunks left, a file not named and a
// file not stored keep their status, and a second acknowledgement of the
// same page changes nothing.
func TestAckChunkPage(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		rec := func(ref string, size int64, status string) gapsync.FileRecord {
			return gapsync.FileRecord{ID: gapsync.FileID(gapsync.Intranet, ref), Origin: gapsync.Intranet, Ref: ref, Size: size,
				ChunkSize: gapsync.MinChunkSize, Chunks: int(gapsync.ChunkCount(size, gapsync.MinChunkSize)),
				MD5: strings.Repeat("a", 32), SHA256: strings.Repeat("b", 64), Status: status}
		}
		two, one, empty := rec("two.bin", gapsync.MinChunkSize+1, gapsync.FileStored), rec("one.bin", 5, gapsync.FileStored), rec("empty.bin", 0, gapsync.FileStored)
		other, failed := rec("other.bin", 5, gapsync.FileStored), rec("failed.bin", 5, gapsync.FileFailed)
		recs := []gapsync.FileRecord{two, one, empty, other, failed}
		is.NoErr(db.PutFileRecords(ctx, recs))
		var cs []gapsync.Chunk
		for _, r := range recs {
			for i := range r.Chunks {
				cs = append(cs, gapsync.Chunk{FileID: r.ID, Idx: i, Data: []byte("x")})
			}
		}
		is.NoErr(db.PutChunks(ctx, cs))
		status := func(r gapsync.FileRecord) string {
			got, err := db.FileRecord(ctx, r.ID)
			is.NoErr(err)
			return got.Status
		}
		page := map[string][]int{two.ID: {0}, one.ID: {0}, empty.ID: nil, failed.ID: {0}}
		for range 2 {
			is.NoErr(db.AckChunkPage(ctx, page))
			is.Equal(status(two), gapsync.FileStored) // chunk 1 is not acknowledged
			is.Equal(status(one), gapsync.FilePublished)
			is.Equal(status(empty), gapsync.FilePublished)
			is.Equal(status(other), gapsync.FileStored) // not named
			is.Equal(status(failed), gapsync.FileFailed)
		}
		synced, err := db.AllChunksSynced(ctx, other.ID)
		is.NoErr(err)
		is.True(!synced)
		synced, err = db.AllChunksSynced(ctx, failed.ID)
		is.NoErr(err)
		is.True(synced)
		is.NoErr(db.AckChunkPage(ctx, map[string][]int{two.ID: {1}}))
		is.Equal(status(two), gapsync.FilePublished)
		is.NoErr(db.AckChunkPage(ctx, nil))
	})
}

// TestPublishedContent: for each content asked for, a record that
// published it with a local key; not one only stored, or published
// without a key.
func TestPublishedContent(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		rec := func(ref, sha, status, key string) gapsync.FileRecord {
			return gapsync.FileRecord{ID: gapsync.FileID(gapsync.Intranet, ref), Origin: gapsync.Intranet, Ref: ref, Size: 5,
				ChunkSize: gapsync.MinChunkSize, Chunks: 1, MD5: strings.Repeat("a", 32), SHA256: sha, Status: status, LocalKey: key}
		}
		x, y, z := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)
		is.NoErr(db.PutFileRecords(ctx, []gapsync.FileRecord{
			rec("a", x, gapsync.FilePublished, "from-intranet/a"), rec("b", x, gapsync.FileStored, ""),
			rec("c", y, gapsync.FilePublished, ""), rec("d", z, gapsync.FileIncoming, ""),
		}))
		got, err := db.PublishedContent(ctx, []string{x, y, z, strings.Repeat("4", 64)})
		is.NoErr(err)
		is.Equal(len(got), 1)
		is.Equal(got[x].LocalKey, "from-intranet/a")
	})
}
