package syncer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/storage/s3store"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

const docsDDL = `CREATE TABLE docs (
	id BIGINT NOT NULL PRIMARY KEY,
	title VARCHAR(200) NULL,
	path VARCHAR(600) NULL,
	updated_at DATETIME(6) NULL)`

var docs = gapsync.Table{Name: "docs", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", FileColumns: []string{"path"}, Enabled: true}

// fileZones adds a store per side, a worker, and file options to zones.
type fileZones struct {
	*zones
	inetStore, intraStore syncer.FileStore
	worker                *syncer.IntranetWorker
	progress              atomic.Int64
	chunkSize             int64
}

func newStore(t *testing.T, kind string) syncer.FileStore {
	t.Helper()
	if kind == "s3" {
		srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
		t.Cleanup(srv.Close)
		client := s3.New(s3.Options{
			Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider("key", "secret", ""),
		})
		if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("zone")}); err != nil {
			t.Fatal(err)
		}
		st, err := s3store.New(client, "zone", &s3store.Options{PartSize: 5 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st, err := localstore.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newFileZones(t *testing.T, kind, storeKind string, chunkSize int64) *fileZones {
	t.Helper()
	return newDigestZones(t, kind, storeKind, chunkSize, digests{})
}

// digests are the file digest settings of the three roles, and the
// gateway's largest chunk (GatewayOptions.MaxChunkSize).
type digests struct {
	coord, gateway, worker string
	maxChunk               int64
}

func newDigestZones(t *testing.T, kind, storeKind string, chunkSize int64, d digests) *fileZones {
	t.Helper()
	z := &fileZones{zones: newZones(t, kind, zoneOpts{gw: &syncer.GatewayOptions{FileDigest: d.gateway, MaxChunkSize: d.maxChunk}}), chunkSize: chunkSize}
	z.both(docs, docsDDL)
	z.inetStore, z.intraStore = newStore(t, storeKind), newStore(t, storeKind)
	fo := func(st syncer.FileStore, digest string) syncer.FileOptions {
		return syncer.FileOptions{Store: st, ChunkSize: chunkSize, BatchBytes: 3 * chunkSize, Retention: -1, Digest: digest,
			Progress: func(p gapsync.Progress) { z.progress.Add(1) }}
	}
	inet := fo(z.inetStore, d.coord)
	var err error
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &inet})
	if err != nil {
		t.Fatal(err)
	}
	z.worker, err = syncer.NewIntranetWorker(z.intra, &syncer.WorkerOptions{Files: fo(z.intraStore, d.worker)})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// sendOne puts data in the internet store under ref, references it from
// a row and runs one cycle, which must send the file.
func (z *fileZones) sendOne(ref string, data []byte) {
	z.t.Helper()
	put(z.t, z.inetStore, ref, data)
	z.doc(gapsync.Internet, 1, ref)
	z.waitLag()
	r, err := z.coord.RunOnce(context.Background())
	if err != nil || r.Files.Sent != 1 {
		z.t.Fatalf("cycle sent %d files: %v", r.Files.Sent, err)
	}
}

func put(t *testing.T, st syncer.FileStore, key string, data []byte) {
	t.Helper()
	if err := st.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), syncer.FileInfo{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func sha(t *testing.T, st syncer.FileStore, key string) string {
	t.Helper()
	info, err := st.Stat(context.Background(), key)
	if err != nil {
		return "missing: " + err.Error()
	}
	rc, err := st.OpenRange(context.Background(), key, 0, info.Size)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func shaOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func (z *fileZones) doc(side gapsync.Side, id int, ref string) {
	z.t.Helper()
	db := z.src()
	if side == gapsync.Intranet {
		db = z.dst()
	}
	mustExec(z.t, db, "INSERT INTO docs (id, title, path, updated_at) VALUES (?, ?, ?, "+z.now+")", id, "doc "+ref, ref)
}

func (z *fileZones) path(side gapsync.Side, id int) string {
	z.t.Helper()
	db := z.src()
	if side == gapsync.Intranet {
		db = z.dst()
	}
	var p string
	if err := db.QueryRow("SELECT path FROM docs WHERE id = ?", id).Scan(&p); err != nil {
		return "<none>"
	}
	return p
}

// round runs a coordinator cycle and a worker run, and fails the test on
// an error other than the file flow's (which tests inspect).
func (z *fileZones) round() (*syncer.Report, syncer.WorkerReport) {
	z.t.Helper()
	z.waitLag()
	r, _ := z.coord.RunOnce(context.Background())
	if r.Err() != nil && r.FilesErr == nil {
		z.t.Fatalf("cycle: %v", r.Err())
	}
	w, _ := z.worker.RunOnce(context.Background())
	return r, w
}

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// Must-show 1 and 2: sizes and names both ways, byte-identical, and the
// referencing rows hold the local address, including rows that arrived
// before their file.
func TestFilesBothWays(t *testing.T) {
	for _, storeKind := range []string{"local", "s3"} {
		t.Run(storeKind, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, kind string) {
				is := is.New(t)
				const cs = 64 << 10
				z := newFileZones(t, kind, storeKind, cs)
				long := strings.Repeat("长", 60) + strings.Repeat("n", 20) + ".bin" // 200 characters
				files := map[string][]byte{
					"empty.bin":              {},
					"one byte.bin":           {42},
					"exact/three chunks.bin": randBytes(1, 3*cs),
					"plus one/年报 2026 😀.pdf": randBytes(2, 3*cs+1),
					long:                     randBytes(3, 1000),
				}
				id := 0
				want := map[int]string{}
				for name, data := range files {
					id++
					put(t, z.inetStore, "in/"+name, data)
					z.doc(gapsync.Internet, id, "in/"+name)
					want[id] = name
					id++
					put(t, z.intraStore, "out/"+name, data)
					z.doc(gapsync.Intranet, id, "out/"+name)
					want[id] = name
				}
				z.waitLag()
				r, err := z.coord.RunOnce(context.Background())
				is.NoErr(err)
				is.True(r.Files.Sent > 0)
				// A row that arrived before its file holds the far address
				// until the file is published, then the local one.
				is.Equal(z.path(gapsync.Intranet, 1), "in/"+want[1])
				_, err = z.worker.RunOnce(context.Background())
				is.NoErr(err)
				is.Equal(z.path(gapsync.Intranet, 1), "from-internet/in/"+want[1])
				for i := 0; i < 3; i++ {
					z.round()
				}
				for i := 1; i <= id; i++ {
					name := want[i]
					data := files[name]
					if i%2 == 1 { // internet file
						is.Equal(sha(t, z.intraStore, "from-internet/in/"+name), shaOf(data))
						is.Equal(z.path(gapsync.Intranet, i), "from-internet/in/"+name)
						is.Equal(z.path(gapsync.Internet, i), "in/"+name) // not echoed back
					} else {
						is.Equal(sha(t, z.inetStore, "from-intranet/out/"+name), shaOf(data))
						is.Equal(z.path(gapsync.Internet, i), "from-intranet/out/"+name)
						is.Equal(z.path(gapsync.Intranet, i), "out/"+name)
					}
				}
				r, _ = z.round()
				is.Equal(r.Rows(""), int64(0)) // rewrites do not echo
				is.True(z.progress.Load() > 0)
				// With Retention < 0 the chunks of published files are purged
				// at once, on both sides.
				is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_chunk"), 0)
				is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk"), 0)
			})
		})
	}
}

// Must-show 3: a corrupted chunk is caught, nothing is published, the
// failure is recorded, and the next cycle repairs it.
func TestCorruptChunkRepaired(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		const cs = 32 << 10
		z := newFileZones(t, kind, "local", cs)
		data := randBytes(9, 5*cs+17)
		z.sendOne("report.pdf", data)
		mustExec(t, z.dst(), "UPDATE file_chunk SET data = ? WHERE idx = 2", randBytes(10, cs))
		w, err := z.worker.RunOnce(context.Background())
		is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
		is.Equal(w.Published, 0)
		_, serr := z.intraStore.Stat(context.Background(), "from-internet/report.pdf")
		is.True(errors.Is(serr, fs.ErrNotExist)) // nothing published
		var msg string
		is.NoErr(z.dst().QueryRow("SELECT error FROM file_record").Scan(&msg))
		is.True(strings.Contains(msg, "checksum mismatch")) // recorded
		r, w := z.round()
		is.Equal(r.Files.Bytes, int64(cs)) // only the bad chunk crossed again
		is.Equal(w.Published, 1)
		is.Equal(sha(t, z.intraStore, "from-internet/report.pdf"), shaOf(data))
	})
}

