package httpstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/internal/iox"
	"github.com/gapsync/gapsync/storage/filestoretest"
	"github.com/gapsync/gapsync/storage/httpstore"
	"github.com/gapsync/gapsync/syncer"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// fileServer serves registered files under /files/ with ranges, counting
// requests.
type fileServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  atomic.Int64
	// noHead answers HEAD with 405; noRange ignores Range headers.
	noHead, noRange bool
	// redirect maps a path to a Location.
	redirect map[string]string
	// noETag sends no ETag; modTime, when set, is the Last-Modified.
	noETag  bool
	modTime time.Time
}

func newFileServer(t *testing.T) *fileServer {
	t.Helper()
	fsrv := &fileServer{files: map[string][]byte{}, redirect: map[string]string{}}
	fsrv.Server = httptest.NewServer(http.HandlerFunc(fsrv.serve))
	t.Cleanup(fsrv.Close)
	return fsrv
}

func (f *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	f.mu.Lock()
	loc, redirect := f.redirect[r.URL.Path]
	data, ok := f.files[r.URL.Path]
	modTime := f.modTime
	f.mu.Unlock()
	switch {
	case redirect:
		http.Redirect(w, r, loc, http.StatusFound)
	case f.noHead && r.Method == http.MethodHead:
		http.Error(w, "no HEAD here", http.StatusMethodNotAllowed)
	case !ok:
		http.NotFound(w, r)
	case f.noRange:
		w.Header().Set("ETag", etag(data))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data)
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		if !f.noETag {
			w.Header().Set("ETag", etag(data)) // ServeContent honours If-Match with it
		}
		http.ServeContent(w, r, "", modTime, bytes.NewReader(data))
	}
}

// etag is a strong ETag of data.
func etag(data []byte) string {
	s := sha256.Sum256(data)
	return `"` + hex.EncodeToString(s[:8]) + `"`
}

// add registers data under the logical name key and returns its URL, each
// path segment escaped.
func (f *fileServer) add(key string, data []byte) string {
	f.mu.Lock()
	f.files["/files/"+key] = data
	f.mu.Unlock()
	return f.URL + "/files/" + escapePath(key)
}

func escapePath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (f *fileServer) host() string { return strings.TrimPrefix(f.URL, "http://") }

func newStore(t *testing.T, o *httpstore.Options) *httpstore.Store {
	t.Helper()
	st, err := httpstore.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	var cur *fileServer
	filestoretest.Run(t, filestoretest.Harness{
		New: func(t *testing.T) syncer.FileStore {
			cur = newFileServer(t)
			return newStore(t, &httpstore.Options{AllowHosts: []string{cur.host()}, AllowAddrs: loopback})
		},
		ReadOnly: true,
		Seed: func(t *testing.T, key string, data []byte) string {
			return cur.add(key, data)
		},
		Features: filestoretest.Features{Versions: true},
	})
}

// The same suite against a server that answers HEAD with 405: Stat falls
// back to a GET of the first byte.
func TestConformanceNoHead(t *testing.T) {
	var cur *fileServer
	filestoretest.Run(t, filestoretest.Harness{
		New: func(t *testing.T) syncer.FileStore {
			cur = newFileServer(t)
			cur.noHead = true
			return newStore(t, &httpstore.Options{AllowHosts: []string{cur.host()}, AllowAddrs: loopback})
		},
		ReadOnly: true,
		Seed:     func(t *testing.T, key string, data []byte) string { return cur.add(key, data) },
		Features: filestoretest.Features{Versions: true},
	})
}

