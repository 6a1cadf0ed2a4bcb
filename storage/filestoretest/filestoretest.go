// Package filestoretest is the conformance suite for syncer.FileStore
// implementations, in the style of gocloud.dev/blob/drivertest. Every file
// store that gapsync ships runs it (storage/localstore, storage/s3store,
// storage/httpstore); a store of your own proves itself the same way:
//
//	func TestConformance(t *testing.T) {
//		filestoretest.Run(t, filestoretest.Harness{
//			New:      func(t *testing.T) syncer.FileStore { return newMine(t) },
//			Features: filestoretest.Features{Checksums: true},
//		})
//	}
//
// The suite checks the contract written on syncer.FileStore: byte-exact
// round trips and ranges (sizes 0, 1 and just over 1 MiB, random bytes),
// awkward names (spaces, Chinese, emoji, 200 characters, nested
// directories), atomic replacement, Puts whose reader fails or yields the
// wrong number of bytes storing nothing, refusal of keys that are not clean
// relative paths (gapsync.ErrBadPath), fs.ErrNotExist for missing files,
// concurrent readers and writers, and, where a store keeps them, checksums
// and versions (syncer.VersionedStore: a range read at a version the file
// no longer has fails with gapsync.ErrChanged).
//
// A read-only store (an HTTP source) sets Harness.ReadOnly and
// Harness.Seed; the suite then makes its files through Seed instead of Put
// and checks that Put is refused with gapsync.ErrReadOnly.
package filestoretest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
)

// Harness makes stores for the suite.
type Harness struct {
	// New returns a new, empty store; it registers its own cleanup with t
	// (t.Cleanup). Each subtest calls it once.
	New func(t *testing.T) syncer.FileStore
	// ReadOnly: the store refuses Put with gapsync.ErrReadOnly, and the
	// suite makes its files with Seed.
	ReadOnly bool
	// Seed, for read-only stores, makes data available under the logical
	// name key (a clean relative path such as "中文 文件.txt") behind the
	// store most recently returned by New, and returns the key to pass to
	// that store (for an HTTP source, a properly escaped URL). The suite
	// takes the returned key with "-missing" appended as a key that does
	// not exist, so Seed must serve exactly the names it was given.
	Seed func(t *testing.T, key string, data []byte) string
	// Features says what the store can do beyond the contract.
	Features Features
}

// Features lists optional abilities the suite checks when present.
type Features struct {
	// Checksums: Put keeps info.MD5 and info.SHA256 with the file and Stat
	// returns them. Without it, Stat must return them empty or correct.
	Checksums bool
	// Versions: the store is a syncer.VersionedStore, Stat returns a
	// non-empty FileInfo.Version that changes when the file is replaced,
	// and OpenRangeAt of a version the file no longer has fails with
	// gapsync.ErrChanged.
	Versions bool
}

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("filestoretest: Harness.New is nil")
	}
	if h.ReadOnly && h.Seed == nil {
		t.Fatal("filestoretest: a read-only harness needs Seed")
	}
	s := suite{h: h}
	t.Run("RoundTrip", s.roundTrip)
	t.Run("Names", s.names)
	t.Run("BadKeys", s.badKeys)
	t.Run("Missing", s.missing)
	t.Run("BadRanges", s.badRanges)
	t.Run("ConcurrentReaders", s.concurrentReaders)
	if h.Features.Versions {
		t.Run("Versions", s.versions)
	}
	if h.ReadOnly {
		t.Run("ReadOnly", s.readOnly)
		return
	}
	t.Run("Replace", s.replace)
	t.Run("FailedPut", s.failedPut)
	t.Run("CanceledPut", s.canceledPut)
	t.Run("ConcurrentPuts", s.concurrentPuts)
	t.Run("Checksums", s.checksums)
	if _, ok := h.New(t).(syncer.BatchStore); ok {
		t.Run("Batch", s.batch)
	}
}

type suite struct{ h Harness }

// put makes data available under the logical name and returns the key to
// use with st: Put for writable stores, Seed for read-only ones.
func (s suite) put(t *testing.T, st syncer.FileStore, name string, data []byte) string {
	t.Helper()
	if s.h.ReadOnly {
		return s.h.Seed(t, name, data)
	}
	if err := st.Put(context.Background(), name, bytes.NewReader(data), int64(len(data)), syncer.FileInfo{}); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", name, len(data), err)
	}
	return name
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// readRange opens a range and reads it whole; the error is the first one
// seen, from OpenRange or from reading.
func readRange(st syncer.FileStore, key string, off, n int64) ([]byte, error) {
	rc, err := st.OpenRange(context.Background(), key, off, n)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return b, err
}