// A page of small files is published in one batch of the store's
// (localstore.PutBatch): a file whose bytes were corrupted on the way is
// not published while the others of its page are, its chunk is dropped,
// and the next cycle repairs it.
func TestCorruptSmallFileInBatch(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		const cs = 32 << 10
		z := newFileZones(t, kind, "local", cs)
		if _, ok := z.intraStore.(syncer.BatchStore); !ok {
			t.Fatalf("%T is no BatchStore: this test would not use PutBatch", z.intraStore)
		}
		files := map[string][]byte{}
		for i := 1; i <= 6; i++ {
			ref := fmt.Sprintf("small/%d.bin", i)
			files[ref] = randBytes(uint64(20+i), 1000*i)
			put(t, z.inetStore, ref, files[ref])
			z.doc(gapsync.Internet, i, ref)
		}
		z.waitLag()
		r, err := z.coord.RunOnce(context.Background())
		is.NoErr(err)
		is.Equal(r.Files.Sent, 6)
		bad := gapsync.FileID(gapsync.Internet, "small/3.bin")
		mustExec(t, z.dst(), "UPDATE file_chunk SET data = ? WHERE file_id = ?", randBytes(99, 3000), bad)
		w, err := z.worker.RunOnce(context.Background())
		is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
		is.Equal(w.Published, 5) // the rest of the page
		_, serr := z.intraStore.Stat(context.Background(), "from-internet/small/3.bin")
		is.True(errors.Is(serr, fs.ErrNotExist)) // nothing of the bad file
		for ref, data := range files {
			if ref != "small/3.bin" {
				is.Equal(sha(t, z.intraStore, "from-internet/"+ref), shaOf(data))
			}
		}
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk WHERE file_id = '"+bad+"'"), 0) // dropped
		_, w = z.round()
		is.Equal(w.Published, 1)
		is.Equal(sha(t, z.intraStore, "from-internet/small/3.bin"), shaOf(files["small/3.bin"]))
	})
}

