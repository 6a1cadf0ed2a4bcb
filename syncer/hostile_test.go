package syncer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/transport"
)

// allocated returns the bytes the whole process allocated while f ran:
// the client, the loopback gateway and the databases' drivers together.
func allocated(f func()) uint64 {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

const mib = 1 << 20

// record returns a complete record of ref from origin of size bytes in
// chunks of cs, with made-up sums.
func record(origin gapsync.Side, ref string, size, cs int64, status string) gapsync.FileRecord {
	return gapsync.FileRecord{ID: gapsync.FileID(origin, ref), Origin: origin, Ref: ref, Size: size, ChunkSize: cs,
		Chunks: int(gapsync.ChunkCount(size, cs)), MD5: strings.Repeat("a", 32), SHA256: strings.Repeat("b", 64), Status: status}
}

// Finding: a 295-byte offer of one-byte chunks of a huge file made the
// gateway list every chunk index (1.9 GiB). Now such a record is refused
// at once, the largest valid one costs a capped answer, and an offer
// over the record or total chunk limits is refused.
func TestOfferCannotAmplify(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})

	attack := record(gapsync.Internet, "huge.bin", 1<<23, 1, gapsync.FileStored)
	body, err := json.Marshal(transport.OfferRequest{Records: []gapsync.FileRecord{attack}})
	is.NoErr(err)
	n := allocated(func() { _, err = z.client.Call(ctx, transport.PathFileOffer, body) })
	t.Logf("offer of %d bytes, one-byte chunks: %v; %.1f MiB allocated", len(body), err, float64(n)/mib)
	is.True(errors.Is(err, gapsync.ErrMalformed))
	is.True(n < 4*mib)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record"), 0) // nothing written

	// The largest record allowed: its answer lists every chunk (2 MiB of
	// indexes), and costs a few times that list on both sides (more
	// under the race detector, which drops pooled buffers).
	big := record(gapsync.Internet, "big.bin", gapsync.MaxChunks*gapsync.MaxChunkSize/16, gapsync.MaxChunkSize/16, gapsync.FileStored)
	is.Equal(big.Chunks, gapsync.MaxChunks)
	var as []transport.OfferAnswer
	n = allocated(func() { as, err = z.client.OfferFiles(ctx, []gapsync.FileRecord{big}) })
	t.Logf("offer of the largest record: %.1f MiB allocated", float64(n)/mib)
	is.NoErr(err)
	is.Equal(len(as), 1)
	is.Equal(len(as[0].Need), gapsync.MaxChunks)
	is.True(n < 64*mib)

	// One chunk more, or two records over the total, are refused.
	over := record(gapsync.Internet, "over.bin", (gapsync.MaxChunks+1)*gapsync.MaxChunkSize/16, gapsync.MaxChunkSize/16, gapsync.FileStored)
	_, err = z.client.OfferFiles(ctx, []gapsync.FileRecord{over})
	is.True(errors.Is(err, gapsync.ErrTooLarge))
	half := gapsync.MaxChunks/2 + 1
	a := record(gapsync.Internet, "a.bin", int64(half)*gapsync.MinChunkSize*4, gapsync.MinChunkSize*4, gapsync.FileStored)
	b := record(gapsync.Internet, "b.bin", int64(half)*gapsync.MinChunkSize*4, gapsync.MinChunkSize*4, gapsync.FileStored)
	_, err = z.client.OfferFiles(ctx, []gapsync.FileRecord{a, b})
	is.True(errors.Is(err, gapsync.ErrTooLarge))
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE ref <> 'big.bin'"), 0)
}

// Finding: such a record, once stored, made every intranet worker run
// allocate about 900 MiB. The worker checks what it reads from its
// database: a bad record is refused (and never read again), and a run
// allocates what the chunks held take, not what a record claims.
func TestWorkerRefusesBadRecords(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newFileZones(t, "sqlite", "local", 16<<10)
	huge := record(gapsync.Internet, "huge.bin", 1<<23, 1, gapsync.FileIncoming)
	negative := record(gapsync.Internet, "negative.bin", 100, 16<<10, gapsync.FileIncoming)
	negative.Chunks = -1
	waiting := record(gapsync.Internet, "waiting.bin", gapsync.MaxChunks*(16<<10), 16<<10, gapsync.FileIncoming)
	is.NoErr(z.intra.PutFileRecords(ctx, []gapsync.FileRecord{huge, negative, waiting}))

	var w any
	var err error
	n := allocated(func() { w, err = z.worker.RunOnce(ctx) })
	t.Logf("worker run: %+v, %v; %.1f MiB allocated", w, err, float64(n)/mib)
	is.NoErr(err)
	is.True(n < 8*mib)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE status = 'refused'"), 2)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE status = 'incoming'"), 1) // the valid one waits
	n = allocated(func() { _, err = z.worker.RunOnce(ctx) })
	is.NoErr(err)
	is.True(n < 8*mib)
}

