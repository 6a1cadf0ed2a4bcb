package syncer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

var _ syncer.PageAcker = (*storage.DB)(nil)
var _ syncer.PageTransport = (*transport.Client)(nil)
var _ syncer.ContentFinder = (*storage.DB)(nil)

// smallIntranetFiles puts n intranet files of 1 to 100 bytes (the first
// one empty) in the intranet store, references each from an intranet
// row, and runs a round, which brings the rows here and stages the files
// there. It returns the bytes by reference.
func (z *fileZones) smallIntranetFiles(n int) map[string][]byte {
	z.t.Helper()
	want := map[string][]byte{}
	var q strings.Builder
	var args []any
	q.WriteString("INSERT INTO docs (id, title, path, updated_at) VALUES ")
	for i := range n {
		ref := fmt.Sprintf("out/p-%03d.bin", i)
		want[ref] = randBytes(uint64(1000+i), min(i, 1+i%100))
		put(z.t, z.intraStore, ref, want[ref])
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?, ?, ?, " + z.now + ")")
		args = append(args, i+1, "doc", ref)
	}
	mustExec(z.t, z.dst(), q.String(), args...)
	r, w := z.round()
	if r.FilesErr != nil || w.Failed != 0 || w.Staged != n {
		z.t.Fatalf("rows and staging: %v, %d failed, %d of %d staged", r.FilesErr, w.Failed, w.Staged, n)
	}
	return want
}

// delivered checks that every file of want is published here byte for
// byte, its row points at it, and the intranet records each delivered.
func (z *fileZones) delivered(want map[string][]byte) {
	z.t.Helper()
	is := is.New(z.t)
	for ref, data := range want {
		is.Equal(sha(z.t, z.inetStore, "from-intranet/"+ref), shaOf(data))
	}
	is.Equal(z.path(gapsync.Internet, 2), "from-intranet/out/p-001.bin")
	is.Equal(count(z.t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE status = '"+gapsync.FilePublished+"'"), len(want))
	is.Equal(count(z.t, z.dst(), "SELECT COUNT(*) FROM file_chunk WHERE synced = FALSE"), 0)
	// Nothing doubled here: one record, one chunk and one mapping a file.
	is.Equal(count(z.t, z.src(), "SELECT COUNT(*) FROM file_record WHERE origin = 'intranet'"), len(want))
	is.Equal(count(z.t, z.src(), "SELECT COUNT(*) FROM path_mapping"), len(want))
}

// 500 small intranet files cross in pages: two get-page requests of up
// to 256 files and their two acknowledgements (and one for the empty
// file, which has no chunk to fetch), no per-file request, every file
// byte-identical and delivered.
func TestSmallFilesPulledInPages(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newFileZones(t, kind, "local", 16<<10)
		want := z.smallIntranetFiles(500)
		r, _ := z.round()
		is.NoErr(r.FilesErr)
		is.Equal(r.Files.Received, 500)
		is.Equal(z.faults.calls(transport.PathFileGetPage), 2)
		is.Equal(z.faults.calls(transport.PathFileAckPage), 3)
		is.Equal(z.faults.calls(transport.PathFileGetChunks), 0)
		is.Equal(z.faults.calls(transport.PathFileAckChunks), 0)
		z.delivered(want)
	})
}

// A run stopped between storing a page's chunks here and acknowledging
// them (the acknowledgement never reaches the intranet) loses nothing:
// the chunks are held here, the intranet still offers the files, and
// the next run publishes them from what is held, without fetching them
// again, and acknowledges them then. Each file is published once.
func TestPagedPullStoppedBeforeAck(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newFileZones(t, kind, "local", 16<<10)
		want := z.smallIntranetFiles(300)
		z.faults.mu.Lock()
		z.faults.only, z.faults.fail500 = transport.PathFileAckPage, 1000
		z.faults.mu.Unlock()
		r, _ := z.round()
		is.True(r.FilesErr != nil)
		is.Equal(r.Files.Received, 0)                                                  // nothing is published before its acknowledgement
		is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_chunk"), 299)            // but held here, durably (the empty file has none)
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk WHERE synced"), 0) // and not acknowledged there
		z.faults.mu.Lock()
		z.faults.fail500 = 0
		z.faults.mu.Unlock()
		gets := z.faults.calls(transport.PathFileGetPage)
		r, _ = z.round()
		is.NoErr(r.FilesErr)
		is.Equal(r.Files.Received, 300)
		is.Equal(z.faults.calls(transport.PathFileGetPage), gets) // not fetched again
		z.delivered(want)
	})
}