// The coordinator pushes two pages of records at once, and their chunk
// batches together stay within Transfers (and so does memory: about
// Transfers × BatchBytes × 3).
func TestPushPagesShareTransfers(t *testing.T) {
	is := is.New(t)
	const cs = 4 << 10
	z := newFileZones(t, "sqlite", "local", cs)
	inet := syncer.FileOptions{Store: z.inetStore, ChunkSize: cs, BatchBytes: 3 * cs, Retention: -1, Transfers: 2}
	var err error
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &inet})
	is.NoErr(err)
	const n = 450 // three pages of records
	for i := 1; i <= n; i++ {
		ref := fmt.Sprintf("p/%d.bin", i)
		put(t, z.inetStore, ref, randBytes(uint64(i), 1024))
		z.doc(gapsync.Internet, i, ref)
	}
	z.faults.mu.Lock()
	z.faults.slow = 5 * time.Millisecond
	z.faults.mu.Unlock()
	r, w := z.round()
	is.NoErr(r.FilesErr)
	is.Equal(r.Files.Sent, n)
	is.Equal(w.Published, n)
	if got := z.faults.most(transport.PathFileChunks); got > 2 || got < 1 {
		t.Fatalf("%d chunk batches were sent at once; Transfers is 2", got)
	}
}

// Must-show 4: traversal and SSRF references are refused: nothing is
// fetched and nothing is written outside the store's root.
func TestFileRefsRefused(t *testing.T) {
	is := is.New(t)
	z := newFileZones(t, "sqlite", "local", 64<<10)
	outside := filepath.Join(t.TempDir(), "secret.txt")
	is.NoErr(os.WriteFile(outside, []byte("secret"), 0o600))
	bad := []string{"../../etc/passwd", "/etc/passwd", "..%2F..%2Fetc%2Fpasswd", "a/../../" + outside, outside,
		"http://127.0.0.1:1/x", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"}
	for i, ref := range bad {
		z.doc(gapsync.Internet, i+1, ref)
	}
	files := map[string]bool{} // one record per file: "..%2F.." spells "../.."
	for _, ref := range bad {
		files[gapsync.FileID(gapsync.Internet, ref)] = true
	}
	r, _ := z.round()
	is.NoErr(r.FilesErr) // refusals by design are not failures of the cycle
	is.Equal(len(r.Refused), len(files))
	for _, err := range r.Refused {
		is.True(syncer.IsRefusal(err))
	}
	recs, err := z.inet.FileRecords(context.Background(), gapsync.Internet, 100, gapsync.FileRefused)
	is.NoErr(err)
	is.Equal(len(recs), len(files))
	for _, rec := range recs {
		is.True(strings.Contains(rec.Error, "path not allowed") || strings.Contains(rec.Error, "URL not allowed"))
		is.Equal(rec.Size, int64(0)) // never read
	}
	is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_chunk"), 0)
	r, _ = z.round() // refused references are not retried
	is.NoErr(r.FilesErr)
	is.Equal(len(r.Refused), 0)
	recs, _ = z.inet.FileRecords(context.Background(), gapsync.Internet, 100, gapsync.FileRefused)
	is.Equal(len(recs), len(files))
	for _, rec := range recs {
		is.Equal(rec.Attempts, 1)
	}
}

// Must-show 5: a transfer cut off midway resumes, and chunks that crossed
// are not sent again.
func TestFileTransferResumes(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		const cs = 16 << 10
		z := newFileZones(t, kind, "local", cs)
		data := randBytes(11, 40*cs)
		put(t, z.inetStore, "big.bin", data)
		z.doc(gapsync.Internet, 1, "big.bin")
		z.faults.mu.Lock()
		z.faults.only, z.faults.passFirst, z.faults.fail500 = "/v1/files/chunks", 4, 1000
		z.faults.mu.Unlock()
		z.waitLag()
		r, _ := z.coord.RunOnce(context.Background())
		is.True(r.FilesErr != nil) // cut off
		z.faults.inflight.Wait()   // requests the client gave up on may still land
		crossed := count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk")
		is.True(crossed > 0 && crossed < 40)
		z.faults.mu.Lock()
		z.faults.fail500 = 0
		z.faults.mu.Unlock()
		r, w := z.round()
		is.NoErr(r.FilesErr)
		is.Equal(r.Files.Bytes, int64((40-crossed)*cs)) // only what was missing
		is.Equal(w.Published, 1)
		is.Equal(sha(t, z.intraStore, "from-internet/big.bin"), shaOf(data))
	})
}