// A server that ignores Range serves ranges from offset 0 (the store reads
// only what was asked) and refuses the others rather than misreading them.
func TestServerIgnoringRange(t *testing.T) {
	is := is.New(t)
	srv := newFileServer(t)
	srv.noRange = true
	u := srv.add("f", []byte("0123456789"))
	st := newStore(t, &httpstore.Options{AllowHosts: []string{srv.host()}, AllowAddrs: loopback})
	ctx := context.Background()
	info, err := st.Stat(ctx, u)
	is.NoErr(err)
	is.Equal(info.Size, int64(10))
	rc, err := st.OpenRange(ctx, u, 0, 4)
	is.NoErr(err)
	b, err := io.ReadAll(rc)
	is.NoErr(err)
	is.NoErr(rc.Close())
	is.Equal(string(b), "0123") // limited to n
	_, err = st.OpenRange(ctx, u, 4, 4)
	is.True(err != nil) // a whole file for a range from 4 is refused
	_, err = st.OpenRange(ctx, u, 0, 11)
	is.True(errors.Is(err, io.ErrUnexpectedEOF)) // past the end
}

// refused asserts that every operation on u is refused as forbidden.
func refused(t *testing.T, st *httpstore.Store, u string) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.Stat(ctx, u); !errors.Is(err, gapsync.ErrForbiddenURL) {
		t.Errorf("Stat(%s) = %v, want gapsync.ErrForbiddenURL", u, err)
	}
	rc, err := st.OpenRange(ctx, u, 0, 1)
	if !errors.Is(err, gapsync.ErrForbiddenURL) {
		t.Errorf("OpenRange(%s) = %v, want gapsync.ErrForbiddenURL", u, err)
	}
	if rc != nil {
		rc.Close()
	}
}

func TestLoopbackRefusedWithoutAllowAddrs(t *testing.T) {
	is := is.New(t)
	srv := newFileServer(t)
	u := srv.add("f.txt", []byte("secret"))
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	st := newStore(t, &httpstore.Options{AllowHosts: []string{srv.host(), "localhost:" + port, "[::ffff:127.0.0.1]:" + port}})
	refused(t, st, u)                                                // literal 127.0.0.1
	refused(t, st, "http://localhost:"+port+"/files/f.txt")          // a name that resolves to loopback: refused at the dial
	refused(t, st, "http://[::ffff:127.0.0.1]:"+port+"/files/f.txt") // IPv4-mapped loopback
	is.Equal(srv.hits.Load(), int64(0))                              // the server saw nothing

	// With the address allowed, the same URL works.
	ok := newStore(t, &httpstore.Options{AllowHosts: []string{srv.host()}, AllowAddrs: loopback})
	info, err := ok.Stat(context.Background(), u)
	is.NoErr(err)
	is.Equal(info.Size, int64(6))
}

func TestMetadataAddressRefused(t *testing.T) {
	is := is.New(t)
	var logged bytes.Buffer
	st := newStore(t, &httpstore.Options{
		AllowHosts: []string{"169.254.169.254", "[fe80::1]", "10.0.0.1", "100.64.1.1", "0.0.0.0", "[::ffff:169.254.169.254]"},
		AllowAddrs: loopback, Timeout: 2 * time.Second,
		Logger: newLogger(&logged),
	})
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/latest/meta-data/",
		"http://[fe80::1]/",
		"http://10.0.0.1/",
		"http://100.64.1.1/",
		"http://0.0.0.0/",
	} {
		refused(t, st, u)
	}
	is.True(strings.Contains(logged.String(), "cloud metadata")) // refusals are logged with the reason
}

func TestHostNotAllowed(t *testing.T) {
	is := is.New(t)
	srv := newFileServer(t)
	u := srv.add("f.txt", []byte("x"))
	other := newFileServer(t)
	for _, hosts := range [][]string{nil, {}, {"example.com"}, {other.host()}, {"127.0.0.2"}} {
		st := newStore(t, &httpstore.Options{AllowHosts: hosts, AllowAddrs: loopback})
		refused(t, st, u)
	}
	is.Equal(srv.hits.Load(), int64(0))
	// A host-only entry allows every port of that host.
	st := newStore(t, &httpstore.Options{AllowHosts: []string{"127.0.0.1"}, AllowAddrs: loopback})
	_, err := st.Stat(context.Background(), u)
	is.NoErr(err)
	// Host names compare case-insensitively.
	st = newStore(t, &httpstore.Options{AllowHosts: []string{"LOCALHOST"}, AllowAddrs: loopback})
	_, err = st.Stat(context.Background(), strings.Replace(u, "127.0.0.1", "LocalHost", 1))
	is.NoErr(err)
}

