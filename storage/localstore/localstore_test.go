package localstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/filestoretest"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
)

func newStore(t *testing.T, dir string) *localstore.Store {
	t.Helper()
	st, err := localstore.New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// noTempFiles fails t if any temporary file is left under dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), localstore.TempPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	filestoretest.Run(t, filestoretest.Harness{
		New: func(t *testing.T) syncer.FileStore {
			dir := t.TempDir()
			t.Cleanup(func() { noTempFiles(t, dir) }) // runs before TempDir's removal
			return newStore(t, dir)
		},
		Features: filestoretest.Features{Versions: true},
	})
}

// A symbolic link inside the root that points outside it is neither read
// through nor written through.
func TestSymlinkOutsideRefused(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	dir, outside := t.TempDir(), t.TempDir()
	is.NoErr(os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600))
	is.NoErr(os.Symlink(outside, filepath.Join(dir, "out")))
	is.NoErr(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "secret-link")))
	is.NoErr(os.Symlink("/etc", filepath.Join(dir, "etc")))
	st := newStore(t, dir)

	for _, key := range []string{"out/secret", "secret-link", "etc/passwd", "etc/hostname"} {
		_, err := st.Stat(ctx, key)
		is.True(err != nil) // Stat through a link out of the root
		rc, err := st.OpenRange(ctx, key, 0, 1)
		is.True(err != nil) // OpenRange through a link out of the root
		if rc != nil {
			rc.Close()
		}
	}
	for _, key := range []string{"out/new", "out/sub/new", "etc/gapsync-test"} {
		err := st.Put(ctx, key, strings.NewReader("x"), 1, syncer.FileInfo{})
		if err == nil {
			t.Fatalf("Put(%q) through a link out of the root succeeded", key)
		}
	}
	// A Put on the link itself replaces the link (rename does not follow
	// it), and the file it pointed to stays as it was.
	is.NoErr(st.Put(ctx, "secret-link", strings.NewReader("x"), 1, syncer.FileInfo{}))
	fi, err := os.Lstat(filepath.Join(dir, "secret-link"))
	is.NoErr(err)
	is.True(fi.Mode().IsRegular())
	ents, err := os.ReadDir(outside)
	is.NoErr(err)
	is.Equal(len(ents), 1) // nothing written outside the root
	b, err := os.ReadFile(filepath.Join(outside, "secret"))
	is.NoErr(err)
	is.Equal(string(b), "secret") // the file behind the link is untouched
	_, err = os.Lstat("/etc/gapsync-test")
	is.True(errors.Is(err, fs.ErrNotExist))
	noTempFiles(t, dir)
	noTempFiles(t, outside)
}

// A link that stays inside the root is followed, as os.Root allows.
func TestSymlinkInsideFollowed(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	st := newStore(t, dir)
	ctx := context.Background()
	is.NoErr(st.Put(ctx, "real/file.txt", strings.NewReader("hello"), 5, syncer.FileInfo{}))
	is.NoErr(os.Symlink("real", filepath.Join(dir, "alias")))
	info, err := st.Stat(ctx, "alias/file.txt")
	is.NoErr(err)
	is.Equal(info.Size, int64(5))
}

func TestFailedPutLeavesNoTempFile(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	st := newStore(t, dir)
	ctx := context.Background()
	is.NoErr(st.Put(ctx, "d/f.bin", strings.NewReader("old"), 3, syncer.FileInfo{}))
	is.True(st.Put(ctx, "d/f.bin", strings.NewReader("short"), 10, syncer.FileInfo{}) != nil)
	is.True(st.Put(ctx, "d/f.bin", strings.NewReader("too long"), 3, syncer.FileInfo{}) != nil)
	is.True(st.Put(ctx, "d/g.bin", io.MultiReader(strings.NewReader("ab"), errReader{}), 10, syncer.FileInfo{}) != nil)
	noTempFiles(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "d", "f.bin"))
	is.NoErr(err)
	is.Equal(string(b), "old")
	_, err = os.Stat(filepath.Join(dir, "d", "g.bin"))
	is.True(errors.Is(err, fs.ErrNotExist))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestTempNamesRefused(t *testing.T) {
	is := is.New(t)
	st := newStore(t, t.TempDir())
	ctx := context.Background()
	for _, key := range []string{localstore.TempPrefix + "abc", "d/" + localstore.TempPrefix + "x"} {
		_, err := st.Stat(ctx, key)
		is.True(errors.Is(err, gapsync.ErrBadPath))
		err = st.Put(ctx, key, strings.NewReader("x"), 1, syncer.FileInfo{})
		is.True(errors.Is(err, gapsync.ErrBadPath))
	}
}

// A reader opened before a replacing Put keeps reading the old bytes.
func TestOpenReaderSurvivesReplace(t *testing.T) {
	is := is.New(t)
	st := newStore(t, t.TempDir())
	ctx := context.Background()
	old := bytes.Repeat([]byte("o"), 1000)
	is.NoErr(st.Put(ctx, "f", bytes.NewReader(old), int64(len(old)), syncer.FileInfo{}))
	rc, err := st.OpenRange(ctx, "f", 0, 1000)
	is.NoErr(err)
	defer rc.Close()
	is.NoErr(st.Put(ctx, "f", strings.NewReader("new"), 3, syncer.FileInfo{}))
	b, err := io.ReadAll(rc)
	is.NoErr(err)
	is.Equal(b, old)
}