// A get-page answer lost on the way, and an acknowledgement the intranet
// committed whose answer was lost: the next run fetches what it did not
// get, acknowledges again what it is not sure of, and every file is
// published once.
func TestPagedPullAnswersLost(t *testing.T) {
	for _, path := range []string{transport.PathFileGetPage, transport.PathFileAckPage} {
		t.Run(path, func(t *testing.T) {
			is := is.New(t)
			z := newFileZones(t, "sqlite", "local", 16<<10)
			want := z.smallIntranetFiles(300)
			z.faults.mu.Lock()
			z.faults.only, z.faults.passFirst, z.faults.dropLate = path, 1, 1 // the second page
			z.faults.mu.Unlock()
			r, _ := z.round()
			is.True(r.FilesErr != nil)
			z.faults.inflight.Wait()
			received := r.Files.Received
			is.True(received < 300)
			r, _ = z.round()
			is.NoErr(r.FilesErr)
			is.Equal(received+r.Files.Received, 300)
			z.delivered(want)
		})
	}
}

// failingChunks is the internet database with chunk writes that fail
// while fail is set.
type failingChunks struct {
	*storage.DB
	fail atomic.Bool
}

func (d *failingChunks) PutChunks(ctx context.Context, cs []gapsync.Chunk) error {
	if d.fail.Load() {
		return errors.New("injected: chunk write failed")
	}
	return d.DB.PutChunks(ctx, cs)
}

// Chunks that could not be stored here are not acknowledged: the
// intranet keeps offering them, and the next run fetches them.
func TestPagedPullStoreFails(t *testing.T) {
	is := is.New(t)
	z := newFileZones(t, "sqlite", "local", 16<<10)
	db := &failingChunks{DB: z.inet}
	var err error
	z.coord, err = syncer.NewCoordinator(db, z.client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{
		Store: z.inetStore, ChunkSize: 16 << 10, BatchBytes: 48 << 10, Retention: -1}})
	is.NoErr(err)
	want := z.smallIntranetFiles(300)
	db.fail.Store(true)
	r, _ := z.round()
	is.True(r.FilesErr != nil)
	is.Equal(r.Files.Received, 1) // the empty file only
	is.Equal(z.faults.calls(transport.PathFileAckPage), 1)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk WHERE synced"), 0)
	db.fail.Store(false)
	r, _ = z.round()
	is.NoErr(r.FilesErr)
	is.Equal(r.Files.Received, 299)
	z.delivered(want)
}

// A gateway from before the pages (404 for both) is served file by file.
func TestOldGatewayPulledFileByFile(t *testing.T) {
	is := is.New(t)
	z := newFileZones(t, "sqlite", "local", 16<<10)
	want := z.smallIntranetFiles(30)
	z.faults.mu.Lock()
	z.faults.gone = map[string]bool{transport.PathFileGetPage: true, transport.PathFileAckPage: true}
	z.faults.mu.Unlock()
	r, _ := z.round()
	is.NoErr(r.FilesErr)
	is.Equal(r.Files.Received, 30)
	is.Equal(z.faults.calls(transport.PathFileGetPage), 1) // one try a run
	is.Equal(z.faults.calls(transport.PathFileGetChunks), 29)
	is.Equal(z.faults.calls(transport.PathFileAckChunks), 30)
	z.delivered(want)
}