func TestRedirectToUnlistedHostRefused(t *testing.T) {
	is := is.New(t)
	a, b := newFileServer(t), newFileServer(t)
	b.add("target", []byte("from b"))
	a.redirect["/files/go"] = b.URL + "/files/target"
	a.redirect["/files/meta"] = "http://169.254.169.254/latest/meta-data/"
	a.redirect["/files/file"] = "file:///etc/passwd"
	a.redirect["/files/same"] = "/files/here"
	a.add("here", []byte("same server"))

	st := newStore(t, &httpstore.Options{AllowHosts: []string{a.host()}, AllowAddrs: loopback})
	refused(t, st, a.URL+"/files/go")
	is.Equal(b.hits.Load(), int64(0)) // the unlisted server saw nothing
	refused(t, st, a.URL+"/files/meta")
	refused(t, st, a.URL+"/files/file")

	// Even with the metadata host allowlisted, its address is refused.
	st2 := newStore(t, &httpstore.Options{AllowHosts: []string{a.host(), "169.254.169.254"}, AllowAddrs: loopback})
	refused(t, st2, a.URL+"/files/meta")

	// A redirect within the allowlist is followed.
	info, err := st.Stat(context.Background(), a.URL+"/files/same")
	is.NoErr(err)
	is.Equal(info.Size, int64(len("same server")))
}

func TestTooManyRedirects(t *testing.T) {
	is := is.New(t)
	a := newFileServer(t)
	a.add("end", []byte("end"))
	a.redirect["/files/r1"] = "/files/r2"
	a.redirect["/files/r2"] = "/files/r3"
	a.redirect["/files/r3"] = "/files/end"
	ctx := context.Background()
	st := newStore(t, &httpstore.Options{AllowHosts: []string{a.host()}, AllowAddrs: loopback, MaxRedirects: 2})
	_, err := st.Stat(ctx, a.URL+"/files/r1")
	is.True(err != nil) // three redirects, two allowed
	_, err = st.Stat(ctx, a.URL+"/files/r2")
	is.NoErr(err) // two redirects
	st = newStore(t, &httpstore.Options{AllowHosts: []string{a.host()}, AllowAddrs: loopback, MaxRedirects: -1})
	_, err = st.Stat(ctx, a.URL+"/files/r3")
	is.True(err != nil) // no redirects at all
}

func TestSchemesAndUserinfoRefused(t *testing.T) {
	is := is.New(t)
	srv := newFileServer(t)
	srv.add("f.txt", []byte("x"))
	h := srv.host()
	st := newStore(t, &httpstore.Options{AllowHosts: []string{h}, AllowAddrs: loopback})
	for _, u := range []string{
		"file:///etc/passwd",
		"file://" + h + "/etc/passwd",
		"ftp://" + h + "/files/f.txt",
		"gopher://" + h + "/",
		"HTTP+unix://" + h + "/",
		"http://user:hunter2@" + h + "/files/f.txt",
		"http://user@" + h + "/files/f.txt",
		"http:///files/f.txt",
	} {
		refused(t, st, u)
	}
	is.Equal(srv.hits.Load(), int64(0))
	_, err := st.Stat(context.Background(), "http://user:hunter2@"+h+"/files/f.txt")
	is.True(!strings.Contains(err.Error(), "hunter2")) // passwords never reach messages

	// Keys that are not URLs at all are bad paths.
	for _, k := range []string{"files/f.txt", "/etc/passwd", "", "http://a\x00b/", "mailto:x@y"} {
		_, err := st.Stat(context.Background(), k)
		is.True(errors.Is(err, gapsync.ErrBadPath) || errors.Is(err, gapsync.ErrForbiddenURL))
	}
}