func TestErrorsWrapOnce(t *testing.T) {
	is := is.New(t)
	st := newStore(t, t.TempDir())
	_, err := st.Stat(context.Background(), "nope")
	is.True(errors.Is(err, fs.ErrNotExist))
	is.Equal(strings.Count(err.Error(), "localstore:"), 1)
	err = st.Put(context.Background(), "../x", strings.NewReader("x"), 1, syncer.FileInfo{})
	is.True(errors.Is(err, gapsync.ErrBadPath))
	is.Equal(strings.Count(err.Error(), "localstore:"), 1)
}

func TestNewCreatesDir(t *testing.T) {
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "x", "y")
	st := newStore(t, dir)
	is.NoErr(st.Put(context.Background(), "f", strings.NewReader("1"), 1, syncer.FileInfo{}))
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	is.NoErr(err)
	is.Equal(string(b), "1")
	_, err = localstore.New("", nil)
	is.True(err != nil)
}

// A named pipe is refused at once, by Stat and by OpenRange: opening it
// for reading would wait for a writer forever, whatever the context says.
func TestFIFORefused(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	is.NoErr(syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
	st := newStore(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()

	_, err := st.Stat(ctx, "pipe")
	is.True(errors.Is(err, localstore.ErrNotRegular)) // Stat of a FIFO
	done := make(chan error, 1)
	go func() {
		rc, err := st.OpenRange(ctx, "pipe", 0, 1)
		if rc != nil {
			rc.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		is.True(errors.Is(err, localstore.ErrNotRegular)) // OpenRange of a FIFO
		is.True(strings.Contains(err.Error(), "named pipe"))
	case <-time.After(5 * time.Second):
		t.Fatal("OpenRange of a FIFO blocked")
	}
}

// Temporary files of Puts killed midway are removed when the store is
// opened, once they are older than StaleTemp; younger ones, which may
// belong to a Put in progress in another process, and files of the
// store stay.
func TestStaleTempRemoved(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	write := func(name string, mtime time.Time) string {
		p := filepath.Join(dir, filepath.FromSlash(name))
		is.NoErr(os.MkdirAll(filepath.Dir(p), 0o755))
		is.NoErr(os.WriteFile(p, []byte("partial"), 0o644))
		is.NoErr(os.Chtimes(p, mtime, mtime))
		return p
	}
	staleTop := write(localstore.TempPrefix+"aaaa", old)
	staleDeep := write("a/b/"+localstore.TempPrefix+"bbbb", old)
	fresh := write("a/"+localstore.TempPrefix+"cccc", time.Now())
	kept := write("a/b/old-file.bin", old)
	st := newStore(t, dir)
	for _, p := range []string{staleTop, staleDeep} {
		_, err := os.Stat(p)
		is.True(errors.Is(err, fs.ErrNotExist)) // a stale temporary file is gone
	}
	for _, p := range []string{fresh, kept} {
		_, err := os.Stat(p)
		is.NoErr(err) // a fresh temporary file and a stored file stay
	}

	// On demand, with a smaller age.
	n, err := st.RemoveStale(context.Background(), 0)
	is.NoErr(err)
	is.Equal(n, 1)
	_, err = os.Stat(fresh)
	is.True(errors.Is(err, fs.ErrNotExist))

	// A negative StaleTemp turns the sweep off.
	stale := write(localstore.TempPrefix+"dddd", old)
	st2, err := localstore.New(dir, &localstore.Options{StaleTemp: -1})
	is.NoErr(err)
	defer st2.Close()
	_, err = os.Stat(stale)
	is.NoErr(err)
}

// A file written in place while a range of it is read: the end of the
// range reports gapsync.ErrChanged, and the old version is refused by
// OpenRangeAt from then on.
func TestWrittenWhileRead(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	st := newStore(t, dir)
	ctx := context.Background()
	old := bytes.Repeat([]byte("o"), 1000)
	is.NoErr(st.Put(ctx, "f", bytes.NewReader(old), int64(len(old)), syncer.FileInfo{}))
	info, err := st.Stat(ctx, "f")
	is.NoErr(err)
	rc, err := st.OpenRangeAt(ctx, "f", info.Version, 0, 1000)
	is.NoErr(err)
	defer rc.Close()
	half := make([]byte, 500)
	_, err = io.ReadFull(rc, half)
	is.NoErr(err)
	time.Sleep(20 * time.Millisecond) // past the file system's timestamp granularity
	f, err := os.OpenFile(filepath.Join(dir, "f"), os.O_WRONLY, 0)
	is.NoErr(err)
	_, err = f.WriteAt(bytes.Repeat([]byte("n"), 1000), 0) // same size, same inode
	is.NoErr(err)
	is.NoErr(f.Close())
	_, err = io.ReadAll(rc)
	is.True(errors.Is(err, gapsync.ErrChanged)) // the torn read is reported

	_, err = st.OpenRangeAt(ctx, "f", info.Version, 0, 10)
	is.True(errors.Is(err, gapsync.ErrChanged)) // the old version is gone

	// A reader that stops at the last byte learns it from Close.
	info, err = st.Stat(ctx, "f")
	is.NoErr(err)
	rc2, err := st.OpenRangeAt(ctx, "f", info.Version, 0, 1000)
	is.NoErr(err)
	all := make([]byte, 1000)
	_, err = io.ReadFull(rc2, all)
	is.NoErr(err)
	time.Sleep(20 * time.Millisecond)
	is.NoErr(os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte("m"), 1000), 0o644))
	is.True(errors.Is(rc2.Close(), gapsync.ErrChanged))
}
