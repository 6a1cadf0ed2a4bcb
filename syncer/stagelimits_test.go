package syncer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/httpstore"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
)

// rewritingStore writes its file in place, at the same size, the first
// time a range from offset at on is opened: an application saving the
// file while it is being staged.
type rewritingStore struct {
	*localstore.Store
	at      int64
	with    []byte
	key     string
	written atomic.Bool
}

func (r *rewritingStore) rewrite(off int64) error {
	if off < r.at || r.written.Swap(true) {
		return nil
	}
	time.Sleep(20 * time.Millisecond) // past the file system's timestamp granularity
	f, err := os.OpenFile(filepath.Join(r.Dir(), r.key), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(r.with, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (r *rewritingStore) OpenRange(ctx context.Context, key string, off, n int64) (rc io.ReadCloser, err error) {
	if err := r.rewrite(off); err != nil {
		return nil, err
	}
	return r.Store.OpenRange(ctx, key, off, n)
}

func (r *rewritingStore) OpenRangeAt(ctx context.Context, key, version string, off, n int64) (io.ReadCloser, error) {
	if err := r.rewrite(off); err != nil {
		return nil, err
	}
	return r.Store.OpenRangeAt(ctx, key, version, off, n)
}

// A file rewritten while it is staged does not cross as a mix of the two
// versions: the change is seen, the file is staged again whole the next
// cycle (with no attempt counted), and the far side gets the new bytes.
func TestFileChangedWhileStagedIsRestaged(t *testing.T) {
	is := is.New(t)
	const cs = 16 << 10
	z := newFileZones(t, "sqlite", "local", cs)
	old, changed := randBytes(31, 12*cs), randBytes(32, 12*cs)
	put(t, z.inetStore, "moving.bin", old)
	z.doc(gapsync.Internet, 1, "moving.bin")
	rw := &rewritingStore{Store: z.inetStore.(*localstore.Store), at: 6 * cs, with: changed, key: "moving.bin"}
	var err error
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{
		Store: rw, ChunkSize: cs, BatchBytes: 3 * cs, Retention: -1}})
	is.NoErr(err)

	r, _ := z.round()
	is.True(rw.written.Load())                         // the file was rewritten midway
	is.True(errors.Is(r.FilesErr, gapsync.ErrChanged)) // and that was seen
	is.Equal(r.Files.Staged, 0)
	var status string
	var attempts int
	is.NoErr(z.src().QueryRow("SELECT status, attempts FROM file_record").Scan(&status, &attempts))
	is.True(status != gapsync.FileStored)
	is.Equal(attempts, 0) // a change is no failure that makes the file rest

	for range 3 {
		r, _ = z.round()
		is.NoErr(r.FilesErr)
	}
	is.Equal(sha(t, z.intraStore, "from-internet/moving.bin"), shaOf(changed))
}

// trickler serves one file, a byte at a time every tick, while slow is
// set; otherwise whole.
type trickler struct {
	data []byte
	tick time.Duration
	slow atomic.Bool
	hits atomic.Int64
}

func (tr *trickler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tr.hits.Add(1)
	if !tr.slow.Load() || r.Method == http.MethodHead {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(tr.data))
		return
	}
	// Honour the range, then send it slowly.
	var first, last int64 = 0, int64(len(tr.data)) - 1
	if rng := r.Header.Get("Range"); rng != "" {
		fmt.Sscanf(rng, "bytes=%d-%d", &first, &last)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, len(tr.data)))
		w.Header().Set("Content-Length", fmt.Sprint(last-first+1))
		w.WriteHeader(http.StatusPartialContent)
	}
	for i := first; i <= last; i++ {
		if _, err := w.Write(tr.data[i : i+1]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-time.After(tr.tick):
		case <-r.Context().Done():
			return
		}
	}
}