// The same bytes under two names, and again later, cross once.
func TestSameContentCrossesOnce(t *testing.T) {
	is := is.New(t)
	const cs = 16 << 10
	z := newFileZones(t, "sqlite", "local", cs)
	data := randBytes(12, 10*cs)
	put(t, z.inetStore, "a.bin", data)
	put(t, z.inetStore, "copy of a.bin", data)
	z.doc(gapsync.Internet, 1, "a.bin")
	z.doc(gapsync.Internet, 2, "copy of a.bin")
	var moved int64
	for i := 0; i < 3; i++ {
		r, _ := z.round()
		moved += r.Files.Bytes
	}
	is.Equal(moved, int64(len(data))) // once, not twice
	is.Equal(sha(t, z.intraStore, "from-internet/a.bin"), shaOf(data))
	is.Equal(sha(t, z.intraStore, "from-internet/copy of a.bin"), shaOf(data))
	put(t, z.inetStore, "later.bin", data)
	z.doc(gapsync.Internet, 3, "later.bin")
	moved = 0
	for i := 0; i < 2; i++ {
		r, _ := z.round()
		moved += r.Files.Bytes
	}
	is.Equal(moved, int64(0))
	is.Equal(sha(t, z.intraStore, "from-internet/later.bin"), shaOf(data))
	is.Equal(z.path(gapsync.Intranet, 3), "from-internet/later.bin")
}