// Finding: the chunk frame was decoded whole before its 256-chunk limit
// was checked (32 MiB allocated 5.5 GiB). Now the decoder stops at the
// first chunk past the limit.
func TestChunkFrameStopsAtLimit(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	frame := binary.AppendUvarint(nil, 2)
	frame = append(frame, "{}"...)
	frame = binary.AppendUvarint(frame, 0)
	body := bytes.Repeat(frame, (4*mib)/len(frame))
	var err error
	n := allocated(func() { _, err = z.client.Call(ctx, transport.PathFileChunks, body) })
	t.Logf("frame of %d empty chunks (%d bytes): %v; %.1f MiB allocated", len(body)/len(frame), len(body), err, float64(n)/mib)
	is.True(errors.Is(err, gapsync.ErrTooLarge))
	is.True(strings.Contains(err.Error(), "chunks in one frame")) // the decoder's refusal, not the body cap's
	is.True(n < 40*mib)                                           // the body sealed, read and opened: about 4 copies
}

// Finding: JSON offers were decoded whole before their 500-record limit
// was checked (24 MiB allocated 9 GiB). Now they are read as a stream
// that stops at the first record over a limit or invalid.
func TestOfferStreamStopsAtLimit(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	var buf bytes.Buffer
	buf.WriteString(`{"records":[{}`)
	for buf.Len() < 4*mib {
		buf.WriteString(",{}")
	}
	buf.WriteString("]}")
	var err error
	n := allocated(func() { _, err = z.client.Call(ctx, transport.PathFileOffer, buf.Bytes()) })
	t.Logf("offer of %d empty records: %v; %.1f MiB allocated", buf.Len()/3, err, float64(n)/mib)
	is.True(errors.Is(err, gapsync.ErrMalformed))
	is.True(n < 40*mib)

	// Valid records, one over the count.
	recs := make([]gapsync.FileRecord, transport.MaxOfferRecords+1)
	for i := range recs {
		recs[i] = record(gapsync.Internet, "f"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+string(rune('a'+i/26)), 10, gapsync.MinChunkSize, gapsync.FileStored)
	}
	_, err = z.client.OfferFiles(ctx, recs)
	is.True(errors.Is(err, gapsync.ErrTooLarge))
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record"), 0)
}

// Finding: a batch was decoded (16 times its size) before its table was
// checked. Now the gateway reads the header, refuses a table it does not
// apply, and only then decodes the rows.
func TestApplyChecksTableBeforeRows(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	b := &batch.Batch{ID: "b1", Table: "nope", Direction: string(gapsync.Push),
		Columns: []batch.Column{{Name: "id", Key: true}, {Name: "a"}, {Name: "b"}}}
	b.Rows = make([]batch.Row, 1_000_000) // the default row limit
	for i := range b.Rows {
		b.Rows[i] = batch.Row{Op: batch.OpUpsert, Values: []any{nil, nil, nil}}
	}
	body, err := b.MarshalBinary()
	is.NoErr(err)
	b = nil
	n := allocated(func() { _, err = z.client.Call(ctx, transport.PathApply, body) })
	t.Logf("batch of %d bytes for an unknown table: %v; %.1f MiB allocated", len(body), err, float64(n)/mib)
	is.True(errors.Is(err, gapsync.ErrUnknownTable))
	is.True(n < 40*mib) // about 4 copies of the body, 6 under the race detector
}

// Finding: a record with chunks = -1 in the intranet database panicked
// the coordinator, and the deferred metrics then dereferenced a nil
// report. Now every pulled record passes the checks of an offer; one that
// fails is acknowledged and dropped, and the others go on.
func TestPulledRecordsValidated(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newFileZones(t, "sqlite", "local", 16<<10)
	negative := record(gapsync.Intranet, "negative.bin", 100, 16<<10, gapsync.FileStored)
	negative.Chunks = -1
	huge := record(gapsync.Intranet, "huge.bin", 1<<23, 1, gapsync.FileStored)
	wrongID := record(gapsync.Intranet, "wrong.bin", 100, 16<<10, gapsync.FileStored)
	wrongID.ID = gapsync.FileID(gapsync.Internet, "wrong.bin")
	data := randBytes(31, 40<<10)
	put(t, z.intraStore, "good.bin", data)
	_, err := z.intra.NoteFiles(ctx, gapsync.Intranet, []string{"good.bin"})
	is.NoErr(err)
	_, err = z.worker.RunOnce(ctx) // stages good.bin
	is.NoErr(err)
	r, err := z.coord.RunOnce(ctx)
	is.NoErr(err)
	is.Equal(r.Files.Received, 1)
	is.Equal(sha(t, z.inetStore, "from-intranet/good.bin"), shaOf(data))

	// The bad ones; the one of chunks -1 has the content of good.bin,
	// which made the coordinator list its chunks to acknowledge them.
	negative.SHA256 = shaOf(data)
	is.NoErr(z.intra.PutFileRecords(ctx, []gapsync.FileRecord{negative, huge, wrongID}))
	n := allocated(func() { r, err = z.coord.RunOnce(ctx) })
	t.Logf("cycle: %v; %.1f MiB allocated", err, float64(n)/mib)
	is.NoErr(err)
	is.True(n < 16*mib)
	is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_record"), 1) // good.bin only
	// Acknowledged, so that they do not come back.
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE acked"), 4)
}
