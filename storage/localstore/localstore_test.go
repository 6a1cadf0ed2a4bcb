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
	"testing"

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