// genReader yields n pseudo-random bytes without holding them.
type genReader struct {
	rng *rand.Rand
	n   int64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	for i := range p {
		p[i] = byte(g.rng.Uint32())
	}
	g.n -= int64(len(p))
	return len(p), nil
}

// Must-show 1, the large size: a 200 MiB file each way through MariaDB in
// 4 MiB chunks, byte-identical on arrival.
func TestFiles200MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 400 MiB")
	}
	is := is.New(t)
	z := newFileZones(t, "mysql", "local", 4<<20)
	const size = 200 << 20
	want := map[string]string{}
	for i, side := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
		st := z.inetStore
		if side == gapsync.Intranet {
			st = z.intraStore
		}
		h := sha256.New()
		r := io.TeeReader(&genReader{rng: rand.New(rand.NewPCG(uint64(i), 1)), n: size}, h)
		name := "big " + string(side) + " 大文件.bin"
		is.NoErr(st.Put(context.Background(), name, r, size, syncer.FileInfo{}))
		want[name] = hex.EncodeToString(h.Sum(nil))
		z.doc(side, i+1, name)
	}
	for i := 0; i < 3; i++ {
		z.round()
	}
	is.Equal(sha(t, z.intraStore, "from-internet/big internet 大文件.bin"), want["big internet 大文件.bin"])
	is.Equal(sha(t, z.inetStore, "from-intranet/big intranet 大文件.bin"), want["big intranet 大文件.bin"])
}

// A file of several chunks crosses while it is staged, under a partial
// record that is never published: its sums are not known yet. Once the
// full record arrives nothing crosses twice and the file is published.
func TestLargeFileCrossesWhileStaged(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		const cs = 16 << 10
		ctx := context.Background()
		z := newFileZones(t, kind, "local", cs)
		data := randBytes(21, 10*cs+5)
		put(t, z.inetStore, "big.bin", data)
		z.doc(gapsync.Internet, 1, "big.bin")
		// The partial offer passes; the full one, after staging, fails.
		z.faults.mu.Lock()
		z.faults.only, z.faults.passFirst, z.faults.fail500 = transport.PathFileOffer, 1, 1000
		z.faults.mu.Unlock()
		z.waitLag()
		r, _ := z.coord.RunOnce(ctx)
		is.True(r.FilesErr != nil)
		is.Equal(r.Files.Staged, 1)
		is.Equal(r.Files.Bytes, int64(len(data))) // every chunk crossed while staged
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk"), 11)
		var status, sum string
		is.NoErr(z.dst().QueryRow("SELECT status, sha256 FROM file_record").Scan(&status, &sum))
		is.Equal(status, gapsync.FilePartial)
		is.Equal(sum, "")
		w, err := z.worker.RunOnce(ctx)
		is.NoErr(err)
		is.Equal(w.Published, 0) // all chunks are there, but not the sums
		is.True(strings.HasPrefix(sha(t, z.intraStore, "from-internet/big.bin"), "missing"))

		z.faults.mu.Lock()
		z.faults.fail500 = 0
		z.faults.mu.Unlock()
		r, w = z.round()
		is.NoErr(r.FilesErr)
		is.Equal(r.Files.Bytes, int64(0)) // nothing crossed twice
		is.Equal(w.Published, 1)
		is.Equal(sha(t, z.intraStore, "from-internet/big.bin"), shaOf(data))
		is.Equal(z.path(gapsync.Intranet, 1), "from-internet/big.bin")
	})
}