func TestMaxSize(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	for _, kind := range []string{"ranges", "noHead", "noRange"} {
		srv := newFileServer(t)
		srv.noHead, srv.noRange = kind == "noHead", kind == "noRange"
		u := srv.add("big.bin", bytes.Repeat([]byte("x"), 100))
		st := newStore(t, &httpstore.Options{AllowHosts: []string{srv.host()}, AllowAddrs: loopback, MaxSize: 50})
		_, err := st.Stat(ctx, u)
		is.True(errors.Is(err, gapsync.ErrTooLarge)) // Stat of a file over MaxSize
		_, err = st.OpenRange(ctx, u, 0, 60)
		is.True(errors.Is(err, gapsync.ErrTooLarge)) // a range past MaxSize
		_, err = st.OpenRange(ctx, u, 0, 10)
		is.True(errors.Is(err, gapsync.ErrTooLarge)) // a range of a file over MaxSize
		ok := newStore(t, &httpstore.Options{AllowHosts: []string{srv.host()}, AllowAddrs: loopback, MaxSize: 100})
		info, err := ok.Stat(ctx, u)
		is.NoErr(err)
		is.Equal(info.Size, int64(100)) // exactly MaxSize is fine
	}
}

func TestTimeout(t *testing.T) {
	is := is.New(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	st := newStore(t, &httpstore.Options{AllowHosts: []string{strings.TrimPrefix(srv.URL, "http://")}, AllowAddrs: loopback, Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := st.Stat(context.Background(), srv.URL+"/slow")
	is.True(err != nil)
	is.True(time.Since(start) < 5*time.Second) // the header timeout fired
}

// A server that sends fewer bytes than its headers promise is caught.
func TestShortBody(t *testing.T) {
	is := is.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-9/10")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("01234")) // then the handler ends: no Content-Length, chunked, short
	}))
	defer srv.Close()
	st := newStore(t, &httpstore.Options{AllowHosts: []string{strings.TrimPrefix(srv.URL, "http://")}, AllowAddrs: loopback})
	rc, err := st.OpenRange(context.Background(), srv.URL+"/f", 0, 10)
	is.NoErr(err)
	defer rc.Close()
	_, err = io.ReadAll(rc)
	is.True(errors.Is(err, io.ErrUnexpectedEOF))
}

// The wrong range back is refused.
func TestWrongContentRange(t *testing.T) {
	is := is.New(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-4/10")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("01234"))
	}))
	defer srv.Close()
	st := newStore(t, &httpstore.Options{AllowHosts: []string{strings.TrimPrefix(srv.URL, "http://")}, AllowAddrs: loopback})
	_, err := st.OpenRange(context.Background(), srv.URL+"/f", 5, 5)
	is.True(err != nil)
	is.True(!errors.Is(err, fs.ErrNotExist))
}

