package syncer_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// hostileGateway answers a coordinator with sealed bodies it is given:
// the first request to each path gets its body, later ones a refusal, so
// that a cycle ends however the answers loop.
type hostileGateway struct {
	keys    *crypto.Keyring
	mu      sync.Mutex
	answers map[string][]byte
}

func (h *hostileGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	env, _ := io.ReadAll(r.Body)
	req, _, err := h.keys.Open(nil, env, nil)
	if err != nil {
		http.Error(w, "bad envelope", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	body, ok := h.answers[r.URL.Path]
	delete(h.answers, r.URL.Path)
	h.mu.Unlock()
	if !ok {
		switch r.URL.Path {
		case transport.PathFileAck, transport.PathFileAckChunks, transport.PathFileAckPage:
			body = []byte("{}")
		case transport.PathFileRecords:
			body = []byte(`{"records":[]}`)
		default:
			http.Error(w, "no more", http.StatusServiceUnavailable)
			return
		}
	}
	out, _, err := h.keys.Seal(nil, crypto.Header{Sender: transport.ZoneExternal, Endpoint: "RESP " + r.URL.Path, ReplyTo: req.MessageID}, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(out)
}

// FuzzPullAnswers is a compromised gateway answering the coordinator's
// pulls: a table page, a records answer and a chunks answer (to a page
// of files, and to one file's request), each sealed with the right key.
// No answer may panic the coordinator, make it allocate far beyond the
// answers, or store a record that fails the checks of an offer.
func FuzzPullAnswers(f *testing.F) {
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
	pullOnly := docs
	pullOnly.Direction = gapsync.Pull
	if err := db.Configure(ctx, pullOnly); err != nil {
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
	gw := &hostileGateway{keys: keys}
	srv := httptest.NewServer(gw)
	f.Cleanup(srv.Close)
	client, err := transport.NewClient(srv.URL, keys, &transport.ClientOptions{RetryMax: -1})
	if err != nil {
		f.Fatal(err)
	}
	store, err := localstore.New(f.TempDir(), nil)
	if err != nil {
		f.Fatal(err)
	}
	coord, err := syncer.NewCoordinator(db, client, &syncer.CoordinatorOptions{
		Files: &syncer.FileOptions{Store: store, ChunkSize: gapsync.MinChunkSize, Retention: -1}})
	if err != nil {
		f.Fatal(err)
	}

	data := []byte("intranet bytes")
	rec := gapsync.FileRecord{ID: gapsync.FileID(gapsync.Intranet, "in.bin"), Origin: gapsync.Intranet, Ref: "in.bin",
		Size: int64(len(data)), ChunkSize: gapsync.MinChunkSize, Chunks: 1, MD5: md5Of(data), SHA256: shaOf(data), Status: gapsync.FileStored}
	records, _ := json.Marshal(transport.RecordsResponse{Records: []gapsync.FileRecord{rec}})
	chunks, _ := transport.AppendChunks(nil, []gapsync.Chunk{{FileID: rec.ID, Idx: 0, SHA256: shaOf(data), Data: data}})
	page := &transport.PullPage{Batch: &batch.Batch{ID: "page", Table: "docs", Direction: "pull",
		Columns: []batch.Column{{Name: "id", Key: true}, {Name: "title"}, {Name: "path"}, {Name: "updated_at"}},
		Rows:    []batch.Row{{Op: batch.OpUpsert, Values: []any{int64(1), []byte("t"), []byte("in.bin"), []byte("2026-01-01 00:00:00.000000")}}}}}
	pageBytes, err := page.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	bad := rec
	bad.Chunks = -1
	badRecords, _ := json.Marshal(transport.RecordsResponse{Records: []gapsync.FileRecord{bad}})
	f.Add(pageBytes, records, chunks)
	f.Add(pageBytes[:len(pageBytes)/2], badRecords, []byte("\x02{}\x00"))
	f.Add([]byte{}, []byte(`{"records":[{}]}`), []byte{})
	f.Add([]byte{}, []byte(strings.Replace(string(records), `"chunk_size":4096`, `"chunk_size":1`, 1)), chunks)

	f.Fuzz(func(t *testing.T, pageAnswer, recordsAnswer, chunksAnswer []byte) {
		gw.mu.Lock()
		gw.answers = map[string][]byte{
			transport.PathBound:         []byte(`{"bound":"2100-01-01 00:00:00.000000"}`),
			transport.PathPull:          pageAnswer,
			transport.PathFileRecords:   recordsAnswer,
			transport.PathFileGetChunks: chunksAnswer,
			transport.PathFileGetPage:   chunksAnswer, // the same frame answers a page
		}
		gw.mu.Unlock()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, _ = coord.RunOnce(ctx)
		runtime.ReadMemStats(&m1)
		in := uint64(len(pageAnswer) + len(recordsAnswer) + len(chunksAnswer))
		if n := m1.TotalAlloc - m0.TotalAlloc; n > 48<<20+64*in {
			t.Fatalf("a cycle allocated %d bytes for answers of %d", n, in)
		}
		recs, err := db.FileRecords(ctx, gapsync.Intranet, 0, gapsync.FileIncoming, gapsync.FilePublished, gapsync.FileFailed, gapsync.FileStored)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := r.Validate(); err != nil {
				t.Fatalf("a pulled record that fails the checks was stored: %v", err)
			}
		}
		// Start the next input from nothing.
		for _, q := range []string{"DELETE FROM file_record", "DELETE FROM file_chunk", "DELETE FROM docs", "DELETE FROM sync_log"} {
			if _, err := db.Bun().DB.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func md5Of(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