// checkContent asserts that key holds exactly want.
func checkContent(t *testing.T, st syncer.FileStore, key string, want []byte) {
	t.Helper()
	info, err := st.Stat(context.Background(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if info.Size != int64(len(want)) {
		t.Fatalf("Stat(%q).Size = %d, want %d", key, info.Size, len(want))
	}
	got, err := readRange(st, key, 0, int64(len(want)))
	if err != nil {
		t.Fatalf("OpenRange(%q, 0, %d): %v", key, len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q differs: got %d bytes, want %d (%s)", key, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d", i)
		}
	}
	return "one is a prefix of the other"
}

func (s suite) roundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 1<<20 + 1} {
		t.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			is := is.New(t)
			st := s.h.New(t)
			data := randomBytes(t, size)
			key := s.put(t, st, fmt.Sprintf("dir/rt-%d.bin", size), data)

			info, err := st.Stat(context.Background(), key)
			is.NoErr(err)
			is.Equal(info.Key, key)          // Stat returns the key it was given
			is.Equal(info.Size, int64(size)) // Stat size
			checkSums(t, info, data)         // empty or right

			n := int64(size)
			ranges := [][2]int64{{0, n}, {0, 0}, {n, 0}}
			if n > 0 {
				ranges = append(ranges, [2]int64{0, 1}, [2]int64{n - 1, 1})
			}
			if n > 2 {
				ranges = append(ranges, [2]int64{1, n - 2}, [2]int64{n / 3, n / 3}, [2]int64{n / 2, n - n/2})
			}
			for _, r := range ranges {
				got, err := readRange(st, key, r[0], r[1])
				if err != nil {
					t.Fatalf("OpenRange(%d, %d) of %d bytes: %v", r[0], r[1], n, err)
				}
				if want := data[r[0] : r[0]+r[1]]; !bytes.Equal(got, want) {
					t.Fatalf("OpenRange(%d, %d): got %d bytes, want %d (%s)", r[0], r[1], len(got), len(want), firstDiff(got, want))
				}
			}

			// Ranges that cross the end are errors, from OpenRange or Read.
			for _, r := range [][2]int64{{0, n + 1}, {n, 1}, {max(n-1, 0), 2}, {n + 10, 5}} {
				got, err := readRange(st, key, r[0], r[1])
				if err == nil {
					t.Fatalf("OpenRange(%d, %d) of a %d-byte file read %d bytes without error", r[0], r[1], n, len(got))
				}
				if int64(len(got)) > r[1] {
					t.Fatalf("OpenRange(%d, %d) yielded %d bytes, more than asked", r[0], r[1], len(got))
				}
			}
		})
	}
}

// Names that a store must carry unchanged.
var names = []struct{ label, key string }{
	{"spaces", "with spaces/a file name.txt"},
	{"chinese", "中文 文件.txt"},
	{"emoji", "emoji 😀🎉/party 🎈.bin"},
	{"long", strings.Repeat("n", 196) + ".bin"},
	{"nested", "a/b/c.bin"},
	{"dots", "v1.2.3/..hidden...name"},
	{"symbols", "x/#hash ?query &amp %41 +plus=eq;semi'quote.txt"},
}

func (s suite) names(t *testing.T) {
	for _, c := range names {
		t.Run(c.label, func(t *testing.T) {
			is := is.New(t)
			is.Equal(gapsync.CleanKey(c.key), nil) // the suite's own names are clean
			st := s.h.New(t)
			data := []byte("content of " + c.key)
			key := s.put(t, st, c.key, data)
			checkContent(t, st, key, data)
			// A sibling name must not see the file.
			_, err := st.Stat(context.Background(), key+"-missing")
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Stat(%q) = %v, want fs.ErrNotExist", key+"-missing", err)
			}
		})
	}
}

// BadKeys are refused with gapsync.ErrBadPath by every store.
var BadKeys = []string{
	"../../etc/passwd",
	"/etc/passwd",
	"a/../../b",
	"a/..",
	"..",
	"a\\b",
	"..\\..\\windows",
	"",
	"a\x00b",
	"./a",
	"a/./b",
	"a//b",
	"a/",
	".",
}