// An allowlisted server that trickles bytes (fast enough for the idle
// timeout, far too slow to finish) cannot hold the cycle: the tables sync,
// the cycle returns soon after FileTimeout (the rate is watched, so not
// only at the deadline of the 8 MiB the server announces), the file is
// not staged, and once the server is well it is staged and delivered.
func TestTricklingServerDoesNotHoldTheCycle(t *testing.T) {
	is := is.New(t)
	const cs = 1 << 20
	z := newFileZones(t, "sqlite", "local", cs)
	tr := &trickler{data: randBytes(41, 8<<20), tick: 50 * time.Millisecond}
	tr.slow.Store(true)
	srv := httptest.NewServer(tr)
	defer srv.Close()
	urls, err := httpstore.New(&httpstore.Options{
		AllowHosts: []string{strings.TrimPrefix(srv.URL, "http://")},
		AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	is.NoErr(err)
	defer urls.Close()
	const fileTimeout = 2 * time.Second
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{
		Store: z.inetStore, URLStore: urls, ChunkSize: cs, BatchBytes: 3 * cs, Retention: -1,
		FileTimeout: fileTimeout, MinRate: 1 << 20, IdleTimeout: 2 * time.Second}})
	is.NoErr(err)
	ref := srv.URL + "/report.pdf"
	z.doc(gapsync.Internet, 1, ref)
	put(t, z.inetStore, "local.txt", []byte("a local file"))
	z.doc(gapsync.Internet, 2, "local.txt")

	z.waitLag()
	start := time.Now()
	r, _ := z.coord.RunOnce(context.Background())
	took := time.Since(start)
	t.Logf("cycle with a trickling server took %v (deadline of the file %v)", took, fileTimeout+8*time.Second)
	is.True(took < 8*time.Second) // cut by its rate, long before the deadline, and never by the server
	is.True(r.FilesErr != nil)
	is.True(strings.Contains(r.FilesErr.Error(), "deadline"))
	is.Equal(r.Rows(gapsync.Push), int64(2))                                                                        // the rows moved
	is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM docs"), 2)                                                     // and are on the intranet
	is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_record WHERE status = 'stored' AND ref LIKE 'http%'"), 0) // not staged

	// The server is well again; limits for a loaded test machine.
	tr.slow.Store(false)
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{
		Store: z.inetStore, URLStore: urls, ChunkSize: cs, BatchBytes: 3 * cs, Retention: -1, MinRate: 64 << 10}})
	is.NoErr(err)
	for range 3 {
		r, _ = z.round()
		is.NoErr(r.FilesErr)
	}
	is.Equal(sha(t, z.intraStore, "from-internet/http:/"+strings.TrimPrefix(srv.URL, "http://")+"/report.pdf"), shaOf(tr.data))
}

// Once a cycle's StageTime is used up no further file starts: the others
// wait for the next cycle untouched (no attempt counted, no error), and
// the tables of the cycle are not held for them.
func TestStageTimeDefersFiles(t *testing.T) {
	is := is.New(t)
	const cs = 16 << 10
	z := newFileZones(t, "sqlite", "local", cs)
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("f%d.bin", i)
		put(t, z.inetStore, name, randBytes(uint64(50+i), 3*cs))
		z.doc(gapsync.Internet, i, name)
	}
	coord := func(stage time.Duration) *syncer.Coordinator {
		c, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{
			Store: z.inetStore, ChunkSize: cs, BatchBytes: 3 * cs, Retention: -1, StageTime: stage}})
		is.NoErr(err)
		return c
	}
	z.coord = coord(time.Nanosecond) // used up before the first file
	r, _ := z.round()
	is.NoErr(r.FilesErr)
	is.Equal(r.Files.Staged, 0)
	is.Equal(r.Rows(gapsync.Push), int64(3)) // the rows moved all the same
	is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_record WHERE status = 'extracted' AND attempts = 0"), 3)

	z.coord = coord(time.Minute)
	r, _ = z.round()
	is.NoErr(r.FilesErr)
	is.Equal(r.Files.Staged, 3)
}

// The same for a file of one chunk, which is staged with others in
// parallel rather than alone.
func TestTricklingSmallFileIsCut(t *testing.T) {
	is := is.New(t)
	const cs = 1 << 20
	z := newFileZones(t, "sqlite", "local", cs)
	tr := &trickler{data: randBytes(42, 256<<10), tick: 50 * time.Millisecond}
	tr.slow.Store(true)
	srv := httptest.NewServer(tr)
	defer srv.Close()
	urls, err := httpstore.New(&httpstore.Options{
		AllowHosts: []string{strings.TrimPrefix(srv.URL, "http://")},
		AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	is.NoErr(err)
	defer urls.Close()
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{
		Store: z.inetStore, URLStore: urls, ChunkSize: cs, BatchBytes: 3 * cs, Retention: -1,
		FileTimeout: time.Second, MinRate: 1 << 20}})
	is.NoErr(err)
	z.doc(gapsync.Internet, 1, srv.URL+"/small.pdf")
	z.waitLag()
	start := time.Now()
	r, _ := z.coord.RunOnce(context.Background())
	is.True(time.Since(start) < 6*time.Second) // not the hour the server would take
	is.True(r.FilesErr != nil && strings.Contains(r.FilesErr.Error(), "deadline"))
	is.Equal(r.Rows(gapsync.Push), int64(1))
	var status string
	var attempts int
	is.NoErr(z.src().QueryRow("SELECT status, attempts FROM file_record").Scan(&status, &attempts))
	is.Equal(status, gapsync.FileFailed) // retried later, never stored
	is.Equal(attempts, 1)
}