// A stage cut off midway sends, when it is run again, only the chunks the
// intranet still lacks; a partial record that claims sums, or sizes that
// do not add up, is refused and nothing is written.
func TestPartialOffers(t *testing.T) {
	is := is.New(t)
	const cs = 16 << 10
	ctx := context.Background()
	z := newFileZones(t, "sqlite", "local", cs)
	data := randBytes(22, 12*cs)
	flaky := z.cutStage("cut.bin", data, 6*cs)
	crossed := count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk")
	is.True(crossed > 0 && crossed <= 6)
	var status string
	is.NoErr(z.dst().QueryRow("SELECT status FROM file_record").Scan(&status))
	is.Equal(status, gapsync.FilePartial)
	flaky.armed.Store(false)
	r, w := z.round()
	is.NoErr(r.FilesErr)
	is.Equal(r.Files.Bytes, int64((12-crossed)*cs)) // only what was missing
	is.Equal(w.Published, 1)
	is.Equal(sha(t, z.intraStore, "from-internet/cut.bin"), shaOf(data))

	// Bad partial records.
	id := gapsync.FileID(gapsync.Internet, "other.bin")
	good := gapsync.FileRecord{ID: id, Origin: gapsync.Internet, Ref: "other.bin", Size: 3 * cs, ChunkSize: cs, Chunks: 3, Status: gapsync.FilePartial}
	withSum, badSize := good, good
	withSum.SHA256 = strings.Repeat("a", 64)
	badSize.Chunks = 2
	var answers []transport.OfferAnswer
	var err error
	for _, rec := range []gapsync.FileRecord{withSum, badSize} {
		answers, err = z.client.OfferFiles(ctx, []gapsync.FileRecord{good, rec})
		is.True(errors.Is(err, gapsync.ErrMalformed))
		is.Equal(len(answers), 0)
	}
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE ref = 'other.bin'"), 0)
	answers, err = z.client.OfferFiles(ctx, []gapsync.FileRecord{good})
	is.NoErr(err)
	is.Equal(answers[0].Need, []int{0, 1, 2})
	// Its chunks are taken, but the record is not published.
	_, err = z.client.SendChunks(ctx, []gapsync.Chunk{{FileID: id, Idx: 0, Data: make([]byte, cs)}})
	is.NoErr(err)
	w, err = z.worker.RunOnce(ctx)
	is.NoErr(err)
	is.Equal(w.Published, 0)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk WHERE file_id = '"+id+"'"), 1)
	// A partial record nobody offered again for more than a week was
	// given up: its chunks go.
	mustExec(t, z.dst(), "UPDATE file_record SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now', '-8 days') WHERE id = ?", id)
	_, err = z.worker.RunOnce(ctx)
	is.NoErr(err)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk WHERE file_id = '"+id+"'"), 0)
}

// flakyStore fails reads from failFrom on while armed.
type flakyStore struct {
	syncer.FileStore
	failFrom int64
	armed    atomic.Bool
}

func (f *flakyStore) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if f.armed.Load() && off >= f.failFrom {
		return nil, errors.New("injected store failure")
	}
	return f.FileStore.OpenRange(ctx, key, off, n)
}

// A stage cut off midway, then the file rewritten at the same size: the
// chunks that crossed before and no longer match are sent again with the
// missing ones, and the new content is published at the first try.
func TestPartialOfferContentChanged(t *testing.T) {
	is := is.New(t)
	const cs = 16 << 10
	z := newFileZones(t, "sqlite", "local", cs)
	data := randBytes(23, 12*cs)
	flaky := z.cutStage("moving.bin", data, 6*cs)
	var held []int
	rows, err := z.dst().Query("SELECT idx FROM file_chunk ORDER BY idx")
	is.NoErr(err)
	for rows.Next() {
		var i int
		is.NoErr(rows.Scan(&i))
		held = append(held, i)
	}
	is.NoErr(rows.Err())
	is.True(len(held) > 0)
	// The first chunk changes; the file keeps its size.
	changed := bytes.Clone(data)
	changed[0] ^= 0xff
	put(t, z.inetStore, "moving.bin", changed)
	want := int64(12-len(held)) * cs
	if held[0] == 0 {
		want += cs // crossed before, changed since: sent again
	}
	flaky.armed.Store(false)
	r, w := z.round()
	is.NoErr(r.FilesErr)
	is.Equal(r.Files.Bytes, want)
	is.Equal(w.Failed, 0)
	is.Equal(w.Published, 1)
	is.Equal(sha(t, z.intraStore, "from-internet/moving.bin"), shaOf(changed))
}