// Page requests a compromised internet side could send are refused with
// a clear error before anything is written: unknown, other-origin and
// unstaged files, files or indexes named twice, indexes out of range,
// too many files or indexes, and more bytes than one answer carries. A
// page with one bad file acknowledges none of the good ones.
func TestPageRequestsRefused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newFileZones(t, "sqlite", "local", 16<<10)
	z.smallIntranetFiles(3)
	good := gapsync.FileID(gapsync.Intranet, "out/p-001.bin")
	inet := record(gapsync.Internet, "in.bin", 10, 16<<10, gapsync.FileStored)
	unstaged := record(gapsync.Intranet, "later.bin", 10, 16<<10, gapsync.FileExtracted)
	huge := record(gapsync.Intranet, "huge.bin", 3*gapsync.MaxChunkSize, gapsync.MaxChunkSize, gapsync.FileStored)
	is.NoErr(z.intra.PutFileRecords(ctx, []gapsync.FileRecord{inet, unstaged, huge}))
	file := func(id string, idxs ...int) transport.ChunksRequest {
		return transport.ChunksRequest{FileID: id, Idxs: idxs}
	}
	var many []transport.ChunksRequest
	for i := range transport.MaxPageFiles + 1 {
		many = append(many, file(fmt.Sprintf("f%d", i)))
	}
	var idxs []int
	for i := range transport.MaxChunksPerRequest + 1 {
		idxs = append(idxs, i)
	}
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	for name, c := range map[string]struct {
		body []byte
		want error
	}{
		"unknown file":        {js(transport.PageRequest{Files: []transport.ChunksRequest{file(good, 0), file("nope", 0)}}), gapsync.ErrMalformed},
		"internet file":       {js(transport.PageRequest{Files: []transport.ChunksRequest{file(good, 0), file(inet.ID, 0)}}), gapsync.ErrMalformed},
		"not staged":          {js(transport.PageRequest{Files: []transport.ChunksRequest{file(good, 0), file(unstaged.ID, 0)}}), gapsync.ErrMalformed},
		"file twice":          {js(transport.PageRequest{Files: []transport.ChunksRequest{file(good, 0), file(good, 0)}}), gapsync.ErrMalformed},
		"index twice":         {js(transport.PageRequest{Files: []transport.ChunksRequest{file(good, 0, 0)}}), gapsync.ErrMalformed},
		"index out of range":  {js(transport.PageRequest{Files: []transport.ChunksRequest{file(good, 0), file(huge.ID, 3)}}), gapsync.ErrMalformed},
		"negative index":      {[]byte(`{"files":[{"file_id":"` + good + `","idxs":[-1]}]}`), gapsync.ErrMalformed},
		"no file id":          {[]byte(`{"files":[{"idxs":[0]}]}`), gapsync.ErrMalformed},
		"too many files":      {js(transport.PageRequest{Files: many}), gapsync.ErrTooLarge},
		"too many indexes":    {js(transport.PageRequest{Files: []transport.ChunksRequest{file(huge.ID, idxs...)}}), gapsync.ErrTooLarge},
		"not an object":       {[]byte(`[1,2]`), gapsync.ErrMalformed},
		"trailing data":       {[]byte(`{"files":[]} {}`), gapsync.ErrMalformed},
		"long file id":        {js(transport.PageRequest{Files: []transport.ChunksRequest{file(strings.Repeat("a", 65), 0)}}), gapsync.ErrMalformed},
		"files not a list":    {[]byte(`{"files":{"a":1}}`), gapsync.ErrMalformed},
		"index not a number":  {[]byte(`{"files":[{"file_id":"` + good + `","idxs":["0"]}]}`), gapsync.ErrMalformed},
		"index list too long": {js(transport.PageRequest{Files: []transport.ChunksRequest{file(good, 0), file(huge.ID, idxs[:transport.MaxChunksPerRequest]...)}}), gapsync.ErrTooLarge},
	} {
		for _, path := range []string{transport.PathFileGetPage, transport.PathFileAckPage} {
			_, err := z.client.Call(ctx, path, c.body)
			if !errors.Is(err, c.want) {
				t.Errorf("%s to %s: %v, want %v", name, path, err, c.want)
			}
		}
	}
	// More bytes than one answer carries: refused for a get (an ack
	// carries no bytes, and the huge file's chunks are not here).
	_, err := z.client.Call(ctx, transport.PathFileGetPage, js(transport.PageRequest{Files: []transport.ChunksRequest{file(huge.ID, 0, 1, 2)}}))
	is.True(errors.Is(err, gapsync.ErrTooLarge))
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk WHERE synced"), 0)
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE status = '"+gapsync.FilePublished+"'"), 0)
	// The good file alone is acknowledged and delivered.
	is.NoErr(z.client.AckPage(ctx, transport.PageRequest{Files: []transport.ChunksRequest{file(good, 0)}}))
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE status = '"+gapsync.FilePublished+"'"), 1)
}

// strayPage is a PageTransport that adds to every page a chunk of a file
// the page did not ask for, as a transport of a user's own might pass.
type strayPage struct{ *transport.Client }

func (s strayPage) GetPage(ctx context.Context, req transport.PageRequest) ([]gapsync.Chunk, error) {
	cs, err := s.Client.GetPage(ctx, req)
	return append(cs, gapsync.Chunk{FileID: "not-asked-for", Idx: 0, Data: []byte("x")}), err
}

// A page answer holding a chunk it did not ask for is refused, not
// stored, and nothing of the page is acknowledged or published.
func TestPagedPullRefusesStrayChunk(t *testing.T) {
	is := is.New(t)
	z := newFileZones(t, "sqlite", "local", 16<<10)
	var err error
	z.coord, err = syncer.NewCoordinator(z.inet, strayPage{z.client}, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{
		Store: z.inetStore, ChunkSize: 16 << 10, Retention: -1}})
	is.NoErr(err)
	z.smallIntranetFiles(20)
	r, _ := z.round()
	is.True(errors.Is(r.FilesErr, gapsync.ErrMalformed))
	is.Equal(r.Files.Received, 1) // the empty file only, which has no chunk to fetch
	is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_chunk"), 0)
}