func (s suite) badKeys(t *testing.T) {
	st := s.h.New(t)
	// A file exists, so that a store that ignored the key's shape might
	// find something.
	s.put(t, st, "a", []byte("a"))
	ctx := context.Background()
	for _, key := range BadKeys {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			if _, err := st.Stat(ctx, key); !errors.Is(err, gapsync.ErrBadPath) {
				t.Errorf("Stat(%q) = %v, want gapsync.ErrBadPath", key, err)
			}
			rc, err := st.OpenRange(ctx, key, 0, 1)
			if !errors.Is(err, gapsync.ErrBadPath) {
				t.Errorf("OpenRange(%q) = %v, want gapsync.ErrBadPath", key, err)
			}
			if rc != nil {
				rc.Close()
			}
			if s.h.ReadOnly {
				return
			}
			if err := st.Put(ctx, key, strings.NewReader("x"), 1, syncer.FileInfo{}); !errors.Is(err, gapsync.ErrBadPath) {
				t.Errorf("Put(%q) = %v, want gapsync.ErrBadPath", key, err)
			}
		})
	}
	if !s.h.ReadOnly {
		checkContent(t, st, "a", []byte("a")) // no bad Put landed on "a"
	}
}

func (s suite) missing(t *testing.T) {
	st := s.h.New(t)
	var keys []string
	if s.h.ReadOnly {
		keys = []string{s.h.Seed(t, "dir/present.bin", []byte("x")) + "-missing"}
	} else {
		keys = []string{"missing.bin", "no/such/dir/file.bin"}
		s.put(t, st, "dir/present.bin", []byte("x"))
		// A prefix of a file's key is no file, nor is a path under a file.
		keys = append(keys, "dir/present.bin-missing", "dir/other.bin", "dir", "dir/present.bin/under")
	}
	for _, key := range keys {
		if _, err := st.Stat(context.Background(), key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%q) = %v, want fs.ErrNotExist", key, err)
		}
		if _, err := readRange(st, key, 0, 1); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenRange(%q, 0, 1) = %v, want fs.ErrNotExist", key, err)
		}
	}
}

func (s suite) badRanges(t *testing.T) {
	st := s.h.New(t)
	key := s.put(t, st, "r.bin", []byte("0123456789"))
	for _, r := range [][2]int64{{-1, 1}, {0, -1}, {-5, -5}} {
		if got, err := readRange(st, key, r[0], r[1]); err == nil {
			t.Errorf("OpenRange(%d, %d) read %d bytes without error", r[0], r[1], len(got))
		}
	}
}