// An empty intranet file is acknowledged like any other: once the
// internet side publishes it, the intranet records it delivered.
func TestEmptyIntranetFileDelivered(t *testing.T) {
	is := is.New(t)
	z := newFileZones(t, "sqlite", "local", 16<<10)
	put(t, z.intraStore, "empty.txt", nil)
	z.doc(gapsync.Intranet, 1, "empty.txt")
	var r *syncer.Report
	for range 3 {
		r, _ = z.round()
		is.NoErr(r.FilesErr)
	}
	is.Equal(sha(t, z.inetStore, "from-intranet/empty.txt"), shaOf(nil))
	var status string
	is.NoErr(z.dst().QueryRow("SELECT status FROM file_record").Scan(&status))
	is.Equal(status, gapsync.FilePublished)
}

// cutStage puts data in the internet store under ref, references it, and
// runs a cycle whose staging breaks at byte failAt (the store fails, as a
// crash would stop it): the chunks read before it crossed already. It
// replaces the coordinator with one reading through the returned store,
// still failing; disarm it to let the next cycle through.
func (z *fileZones) cutStage(ref string, data []byte, failAt int64) *flakyStore {
	z.t.Helper()
	put(z.t, z.inetStore, ref, data)
	z.doc(gapsync.Internet, 1, ref)
	flaky := &flakyStore{FileStore: z.inetStore, failFrom: failAt}
	flaky.armed.Store(true)
	var err error
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{
		Store: flaky, ChunkSize: z.chunkSize, BatchBytes: 3 * z.chunkSize, Retention: -1}})
	if err != nil {
		z.t.Fatal(err)
	}
	z.waitLag()
	if r, _ := z.coord.RunOnce(context.Background()); r.FilesErr == nil {
		z.t.Fatal("the cut stage did not fail")
	}
	z.faults.inflight.Wait()
	return flaky
}

// The same bytes offered again before the first copy is published, in
// another offer (here a later page of the same cycle), cross once: the
// complete incoming copy stands in, and the worker copies it once it is
// published.
func TestSameContentWhileIncoming(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		const cs = 16 << 10
		ctx := context.Background()
		z := newFileZones(t, kind, "local", cs)
		data := randBytes(13, 3*cs+7)
		put(t, z.inetStore, "first.bin", data)
		put(t, z.inetStore, "second.bin", data)
		z.doc(gapsync.Internet, 1, "first.bin")
		z.waitLag()
		r, err := z.coord.RunOnce(ctx) // no worker run: first.bin stays incoming
		is.NoErr(err)
		is.Equal(r.Files.Bytes, int64(len(data)))
		// 200 other files put second.bin on the page after first.bin's.
		for i := range 200 {
			ref := fmt.Sprintf("filler/%03d.txt", i)
			put(t, z.inetStore, ref, []byte(ref))
			z.doc(gapsync.Internet, 10+i, ref)
		}
		z.doc(gapsync.Internet, 2, "second.bin")
		z.waitLag()
		r, err = z.coord.RunOnce(ctx)
		is.NoErr(err)
		is.Equal(r.Files.Bytes, int64(200*len("filler/000.txt"))) // the fillers, and not the same bytes again
		w, err := z.worker.RunOnce(ctx)
		is.NoErr(err)
		is.Equal(w.Published, 202)
		is.Equal(sha(t, z.intraStore, "from-internet/first.bin"), shaOf(data))
		is.Equal(sha(t, z.intraStore, "from-internet/second.bin"), shaOf(data))
		is.Equal(z.path(gapsync.Intranet, 2), "from-internet/second.bin")
	})
}

// failingRewrites is the intranet database with reference rewrites that
// fail while fail is set (as a trigger refusing the UPDATE would).
type failingRewrites struct {
	*storage.DB
	fail atomic.Bool
}

func (d *failingRewrites) RewriteRefsMany(ctx context.Context, refs map[string]string) (int, error) {
	if d.fail.Load() {
		return 0, errors.New("injected: rewrite refused")
	}
	return d.DB.RewriteRefsMany(ctx, refs)
}

