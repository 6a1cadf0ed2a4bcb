package syncer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

var gatewayPaths = []string{
	transport.PathApply, transport.PathBound, transport.PathPull,
	transport.PathFileOffer, transport.PathFileChunks, transport.PathFileRecords,
	transport.PathFileAck, transport.PathFileGetChunks, transport.PathFileAckChunks,
	transport.PathFileGetPage, transport.PathFileAckPage,
}

// fuzzGateway returns a Gateway over a fresh SQLite intranet database
// with the docs table and one intranet file of one chunk, and its keys.
func fuzzGateway(f *testing.F) (*syncer.Gateway, *crypto.Keyring, gapsync.FileRecord) {
	ctx := context.Background()
	db, err := storage.OpenSQLite(testdb.SQLite(f), &storage.Options{Lag: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	if _, err := db.Bun().DB.Exec(docsDDL); err != nil {
		f.Fatal(err)
	}
	if err := db.Configure(ctx, docs); err != nil {
		f.Fatal(err)
	}
	data := []byte("intranet bytes")
	in := gapsync.FileRecord{ID: gapsync.FileID(gapsync.Intranet, "in.bin"), Origin: gapsync.Intranet, Ref: "in.bin",
		Size: int64(len(data)), ChunkSize: gapsync.MinChunkSize, Chunks: 1, MD5: strings.Repeat("a", 32), SHA256: shaOf(data), Status: gapsync.FileStored}
	if err := db.PutFileRecords(ctx, []gapsync.FileRecord{in}); err != nil {
		f.Fatal(err)
	}
	if err := db.PutChunks(ctx, []gapsync.Chunk{{FileID: in.ID, Idx: 0, SHA256: shaOf(data), Data: data}}); err != nil {
		f.Fatal(err)
	}
	k, err := crypto.GenerateKey("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	keys, err := crypto.NewKeyring(k)
	if err != nil {
		f.Fatal(err)
	}
	gw, err := syncer.NewGateway(db, keys, nil)
	if err != nil {
		f.Fatal(err)
	}
	return gw, keys, in
}

// FuzzGatewayHandlers sends every gateway endpoint sealed random bodies,
// as a compromised internet side could: no body may panic the gateway or
// make it allocate more than a capped multiple of the body (the largest
// offer answer a valid record can ask for, about 30 MiB, is the cap).
// Each answer is a sealed reply to its request, or a plain refusal.
func FuzzGatewayHandlers(f *testing.F) {
	gw, keys, in := fuzzGateway(f)
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	push := &batch.Batch{ID: "b1", Table: "docs", Direction: string(gapsync.Push),
		Columns: []batch.Column{{Name: "id", Key: true}, {Name: "title"}, {Name: "path"}, {Name: "updated_at"}},
		Rows:    []batch.Row{{Op: batch.OpUpsert, Values: []any{int64(1), []byte("t"), []byte("a.png"), []byte("2026-01-01 00:00:00.000000")}}}}
	enc, err := push.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	offered := gapsync.FileRecord{ID: gapsync.FileID(gapsync.Internet, "a.png"), Origin: gapsync.Internet, Ref: "a.png",
		Size: 5, ChunkSize: gapsync.MinChunkSize, Chunks: 1, MD5: strings.Repeat("c", 32), SHA256: strings.Repeat("d", 64), Status: gapsync.FileStored}
	frame, err := transport.AppendChunks(nil, []gapsync.Chunk{{FileID: offered.ID, Idx: 0, Data: []byte("hello")}})
	if err != nil {
		f.Fatal(err)
	}
	seeds := map[string][]byte{
		transport.PathApply:         enc,
		transport.PathBound:         js(transport.BoundRequest{Table: "docs"}),
		transport.PathPull:          js(transport.PullRequest{Table: "docs", Window: gapsync.Window{To: "2100-01-01 00:00:00.000000"}}),
		transport.PathFileOffer:     js(transport.OfferRequest{Records: []gapsync.FileRecord{offered}}),
		transport.PathFileChunks:    frame,
		transport.PathFileRecords:   js(transport.RecordsRequest{Limit: 10}),
		transport.PathFileAck:       js(transport.AckRequest{IDs: []string{in.ID}}),
		transport.PathFileGetChunks: js(transport.ChunksRequest{FileID: in.ID, Idxs: []int{0}}),
		transport.PathFileAckChunks: js(transport.ChunksRequest{FileID: in.ID, Idxs: []int{0}}),
		transport.PathFileGetPage:   js(transport.PageRequest{Files: []transport.ChunksRequest{{FileID: in.ID, Idxs: []int{0}}}}),
		transport.PathFileAckPage:   js(transport.PageRequest{Files: []transport.ChunksRequest{{FileID: in.ID, Idxs: []int{0}}}}),
	}
	for i, p := range gatewayPaths {
		f.Add(uint8(i), seeds[p])
		f.Add(uint8(i), []byte("{}"))
		f.Add(uint8(i), []byte{})
	}
	f.Add(uint8(3), []byte(`{"records":[{"id":"`+offered.ID+`","origin":"internet","ref":"a.png","size":1099511627776,"chunk_size":1,"chunks":1099511627776}]}`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := gatewayPaths[int(which)%len(gatewayPaths)]
		env, h, err := keys.Seal(nil, crypto.Header{Sender: transport.ZoneInternet, Endpoint: "POST " + path}, body)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(env))
		w := httptest.NewRecorder()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		gw.ServeHTTP(w, req)
		runtime.ReadMemStats(&m1)
		if n := m1.TotalAlloc - m0.TotalAlloc; n > 48<<20+64*uint64(len(body)) {
			t.Fatalf("%s: %d bytes allocated for a body of %d", path, n, len(body))
		}
		if w.Code == http.StatusOK {
			if _, _, err := keys.Open(nil, w.Body.Bytes(), &crypto.OpenOptions{
				Endpoint: "RESP " + path, Sender: transport.ZoneExternal, ReplyTo: h.MessageID}); err != nil {
				t.Fatalf("%s: answer 200 is not a sealed reply: %v", path, err)
			}
		}
	})
}