func TestBadOptions(t *testing.T) {
	is := is.New(t)
	for _, o := range []*httpstore.Options{
		{AllowHosts: []string{"http://example.com"}},
		{AllowHosts: []string{"example.com:99999"}},
		{AllowHosts: []string{"user@example.com"}},
		{AllowHosts: []string{""}},
		{MaxSize: -1},
		{AllowAddrs: []netip.Prefix{{}}},
	} {
		_, err := httpstore.New(o)
		is.True(err != nil)
	}
	st, err := httpstore.New(nil)
	is.NoErr(err)
	_, err = st.Stat(context.Background(), "https://example.com/x")
	is.True(errors.Is(err, gapsync.ErrForbiddenURL)) // nil options refuse everything
	err = st.Put(context.Background(), "https://example.com/x", strings.NewReader("x"), 1, syncer.FileInfo{})
	is.True(errors.Is(err, gapsync.ErrReadOnly))
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestInternal(t *testing.T) {
	cases := map[string]bool{ // address → refused
		"127.0.0.1": true, "127.255.255.254": true, "::1": true,
		"10.1.2.3": true, "172.16.0.1": true, "172.31.255.255": true, "192.168.1.1": true, "fc00::1": true, "fd12::1": true,
		"169.254.169.254": true, "169.254.0.1": true, "fe80::1": true, "fe80::1%eth0": true,
		"0.0.0.0": true, "0.1.2.3": true, "::": true,
		"224.0.0.1": true, "239.1.1.1": true, "255.255.255.255": true, "ff02::1": true, "ff05::2": true,
		"100.64.0.1": true, "100.127.255.255": true,
		"::ffff:127.0.0.1": true, "::ffff:10.0.0.1": true, "::ffff:169.254.169.254": true, "::ffff:100.64.0.1": true,
		"::127.0.0.1": true, "64:ff9b::a9fe:a9fe": true, "64:ff9b::7f00:1": true, "2002:7f00:1::": true, "2002:a9fe:a9fe::1": true,
		"198.18.0.1": true, "192.0.0.8": true, "240.0.0.1": true,
		// public
		"8.8.8.8": false, "1.1.1.1": false, "100.63.255.255": false, "100.128.0.0": false, "172.32.0.1": false,
		"2606:4700:4700::1111": false, "::ffff:8.8.8.8": false, "64:ff9b::808:808": false, "2002:808:808::": false,
		"169.253.255.255": false, "11.0.0.1": false,
	}
	for s, want := range cases {
		a := netip.MustParseAddr(s)
		if why := httpstore.Internal(a); (why != "") != want {
			t.Errorf("Internal(%s) = %q, want refused=%v", s, why, want)
		}
	}
}

// A server that ignores If-Match (and Range) still cannot hand a range of
// a newer version to a reader of the old one: the ETag of the answer is
// compared. Without an ETag, Last-Modified is the version.
func TestChangedVersionRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*fileServer)
	}{
		{"etag ignoring If-Match", func(f *fileServer) { f.noRange = true }},
		{"last-modified", func(f *fileServer) { f.noETag, f.modTime = true, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			srv := newFileServer(t)
			c.set(srv)
			st := newStore(t, &httpstore.Options{AllowHosts: []string{srv.host()}, AllowAddrs: loopback})
			u := srv.add("f.bin", []byte("old version"))
			info, err := st.Stat(context.Background(), u)
			is.NoErr(err)
			is.True(info.Version != "")
			srv.mu.Lock()
			srv.modTime = srv.modTime.Add(time.Minute)
			srv.mu.Unlock()
			srv.add("f.bin", []byte("new version"))
			_, err = st.OpenRangeAt(context.Background(), u, info.Version, 0, 11)
			is.True(errors.Is(err, gapsync.ErrChanged)) // the old version is gone
			now, err := st.Stat(context.Background(), u)
			is.NoErr(err)
			rc, err := st.OpenRangeAt(context.Background(), u, now.Version, 0, 11)
			is.NoErr(err)
			b, err := io.ReadAll(rc)
			rc.Close()
			is.NoErr(err)
			is.Equal(string(b), "new version")
		})
	}
}

// A server that sends a few bytes and then stalls cannot hold a reader:
// the body fails with iox.ErrIdle after IdleTimeout.
func TestIdleBody(t *testing.T) {
	is := is.New(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Range", "bytes 0-99/100")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte("0123"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	st := newStore(t, &httpstore.Options{AllowHosts: []string{strings.TrimPrefix(srv.URL, "http://")}, AllowAddrs: loopback, IdleTimeout: 200 * time.Millisecond})
	start := time.Now()
	rc, err := st.OpenRange(context.Background(), srv.URL+"/f", 0, 100)
	is.NoErr(err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	is.Equal(string(b), "0123")
	is.True(errors.Is(err, iox.ErrIdle)) // the stalled body failed
	is.True(time.Since(start) < 5*time.Second)
}