// A publish that keeps failing rests after MaxAttempts instead of writing
// the files again every run, and is tried again after RetryAfter: an
// outage longer than a few runs strands nothing.
func TestFailingPublishRestsAndRetries(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newFileZones(t, "sqlite", "local", 16<<10)
	db := &failingRewrites{DB: z.intra}
	db.fail.Store(true)
	w, err := syncer.NewIntranetWorker(db, &syncer.WorkerOptions{Files: syncer.FileOptions{Store: z.intraStore, ChunkSize: 16 << 10,
		MaxAttempts: 3, RetryAfter: time.Hour}})
	is.NoErr(err)
	put(t, z.inetStore, "a.txt", []byte("a"))
	put(t, z.inetStore, "b.txt", []byte("b"))
	z.doc(gapsync.Internet, 1, "a.txt")
	z.doc(gapsync.Internet, 2, "b.txt")
	z.waitLag()
	_, err = z.coord.RunOnce(ctx)
	is.NoErr(err)
	attempts := func() int {
		return count(t, z.dst(), "SELECT MIN(attempts) FROM file_record")
	}
	for i := 1; i <= 3; i++ {
		r, err := w.RunOnce(ctx)
		is.True(err != nil)
		is.Equal(r.Failed, 2)
		is.Equal(attempts(), i)
	}
	r, err := w.RunOnce(ctx) // resting: not tried
	is.NoErr(err)
	is.Equal(r.Failed+r.Published, 0)
	is.Equal(attempts(), 3)
	// An hour later, with the fault gone, they are published.
	db.fail.Store(false)
	mustExec(t, z.dst(), "UPDATE file_record SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now', '-2 hours')")
	r, err = w.RunOnce(ctx)
	is.NoErr(err)
	is.Equal(r.Published, 2)
	is.Equal(z.path(gapsync.Intranet, 2), "from-internet/b.txt")
}

// Many small intranet files and a large one, pulled while the large
// file's chunk fetches are cut off partway: the small files are received
// a page at a time, the large file's chunks are fetched and acknowledged
// batch by batch, and the next cycle fetches only what is missing; every
// file is published once, byte for byte, and the intranet records them
// delivered.
func TestManyIntranetFilesPulled(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		const cs = 16 << 10
		ctx := context.Background()
		z := newFileZones(t, kind, "local", cs)
		want := map[string][]byte{}
		for i := range 40 {
			ref := fmt.Sprintf("out/small-%02d.bin", i)
			want[ref] = randBytes(uint64(100+i), 1+i*400) // one chunk each
			put(t, z.intraStore, ref, want[ref])
			z.doc(gapsync.Intranet, i+1, ref)
		}
		want["out/big.bin"] = randBytes(99, 10*cs+5) // more chunks than a batch (3)
		put(t, z.intraStore, "out/big.bin", want["out/big.bin"])
		z.doc(gapsync.Intranet, 100, "out/big.bin")
		// A cycle brings the rows; the worker stages the files.
		r, w := z.round()
		is.NoErr(r.FilesErr)
		is.Equal(w.Failed, 0)
		z.faults.mu.Lock()
		z.faults.only, z.faults.passFirst, z.faults.fail500 = transport.PathFileGetChunks, 2, 1000
		z.faults.mu.Unlock()
		z.waitLag()
		r, _ = z.coord.RunOnce(ctx)
		is.True(r.FilesErr != nil) // cut off
		z.faults.inflight.Wait()
		z.faults.mu.Lock()
		z.faults.fail500 = 0
		z.faults.mu.Unlock()
		received := r.Files.Received
		is.True(received < len(want))
		for range 3 {
			r, _ = z.round()
			is.NoErr(r.FilesErr)
			received += r.Files.Received
		}
		is.Equal(received, len(want)) // each published once
		for ref, data := range want {
			is.Equal(sha(t, z.inetStore, "from-intranet/"+ref), shaOf(data))
		}
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE status = '"+gapsync.FilePublished+"'"), len(want)) // delivered
	})
}
