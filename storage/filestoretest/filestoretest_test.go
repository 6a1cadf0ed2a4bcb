package filestoretest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/filestoretest"
	"github.com/gapsync/gapsync/syncer"
)

// memStore is a reference FileStore in memory. Its break field turns off
// one rule at a time, to show that the suite notices.
type memStore struct {
	brk      string
	readOnly bool
	mu       sync.Mutex
	files    map[string]syncer.FileInfo
	data     map[string][]byte
	puts     int // counts stores, for versions
}

var _ syncer.VersionedStore = (*memStore)(nil)

func newMem(brk string) *memStore {
	return &memStore{brk: brk, files: map[string]syncer.FileInfo{}, data: map[string][]byte{}}
}

func (m *memStore) check(key string) error {
	if m.brk == "nocleankey" {
		return nil
	}
	return gapsync.CleanKey(key)
}

func (m *memStore) Stat(_ context.Context, key string) (syncer.FileInfo, error) {
	if err := m.check(key); err != nil {
		return syncer.FileInfo{}, fmt.Errorf("mem: stat: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	info, ok := m.files[key]
	if !ok {
		if m.brk == "missingerr" {
			return info, errors.New("mem: no such file")
		}
		return info, fmt.Errorf("mem: stat %q: %w", key, fs.ErrNotExist)
	}
	if m.brk == "nosums" {
		info.MD5, info.SHA256 = "", ""
	}
	return info, nil
}

func (m *memStore) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	return m.OpenRangeAt(ctx, key, "", off, n)
}

func (m *memStore) OpenRangeAt(_ context.Context, key, version string, off, n int64) (io.ReadCloser, error) {
	if err := m.check(key); err != nil {
		return nil, fmt.Errorf("mem: open: %w", err)
	}
	m.mu.Lock()
	b, ok := m.data[key]
	v := m.files[key].Version
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("mem: open %q: %w", key, fs.ErrNotExist)
	}
	if version != "" && version != v && m.brk != "noversion" {
		return nil, fmt.Errorf("mem: open %q: %w", key, gapsync.ErrChanged)
	}
	if off < 0 || n < 0 {
		return nil, errors.New("mem: negative range")
	}
	if off+n > int64(len(b)) {
		if m.brk == "shortread" {
			return io.NopCloser(bytes.NewReader(b[min(off, int64(len(b))):])), nil
		}
		return nil, fmt.Errorf("mem: range past the end: %w", io.ErrUnexpectedEOF)
	}
	return io.NopCloser(bytes.NewReader(b[off : off+n])), nil
}

func (m *memStore) Put(ctx context.Context, key string, r io.Reader, size int64, info syncer.FileInfo) error {
	if m.readOnly && m.brk != "writable" {
		return fmt.Errorf("mem: put: %w", gapsync.ErrReadOnly)
	}
	if err := m.check(key); err != nil {
		return fmt.Errorf("mem: put: %w", err)
	}
	if err := ctx.Err(); err != nil && m.brk != "ignorectx" {
		return err
	}
	if size < 0 {
		return errors.New("mem: negative size")
	}
	var buf bytes.Buffer
	_, err := io.CopyN(&buf, r, size)
	if m.brk == "nonatomic" {
		m.store(key, buf.Bytes(), info)
	}
	if err != nil {
		return err
	}
	if m.brk != "extra" {
		if k, _ := io.CopyN(io.Discard, r, 1); k > 0 {
			return errors.New("mem: reader yields more than size")
		}
	}
	m.store(key, buf.Bytes(), info)
	return nil
}

func (m *memStore) store(key string, b []byte, info syncer.FileInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.files[key]; ok && m.brk == "stalesums" && info.MD5 == "" {
		info.MD5, info.SHA256 = prev.MD5, prev.SHA256
	}
	m.puts++
	info.Key, info.Size, info.Version = key, int64(len(b)), fmt.Sprint(m.puts)
	if old := m.data[key]; m.brk == "tornwrite" && len(old) >= len(b) {
		// Overwrite in place: the tail of the old version survives.
		torn := append([]byte{}, old[:len(b)]...)
		copy(torn, b[:len(b)/2])
		b = torn
	}
	m.data[key] = b
	m.files[key] = info
}

func TestMemStore(t *testing.T) {
	filestoretest.Run(t, filestoretest.Harness{
		New:      func(t *testing.T) syncer.FileStore { return newMem("") },
		Features: filestoretest.Features{Checksums: true, Versions: true},
	})
}

func TestMemStoreReadOnly(t *testing.T) {
	var cur *memStore
	filestoretest.Run(t, filestoretest.Harness{
		New: func(t *testing.T) syncer.FileStore {
			cur = newMem("")
			cur.readOnly = true
			return cur
		},
		ReadOnly: true,
		Seed: func(t *testing.T, key string, data []byte) string {
			cur.store(key, data, syncer.FileInfo{})
			return key
		},
		Features: filestoretest.Features{Versions: true},
	})
}

// TestBroken runs the suite on a store broken as FILESTORETEST_BREAK says;
// TestSuiteCatchesBrokenStores runs it in a subprocess and expects it to
// fail.
func TestBroken(t *testing.T) {
	brk := os.Getenv("FILESTORETEST_BREAK")
	if brk == "" {
		t.Skip("run by TestSuiteCatchesBrokenStores")
	}
	readOnly := brk == "writable"
	var cur *memStore
	filestoretest.Run(t, filestoretest.Harness{
		New: func(t *testing.T) syncer.FileStore {
			cur = newMem(brk)
			cur.readOnly = readOnly
			return cur
		},
		ReadOnly: readOnly,
		Seed: func(t *testing.T, key string, data []byte) string {
			cur.store(key, data, syncer.FileInfo{})
			return key
		},
		Features: filestoretest.Features{Checksums: true, Versions: true},
	})
}

func TestSuiteCatchesBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the test binary")
	}
	cases := map[string]string{
		"nocleankey": "BadKeys",
		"missingerr": "Missing",
		"shortread":  "RoundTrip",
		"nonatomic":  "FailedPut",
		"extra":      "FailedPut",
		"ignorectx":  "CanceledPut",
		"stalesums":  "Checksums",
		"nosums":     "Checksums",
		"writable":   "ReadOnly",
		"tornwrite":  "Replace",
		"noversion":  "Versions",
	}
	for brk, subtest := range cases {
		t.Run(brk, func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestBroken$", "-test.v")
			cmd.Env = append(os.Environ(), "FILESTORETEST_BREAK="+brk)
			out, err := cmd.CombinedOutput()
			is.True(err != nil) // the suite must fail on a broken store
			if !strings.Contains(string(out), "--- FAIL: TestBroken/"+subtest) {
				t.Fatalf("break %s: want TestBroken/%s to fail; output:\n%s", brk, subtest, out)
			}
		})
	}
}