func (s suite) concurrentReaders(t *testing.T) {
	st := s.h.New(t)
	data := randomBytes(t, 256<<10+7)
	key := s.put(t, st, "shared/one.bin", data)
	const readers = 8
	part := int64(len(data)) / readers
	// Open every range before reading any, so all are open at once.
	rcs := make([]io.ReadCloser, readers)
	for i := range rcs {
		off, n := int64(i)*part, part
		if i == readers-1 {
			n = int64(len(data)) - off
		}
		rc, err := st.OpenRange(context.Background(), key, off, n)
		if err != nil {
			t.Fatalf("OpenRange #%d: %v", i, err)
		}
		rcs[i] = rc
	}
	var wg sync.WaitGroup
	errs := make([]error, readers)
	for i, rc := range rcs {
		wg.Go(func() {
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				errs[i] = err
				return
			}
			off := int64(i) * part
			if want := data[off : off+int64(len(got))]; !bytes.Equal(got, want) || (i < readers-1 && int64(len(got)) != part) {
				errs[i] = fmt.Errorf("reader %d: wrong bytes (%d read)", i, len(got))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// And whole-file readers at once, each from its own goroutine.
	var wg2 sync.WaitGroup
	errs = make([]error, readers)
	for i := range readers {
		wg2.Go(func() {
			got, err := readRange(st, key, 0, int64(len(data)))
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("whole reader %d: wrong bytes (%d read)", i, len(got))
			}
			errs[i] = err
		})
	}
	wg2.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func (s suite) readOnly(t *testing.T) {
	is := is.New(t)
	st := s.h.New(t)
	data := []byte("seeded")
	key := s.h.Seed(t, "ro/file.txt", data)
	for _, k := range []string{key, key + "-new", "plain/key.bin"} {
		err := st.Put(context.Background(), k, strings.NewReader("changed"), 7, syncer.FileInfo{})
		if !errors.Is(err, gapsync.ErrReadOnly) {
			t.Fatalf("Put(%q) = %v, want gapsync.ErrReadOnly", k, err)
		}
	}
	checkContent(t, st, key, data)
	_, err := st.Stat(context.Background(), key+"-new")
	is.True(errors.Is(err, fs.ErrNotExist)) // the refused Put made nothing
}

func (s suite) replace(t *testing.T) {
	st := s.h.New(t)
	ctx := context.Background()
	for i, data := range [][]byte{randomBytes(t, 1000), randomBytes(t, 10), {}, randomBytes(t, 70000)} {
		if err := st.Put(ctx, "re/place.bin", bytes.NewReader(data), int64(len(data)), syncer.FileInfo{}); err != nil {
			t.Fatalf("Put #%d: %v", i, err)
		}
		checkContent(t, st, "re/place.bin", data)
	}
}

var errBoom = errors.New("filestoretest: reader failed on purpose")

// failingReader yields n bytes of data, then errBoom.
type failingReader struct {
	r *bytes.Reader
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.r.Len() == 0 {
		return 0, errBoom
	}
	return f.r.Read(p)
}

func (s suite) failedPut(t *testing.T) {
	old := randomBytes(t, 3000)
	data := randomBytes(t, 200<<10)
	cases := []struct {
		name string
		r    func() io.Reader
		size int64
	}{
		{"reader error midway", func() io.Reader { return &failingReader{bytes.NewReader(data[:len(data)/2])} }, int64(len(data))},
		{"reader error at once", func() io.Reader { return &failingReader{bytes.NewReader(nil)} }, int64(len(data))},
		{"fewer bytes than size", func() io.Reader { return bytes.NewReader(data[:len(data)-1]) }, int64(len(data))},
		{"no bytes for size 1", func() io.Reader { return bytes.NewReader(nil) }, 1},
		{"more bytes than size", func() io.Reader { return bytes.NewReader(data) }, int64(len(data) - 1)},
		{"one byte for size 0", func() io.Reader { return bytes.NewReader(data[:1]) }, 0},
		{"negative size", func() io.Reader { return bytes.NewReader(data) }, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := s.h.New(t)
			ctx := context.Background()
			// Over a previous version: it stays whole.
			if err := st.Put(ctx, "f/old.bin", bytes.NewReader(old), int64(len(old)), syncer.FileInfo{}); err != nil {
				t.Fatal(err)
			}
			if err := st.Put(ctx, "f/old.bin", c.r(), c.size, syncer.FileInfo{}); err == nil {
				t.Fatal("Put over an existing file succeeded")
			}
			checkContent(t, st, "f/old.bin", old)
			// On a new key: nothing appears.
			if err := st.Put(ctx, "f/new.bin", c.r(), c.size, syncer.FileInfo{}); err == nil {
				t.Fatal("Put of a new file succeeded")
			}
			if info, err := st.Stat(ctx, "f/new.bin"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("after a failed Put, Stat = %+v, %v; want fs.ErrNotExist", info, err)
			}
			// The store still works for that key.
			if err := st.Put(ctx, "f/new.bin", bytes.NewReader(data), int64(len(data)), syncer.FileInfo{}); err != nil {
				t.Fatalf("Put after a failed one: %v", err)
			}
			checkContent(t, st, "f/new.bin", data)
		})
	}
}

func (s suite) canceledPut(t *testing.T) {
	st := s.h.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := randomBytes(t, 1000)
	if err := st.Put(ctx, "c/canceled.bin", bytes.NewReader(data), int64(len(data)), syncer.FileInfo{}); err == nil {
		t.Fatal("Put with a canceled context succeeded")
	}
	if _, err := st.Stat(context.Background(), "c/canceled.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a canceled Put, Stat = %v; want fs.ErrNotExist", err)
	}
}

func (s suite) concurrentPuts(t *testing.T) {
	st := s.h.New(t)
	const writers = 8
	versions := make([][]byte, writers)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('A' + i)}, 64<<10+i)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*writers)
	for i, v := range versions {
		wg.Go(func() {
			errs[i] = st.Put(context.Background(), "cc/same.bin", bytes.NewReader(v), int64(len(v)), syncer.FileInfo{})
		})
		wg.Go(func() {
			errs[writers+i] = st.Put(context.Background(), fmt.Sprintf("cc/own-%d.bin", i), bytes.NewReader(v), int64(len(v)), syncer.FileInfo{})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, v := range versions {
		checkContent(t, st, fmt.Sprintf("cc/own-%d.bin", i), v)
	}
	info, err := st.Stat(context.Background(), "cc/same.bin")
	if err != nil {
		t.Fatal(err)
	}
	i := int(info.Size - 64<<10)
	if i < 0 || i >= writers {
		t.Fatalf("cc/same.bin has size %d, which no writer wrote", info.Size)
	}
	checkContent(t, st, "cc/same.bin", versions[i]) // one version whole, not a mix
}

// sums returns the lowercase hex MD5 and SHA-256 of b.
func sums(b []byte) (string, string) {
	m := md5.Sum(b)
	s := sha256.Sum256(b)
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

// checkSums fails t if info carries a checksum that is not b's.
func checkSums(t *testing.T, info syncer.FileInfo, b []byte) {
	t.Helper()
	m, s := sums(b)
	if info.MD5 != "" && info.MD5 != m {
		t.Fatalf("Stat MD5 = %s, want %s or empty", info.MD5, m)
	}
	if info.SHA256 != "" && info.SHA256 != s {
		t.Fatalf("Stat SHA256 = %s, want %s or empty", info.SHA256, s)
	}
}

func (s suite) checksums(t *testing.T) {
	st := s.h.New(t)
	ctx := context.Background()
	for _, size := range []int{0, 1, 300 << 10} {
		data := randomBytes(t, size)
		m, sh := sums(data)
		key := fmt.Sprintf("sum/%d.bin", size)
		if err := st.Put(ctx, key, bytes.NewReader(data), int64(size), syncer.FileInfo{Key: key, Size: int64(size), MD5: m, SHA256: sh}); err != nil {
			t.Fatalf("Put with checksums: %v", err)
		}
		info, err := st.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		checkSums(t, info, data)
		if s.h.Features.Checksums && (info.MD5 != m || info.SHA256 != sh) {
			t.Fatalf("Stat(%q) checksums = %q, %q; want %q, %q", key, info.MD5, info.SHA256, m, sh)
		}
		checkContent(t, st, key, data)

		// Replaced without checksums: the old ones must not linger.
		other := append(randomBytes(t, 5), data...)
		if err := st.Put(ctx, key, bytes.NewReader(other), int64(len(other)), syncer.FileInfo{}); err != nil {
			t.Fatal(err)
		}
		info, err = st.Stat(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		checkSums(t, info, other)
	}
	// Only one of the two given: the store keeps what it was given.
	data := []byte("only md5")
	m, _ := sums(data)
	if err := st.Put(ctx, "sum/md5only", bytes.NewReader(data), int64(len(data)), syncer.FileInfo{MD5: m}); err != nil {
		t.Fatal(err)
	}
	info, err := st.Stat(ctx, "sum/md5only")
	if err != nil {
		t.Fatal(err)
	}
	checkSums(t, info, data)
	if s.h.Features.Checksums && info.MD5 != m {
		t.Fatalf("Stat MD5 = %q, want %q", info.MD5, m)
	}
}

// readRangeAt is readRange at a version.
func readRangeAt(st syncer.VersionedStore, key, version string, off, n int64) ([]byte, error) {
	rc, err := st.OpenRangeAt(context.Background(), key, version, off, n)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return b, err
}

func (s suite) versions(t *testing.T) {
	is := is.New(t)
	st := s.h.New(t)
	vs, ok := st.(syncer.VersionedStore)
	if !ok {
		t.Fatalf("Features.Versions is set but %T is no syncer.VersionedStore", st)
	}
	ctx := context.Background()
	v1 := randomBytes(t, 5000)
	key := s.put(t, st, "ver/file.bin", v1)
	info1, err := st.Stat(ctx, key)
	is.NoErr(err)
	if info1.Version == "" {
		t.Fatal("Stat returned no version")
	}
	again, err := st.Stat(ctx, key)
	is.NoErr(err)
	is.Equal(again.Version, info1.Version) // an unchanged file keeps its version

	for _, r := range [][2]int64{{0, 5000}, {100, 1000}, {4999, 1}} {
		got, err := readRangeAt(vs, key, info1.Version, r[0], r[1])
		if err != nil {
			t.Fatalf("OpenRangeAt(current version, %d, %d): %v", r[0], r[1], err)
		}
		if !bytes.Equal(got, v1[r[0]:r[0]+r[1]]) {
			t.Fatalf("OpenRangeAt(current version, %d, %d): wrong bytes", r[0], r[1])
		}
	}
	got, err := readRangeAt(vs, key, "", 0, 5000)
	is.NoErr(err) // an empty version reads whatever is there
	is.Equal(got, v1)

	// Replaced by other bytes of the same size: a new version, and the old
	// one is refused, whichever range is asked for.
	v2 := randomBytes(t, 5000)
	is.Equal(s.put(t, st, "ver/file.bin", v2), key)
	info2, err := st.Stat(ctx, key)
	is.NoErr(err)
	if info2.Version == "" || info2.Version == info1.Version {
		t.Fatalf("a replaced file's version is %q, was %q", info2.Version, info1.Version)
	}
	for _, r := range [][2]int64{{0, 5000}, {2500, 2500}, {0, 1}} {
		got, err := readRangeAt(vs, key, info1.Version, r[0], r[1])
		if !errors.Is(err, gapsync.ErrChanged) {
			t.Fatalf("OpenRangeAt(old version, %d, %d) = %d bytes, %v; want gapsync.ErrChanged", r[0], r[1], len(got), err)
		}
	}
	got, err = readRangeAt(vs, key, info2.Version, 0, 5000)
	is.NoErr(err)
	is.Equal(got, v2) // the new version reads
}

// batch checks PutBatch of a syncer.BatchStore: each item stored as Put
// would, the failures of some (every way failedPut fails, a bad key, a
// key given twice) leaving the others stored and nothing of their own,
// and a canceled context storing nothing.
func (s suite) batch(t *testing.T) {
	st := s.h.New(t).(syncer.BatchStore)
	ctx := context.Background()
	old := randomBytes(t, 3000)
	s.put(t, st, "b/old.bin", old)
	type item struct {
		key  string
		r    io.Reader
		size int64
		ok   bool
		want []byte // what the key holds after
	}
	var items []item
	good := func(key string, data []byte) {
		items = append(items, item{key, bytes.NewReader(data), int64(len(data)), true, data})
	}
	for i := range 40 {
		good(fmt.Sprintf("b/%d/f%03d.bin", i%3, i), randomBytes(t, 100*i))
	}
	good("b/empty.bin", []byte{})
	twice1, twice2 := randomBytes(t, 500), randomBytes(t, 700)
	good("b/twice.bin", twice1)
	data := randomBytes(t, 5000)
	items = append(items,
		item{"b/old.bin", &failingReader{bytes.NewReader(data[:100])}, 5000, false, old},
		item{"b/short.bin", bytes.NewReader(data[:4999]), 5000, false, nil},
		item{"b/long.bin", bytes.NewReader(data), 4999, false, nil},
		item{"b/neg.bin", bytes.NewReader(data), -1, false, nil},
		item{"../escape.bin", bytes.NewReader(data), 5000, false, nil},
	)
	good("b/twice.bin", twice2)
	good("中文 目录/文件 名.bin", data)
	putItems := make([]syncer.PutItem, len(items))
	for i, it := range items {
		putItems[i] = syncer.PutItem{Key: it.key, R: it.r, Size: it.size}
	}
	errs := st.PutBatch(ctx, putItems)
	if len(errs) != len(items) {
		t.Fatalf("PutBatch of %d items returned %d errors", len(items), len(errs))
	}
	for i, it := range items {
		if it.ok != (errs[i] == nil) {
			t.Fatalf("item %d (%s): error %v, want ok %v", i, it.key, errs[i], it.ok)
		}
	}
	for i, it := range items {
		switch {
		case it.key == "b/twice.bin":
			checkContent(t, st, it.key, twice2) // the later item stays
		case it.want != nil:
			checkContent(t, st, it.key, it.want)
		case it.key != "../escape.bin":
			if _, err := st.Stat(ctx, it.key); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("item %d (%s) failed but Stat = %v; want fs.ErrNotExist", i, it.key, err)
			}
		}
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	errs = st.PutBatch(canceled, []syncer.PutItem{
		{Key: "bc/one.bin", R: bytes.NewReader(data), Size: int64(len(data))},
		{Key: "b/old.bin", R: bytes.NewReader(data), Size: int64(len(data))},
	})
	for i, err := range errs {
		if err == nil {
			t.Fatalf("item %d of a PutBatch with a canceled context succeeded", i)
		}
	}
	if _, err := st.Stat(ctx, "bc/one.bin"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after a canceled PutBatch, Stat = %v; want fs.ErrNotExist", err)
	}
	checkContent(t, st, "b/old.bin", old)
	if errs := st.PutBatch(ctx, nil); len(errs) != 0 {
		t.Fatalf("PutBatch of no items returned %d errors", len(errs))
	}
}
