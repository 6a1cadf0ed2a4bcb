package transport_test

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/transport"
)

// allocDuring returns the bytes allocated while f ran.
func allocDuring(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// decodeBound is the most a decoder may allocate for n input bytes: a
// fixed allowance for the results a limit admits (500 records, 256
// chunk headers) and a multiple of the input.
func decodeBound(n int) uint64 { return 1<<20 + 64*uint64(n) }

func fileRecord(ref string, size int64) gapsync.FileRecord {
	return gapsync.FileRecord{ID: gapsync.FileID(gapsync.Internet, ref), Origin: gapsync.Internet, Ref: ref, Size: size,
		ChunkSize: gapsync.MinChunkSize, Chunks: int(gapsync.ChunkCount(size, gapsync.MinChunkSize)),
		MD5: strings.Repeat("a", 32), SHA256: strings.Repeat("b", 64), Status: gapsync.FileStored}
}

// FuzzDecodeChunks: a chunk frame never panics the decoder, costs at most
// about its size, and what decodes respects the limit and aliases the
// input.
func FuzzDecodeChunks(f *testing.F) {
	good, err := transport.AppendChunks(nil, []gapsync.Chunk{
		{FileID: "0123456789abcdef0123456789abcdef", Idx: 0, MD5: strings.Repeat("a", 32), Data: []byte("hello")},
		{FileID: "0123456789abcdef0123456789abcdef", Idx: 1, Data: []byte{}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, uint8(0))
	f.Add(good[:len(good)-1], uint8(1))
	f.Add([]byte("\x02{}\x00\x02{}\x00\x02{}\x00"), uint8(2))
	f.Add([]byte("\x02{}\xff\xff\xff\xff\x0f"), uint8(0))
	f.Add([]byte("\x10{\"idx\":-1}"), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, max uint8) {
		var cs []gapsync.Chunk
		var err error
		n := allocDuring(func() { cs, err = transport.DecodeChunks(data, int(max)) })
		if n > decodeBound(len(data)) {
			t.Fatalf("DecodeChunks allocated %d bytes for %d", n, len(data))
		}
		if err != nil {
			if !errors.Is(err, gapsync.ErrMalformed) && !errors.Is(err, gapsync.ErrTooLarge) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrTooLarge: %v", err)
			}
			return
		}
		limit := int(max)
		if limit == 0 {
			limit = transport.MaxChunksPerRequest
		}
		if len(cs) > limit {
			t.Fatalf("%d chunks decoded, limit %d", len(cs), limit)
		}
		total := 0
		for _, c := range cs {
			if c.Idx < 0 || len(c.FileID) > 64 {
				t.Fatalf("chunk %+v decoded", c)
			}
			total += len(c.Data)
		}
		if total > len(data) {
			t.Fatalf("%d data bytes from a frame of %d", total, len(data))
		}
	})
}

// FuzzDecodeOffer: the JSON bodies of the file flow (offers, records
// answers, acknowledgements, chunk requests, offer answers) never panic
// their decoders, cost a capped multiple of their size, and what decodes
// keeps to the limits: at most 500 valid records of at most
// MaxOfferChunks chunks in an offer, 256 chunk indexes of at least 0 in a
// request, answers only for records offered and chunks they have.
func FuzzDecodeOffer(f *testing.F) {
	recs := []gapsync.FileRecord{fileRecord("a.png", 10), fileRecord("b/子.bin", 3*gapsync.MinChunkSize+1)}
	partial := fileRecord("c.bin", 5*gapsync.MinChunkSize)
	partial.Status, partial.MD5, partial.SHA256 = gapsync.FilePartial, "", ""
	for _, v := range []any{
		transport.OfferRequest{Records: recs},
		transport.OfferRequest{Records: []gapsync.FileRecord{partial}},
		transport.RecordsResponse{Records: recs[:1]},
		transport.AckRequest{IDs: []string{recs[0].ID, recs[1].ID}},
		transport.ChunksRequest{FileID: recs[1].ID, Idxs: []int{0, 1, 3}},
		transport.OfferResponse{Answers: []transport.OfferAnswer{{ID: recs[1].ID, Status: gapsync.FileIncoming, Need: []int{0, 2}, Held: map[int]string{1: "x"}}}},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"records":[{},{},{}]}`))
	f.Add([]byte(`{"records":null,"x":[1,2,3]}`))
	f.Add([]byte(`{"idxs":[-1]}`))
	f.Add([]byte(`{"records":[]} trailing`))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(what string, err error) {
			t.Helper()
			if err != nil && !errors.Is(err, gapsync.ErrMalformed) && !errors.Is(err, gapsync.ErrTooLarge) {
				t.Fatalf("%s: error wraps neither ErrMalformed nor ErrTooLarge: %v", what, err)
			}
		}
		var err error
		n := allocDuring(func() {
			var offer []gapsync.FileRecord
			offer, err = transport.DecodeOffer(data)
			check("offer", err)
			total := 0
			for _, r := range offer {
				if verr := r.Validate(); verr != nil {
					t.Fatalf("offer decoded an invalid record: %v", verr)
				}
				total += r.Chunks
			}
			if len(offer) > transport.MaxOfferRecords || total > transport.MaxOfferChunks {
				t.Fatalf("offer of %d records, %d chunks decoded", len(offer), total)
			}
		})
		if n > decodeBound(len(data)) {
			t.Fatalf("DecodeOffer allocated %d bytes for %d", n, len(data))
		}
		n = allocDuring(func() {
			var got []gapsync.FileRecord
			got, err = transport.DecodeRecords(data, 200)
			check("records", err)
			if len(got) > 200 {
				t.Fatalf("%d records decoded, limit 200", len(got))
			}
		})
		if n > decodeBound(len(data)) {
			t.Fatalf("DecodeRecords allocated %d bytes for %d", n, len(data))
		}
		n = allocDuring(func() {
			var ack transport.AckRequest
			ack, err = transport.DecodeAck(data)
			check("ack", err)
			if len(ack.IDs) > transport.MaxOfferRecords {
				t.Fatalf("%d ids decoded", len(ack.IDs))
			}
			var req transport.ChunksRequest
			req, err = transport.DecodeChunksRequest(data)
			check("chunks request", err)
			if len(req.Idxs) > transport.MaxChunksPerRequest {
				t.Fatalf("%d chunk indexes decoded", len(req.Idxs))
			}
			for _, i := range req.Idxs {
				if i < 0 {
					t.Fatalf("chunk index %d decoded", i)
				}
			}
		})
		if n > decodeBound(len(data)) {
			t.Fatalf("DecodeAck and DecodeChunksRequest allocated %d bytes for %d", n, len(data))
		}
		as, err := transport.DecodeOfferAnswer(data, recs)
		check("offer answer", err)
		if len(as) > len(recs) {
			t.Fatalf("%d answers to %d records", len(as), len(recs))
		}
		for _, a := range as {
			var r *gapsync.FileRecord
			for i := range recs {
				if recs[i].ID == a.ID {
					r = &recs[i]
				}
			}
			if r == nil {
				t.Fatalf("answer for %q, not offered", a.ID)
			}
			for _, i := range a.Need {
				if i < 0 || i >= r.Chunks {
					t.Fatalf("answer needs chunk %d of %d", i, r.Chunks)
				}
			}
		}
	})
}

// FuzzDecodePullPage: a pull answer (a framed batch page) never panics
// the coordinator's decoder and costs a bounded multiple of its size.
func FuzzDecodePullPage(f *testing.F) {
	b := &batch.Batch{ID: "page", Table: "docs", Direction: "pull", Columns: []batch.Column{{Name: "id", Key: true}, {Name: "path"}},
		Rows: []batch.Row{{Op: batch.OpUpsert, Values: []any{int64(1), []byte("a.png")}}, {Op: batch.OpDelete, Values: []any{int64(2), nil}}}}
	for _, p := range []*transport.PullPage{{Batch: b, Next: []byte("next"), More: true}, {Batch: b}} {
		enc, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var err error
		n := allocDuring(func() { _, err = transport.DecodePullPage(data, nil) })
		if err != nil && !errors.Is(err, gapsync.ErrMalformed) && !errors.Is(err, batch.ErrVersion) {
			t.Fatalf("error wraps neither ErrMalformed nor ErrVersion: %v", err)
		}
		if n > 64<<10+32*uint64(len(data)) {
			t.Fatalf("DecodePullPage allocated %d bytes for %d", n, len(data))
		}
	})
}

// FuzzDecodePage: a page request (get-page, ack-page) never panics its
// decoder and costs a capped multiple of its size, and what decodes
// keeps to the limits: at most MaxPageFiles files, each named once with
// an id of at most 64 bytes, MaxChunksPerRequest indexes in all, each at
// least 0 and named once. The answer to a page decodes only chunks it
// asked for, each once.
func FuzzDecodePage(f *testing.F) {
	a, b := fileRecord("a.png", 10).ID, fileRecord("b.bin", 3*gapsync.MinChunkSize).ID
	req := transport.PageRequest{Files: []transport.ChunksRequest{{FileID: a, Idxs: []int{0}}, {FileID: b, Idxs: []int{0, 2}}, {FileID: "empty"}}}
	body, err := json.Marshal(req)
	if err != nil {
		f.Fatal(err)
	}
	answer, err := transport.AppendChunks(nil, []gapsync.Chunk{{FileID: a, Data: []byte("0123456789")}, {FileID: b, Idx: 2, Data: []byte("x")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, answer)
	f.Add([]byte(`{"files":[{"file_id":"a","idxs":[0,0]}]}`), answer[:len(answer)-1])
	f.Add([]byte(`{"files":[{"file_id":"a"},{"file_id":"a"}]}`), append(answer, answer...))
	f.Add([]byte(`{"files":[{"idxs":[-1]}],"x":{}}`), []byte("\x02{}\x00"))
	f.Add([]byte(`{"files":null}`), []byte{})
	f.Fuzz(func(t *testing.T, data, frame []byte) {
		var got transport.PageRequest
		var err error
		n := allocDuring(func() { got, err = transport.DecodePageRequest(data) })
		if n > decodeBound(len(data)) {
			t.Fatalf("DecodePageRequest allocated %d bytes for %d", n, len(data))
		}
		if err != nil {
			if !errors.Is(err, gapsync.ErrMalformed) && !errors.Is(err, gapsync.ErrTooLarge) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrTooLarge: %v", err)
			}
			got = req
		} else {
			if len(got.Files) > transport.MaxPageFiles || got.Chunks() > transport.MaxChunksPerRequest {
				t.Fatalf("%d files, %d chunks decoded", len(got.Files), got.Chunks())
			}
			ids := map[string]bool{}
			for _, f := range got.Files {
				if f.FileID == "" || len(f.FileID) > 64 || ids[f.FileID] {
					t.Fatalf("file id %q decoded", f.FileID)
				}
				ids[f.FileID] = true
				idxs := map[int]bool{}
				for _, i := range f.Idxs {
					if i < 0 || idxs[i] {
						t.Fatalf("chunk index %d of %q decoded", i, f.FileID)
					}
					idxs[i] = true
				}
			}
		}
		// The answer to got (or, when it did not decode, to req).
		var cs []gapsync.Chunk
		n = allocDuring(func() { cs, err = transport.DecodePageAnswer(frame, got) })
		if n > decodeBound(len(frame)) {
			t.Fatalf("DecodePageAnswer allocated %d bytes for %d", n, len(frame))
		}
		if err != nil {
			if !errors.Is(err, gapsync.ErrMalformed) && !errors.Is(err, gapsync.ErrTooLarge) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrTooLarge: %v", err)
			}
			return
		}
		asked := got.Keys()
		for _, c := range cs {
			k := gapsync.ChunkKey{FileID: c.FileID, Idx: c.Idx}
			if !asked[k] {
				t.Fatalf("chunk %d of %q decoded, not asked for or twice", c.Idx, c.FileID)
			}
			delete(asked, k)
		}
	})
}
