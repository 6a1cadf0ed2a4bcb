// Package localstore is a syncer.FileStore over a local directory.
//
// The directory is opened with os.OpenRoot, so every operation resolves
// inside it: a key is first checked with gapsync.CleanKey (no "..", no
// absolute paths, no backslashes), and even a symbolic link inside the
// directory that points outside it is refused by the operating-system
// layer rather than followed.
//
// Put writes to a temporary file in the key's directory (named
// ".gapsync-tmp-…"), copies exactly the declared number of bytes, syncs
// it and renames it over the key, so a reader sees the old file or the
// new one, never a part; on any failure the temporary file is removed.
// Keys whose last element starts with ".gapsync-tmp-" are refused, so an
// upload in progress is never visible through the store. A Put killed
// midway (kill -9, power loss) cannot remove its temporary file; New
// removes those older than Options.StaleTemp (default 1 hour, far longer
// than any Put runs between writes), and RemoveStale does it on demand.
//
// Only regular files are files: a directory is reported missing, and a
// named pipe, device or socket is refused without being opened for
// reading (opening a FIFO would block until a writer came).
//
// Checksums are not kept: Stat returns FileInfo.MD5 and SHA256 empty.
//
// The store is a syncer.VersionedStore: a file's version is its inode,
// size, modification and change times. OpenRangeAt refuses a file whose
// version is no longer the one asked for (replaced by a rename, or
// written in place), and every range reader compares the open file's
// version again once it is read to its end, so a write into the file
// while it is read is reported as gapsync.ErrChanged instead of passing
// as a mix of old and new bytes. Times are as fine as the file system
// keeps them: a same-size write within one tick of the kernel's
// timestamp clock (a few milliseconds on Linux before 6.13) of the
// file's previous change leaves no trace to compare.
package localstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
	"golang.org/x/sync/errgroup"
)

// TempPrefix starts the name of every temporary file Put writes.
const TempPrefix = ".gapsync-tmp-"

// Options tune a Store; the zero value (or nil) means defaults.
type Options struct {
	// FileMode is the permission of new files (default 0o644, before the
	// umask).
	FileMode fs.FileMode
	// DirMode is the permission of new directories (default 0o755).
	DirMode fs.FileMode
	// StaleTemp: New removes temporary files of killed Puts whose last
	// change is older than this (default DefaultStaleTemp). A Put in
	// progress writes its file continuously, so one untouched this long
	// belongs to no live Put. Negative: New removes none.
	StaleTemp time.Duration
}

// DefaultStaleTemp is Options.StaleTemp when unset.
const DefaultStaleTemp = time.Hour

// Store is a directory of files. It is safe for concurrent use.
type Store struct {
	root *os.Root
	opts Options
}

var (
	_ syncer.VersionedStore = (*Store)(nil)
	_ syncer.BatchStore     = (*Store)(nil)
)

// New opens (creating it if needed) the directory dir as a store. Close
// releases it.
func New(dir string, o *Options) (*Store, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o644
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o755
	}
	if opts.StaleTemp == 0 {
		opts.StaleTemp = DefaultStaleTemp
	}
	if dir == "" {
		return nil, errors.New("localstore: no directory given")
	}
	if err := os.MkdirAll(dir, opts.DirMode); err != nil {
		return nil, fmt.Errorf("localstore: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("localstore: %w", err)
	}
	s := &Store{root: root, opts: opts}
	if opts.StaleTemp > 0 {
		if _, err := s.RemoveStale(context.Background(), opts.StaleTemp); err != nil {
			root.Close()
			return nil, err
		}
	}
	return s, nil
}

// RemoveStale removes the temporary files of interrupted Puts, anywhere
// in the directory, that were last modified more than age ago, and
// returns how many it removed. A smaller age than a Put can take between
// two writes may remove the file of a Put in progress, which then fails
// (it never publishes a part). Symbolic links are not followed.
func (s *Store) RemoveStale(ctx context.Context, age time.Duration) (int, error) {
	if age < 0 {
		return 0, fmt.Errorf("localstore: negative age %v", age)
	}
	cutoff := time.Now().Add(-age)
	n := 0
	err := fs.WalkDir(s.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
			return nil
		}
		if err := s.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("localstore: remove stale temporary files: %w", err)
	}
	return n, nil
}

// Close releases the directory.
func (s *Store) Close() error {
	if err := s.root.Close(); err != nil {
		return fmt.Errorf("localstore: close: %w", err)
	}
	return nil
}

// Dir returns the directory the store was opened on.
func (s *Store) Dir() string { return s.root.Name() }

func checkKey(key string) error {
	if err := gapsync.CleanKey(key); err != nil {
		return err
	}
	if strings.HasPrefix(path.Base(key), TempPrefix) {
		return fmt.Errorf("%w: %q is a temporary file name", gapsync.ErrBadPath, key)
	}
	return nil
}

// Stat returns the size of the file at key.
func (s *Store) Stat(ctx context.Context, key string) (syncer.FileInfo, error) {
	fi, err := s.stat(key)
	if err != nil {
		return syncer.FileInfo{}, fmt.Errorf("localstore: stat %q: %w", key, err)
	}
	return syncer.FileInfo{Key: key, Size: fi.Size(), Version: version(fi)}, nil
}

// version is the token that changes whenever the file's bytes may have:
// a rename over the key changes the inode, a write in place the
// modification and change times (and often the size).
func version(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%d.%d:%d:%d.%d:%d.%d", st.Dev, st.Ino, st.Size,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}

func (s *Store) stat(key string) (fs.FileInfo, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	fi, err := s.root.Stat(key)
	if err != nil {
		return nil, notExist(err)
	}
	if err := regular(fi); err != nil {
		return nil, err
	}
	return fi, nil
}

// notExist makes "a/b" where "a" is a file a missing file, as it is on an
// object store.
func notExist(err error) error {
	if errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", fs.ErrNotExist, err)
	}
	return err
}

// regular refuses what is not a file: a directory is no file, so it is
// reported missing, as on an object store.
func regular(fi fs.FileInfo) error {
	switch {
	case fi.IsDir():
		return fmt.Errorf("%w: is a directory", fs.ErrNotExist)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w (%s)", ErrNotRegular, kind(fi.Mode()))
	}
	return nil
}

// ErrNotRegular: the key names a named pipe, device, socket or other
// file that is not a regular file. Not retryable.
var ErrNotRegular = errors.New("not a regular file")

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.Type().String()
}

// OpenRange returns a reader of n bytes of the file at key from off. The
// reader holds the file open, so a Put that replaces the file meanwhile
// does not change what it reads; but a change to the open file while it
// is read — a write in place, or its replacement, which changes its link
// count — makes the end of the range (the last Read, or Close) report
// gapsync.ErrChanged.
func (s *Store) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	return s.OpenRangeAt(ctx, key, "", off, n)
}

// OpenRangeAt is OpenRange of the file at the version Stat returned: a
// file at key that is no longer at that version is refused with
// gapsync.ErrChanged.
func (s *Store) OpenRangeAt(ctx context.Context, key, version string, off, n int64) (io.ReadCloser, error) {
	rc, err := s.openRange(key, version, off, n)
	if err != nil {
		return nil, fmt.Errorf("localstore: open %q [%d,+%d): %w", key, off, n, err)
	}
	return rc, nil
}

func (s *Store) openRange(key, want string, off, n int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, errors.New("negative offset or length")
	}
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer, whatever ctx says; it has no effect on a regular file.
	f, err := s.root.OpenFile(key, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, notExist(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := regular(fi); err != nil {
		f.Close()
		return nil, err
	}
	v := version(fi)
	if want != "" && v != want {
		f.Close()
		return nil, fmt.Errorf("%w: the file is not the version asked for", gapsync.ErrChanged)
	}
	if off > fi.Size() || n > fi.Size()-off {
		f.Close()
		return nil, fmt.Errorf("range ends past the file's %d bytes: %w", fi.Size(), io.ErrUnexpectedEOF)
	}
	return &rangeReader{r: io.NewSectionReader(f, off, n), left: n, f: f, opened: fi}, nil
}

// rangeReader reads exactly left bytes; an early end is io.ErrUnexpectedEOF.
// Once every byte is read, it checks that the open file is still at the
// version it was opened at: the end of the range reports gapsync.ErrChanged
// in place of io.EOF (or from Close, for a caller that stops reading at
// the last byte).
type rangeReader struct {
	r       io.Reader
	left    int64
	f       *os.File
	opened  fs.FileInfo // of f, when opened
	checked bool
	err     error // of the check
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		if err := r.check(); err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *rangeReader) check() error {
	if r.checked {
		return r.err
	}
	r.checked = true
	fi, err := r.f.Stat()
	switch {
	case err != nil:
		r.err = err
	case written(r.opened, fi):
		r.err = fmt.Errorf("localstore: %s: %w: written while it was read", r.f.Name(), gapsync.ErrChanged)
	}
	return r.err
}

// written reports whether the open file a, now b, was written: its size or
// modification time changed, or its change time without a change of its
// link count (which a Put replacing it causes, leaving its bytes as they
// were; a time set back after a write in place changes it too).
func written(a, b fs.FileInfo) bool {
	if a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()) {
		return true
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return false
	}
	return sa.Ctim != sb.Ctim && sa.Nlink == sb.Nlink
}

func (r *rangeReader) Close() error {
	var err error
	if r.left == 0 {
		err = r.check()
	}
	return errors.Join(err, r.f.Close())
}

// Put stores exactly size bytes from r at key, replacing any file there
// atomically. info is not kept.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, info syncer.FileInfo) error {
	if err := s.put(ctx, key, r, size); err != nil {
		return fmt.Errorf("localstore: put %q: %w", key, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64) error {
	tmp, err := s.write(ctx, key, r, size)
	if err != nil {
		return err
	}
	if err := s.root.Rename(tmp, key); err != nil {
		_ = s.root.Remove(tmp)
		return err
	}
	s.syncDir(path.Dir(key))
	return nil
}

// write stores exactly size bytes from r in a new temporary file beside
// key, synced and closed, and returns its name; on failure it leaves
// nothing.
func (s *Store) write(ctx context.Context, key string, r io.Reader, size int64) (_ string, err error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	if size < 0 {
		return "", errors.New("negative size")
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dir := path.Dir(key)
	if dir != "." {
		if err := s.root.MkdirAll(dir, s.opts.DirMode); err != nil {
			return "", err
		}
	}
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, TempPrefix+hex.EncodeToString(rnd[:]))
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, s.opts.FileMode)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = s.root.Remove(tmp)
		}
	}()
	if err := copyExact(ctx, f, r, size); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return tmp, nil
}

// batchWriters is how many files of a PutBatch are written at once.
const batchWriters = 16

// PutBatch stores items as Put does, with the directory syncs shared:
// each file is written to a temporary file and synced, 16 at a time (the
// file system commits syncs that wait together in one journal commit),
// then the files are renamed into place in the order of items and each
// directory is synced once. A page of small files publishes 2 to 4
// times as fast as by one Put each (BENCHMARKS.md).
func (s *Store) PutBatch(ctx context.Context, items []syncer.PutItem) []error {
	errs := make([]error, len(items))
	tmps := make([]string, len(items))
	var eg errgroup.Group
	eg.SetLimit(batchWriters)
	for i, it := range items {
		eg.Go(func() error {
			tmps[i], errs[i] = s.write(ctx, it.Key, it.R, it.Size)
			return nil
		})
	}
	_ = eg.Wait()
	dirs := map[string]bool{}
	for i, it := range items {
		if errs[i] != nil {
			continue
		}
		if errs[i] = ctx.Err(); errs[i] == nil {
			errs[i] = s.root.Rename(tmps[i], it.Key)
		}
		if errs[i] != nil {
			_ = s.root.Remove(tmps[i])
			continue
		}
		dirs[path.Dir(it.Key)] = true
	}
	var sg errgroup.Group
	sg.SetLimit(batchWriters)
	for dir := range dirs {
		sg.Go(func() error { s.syncDir(dir); return nil })
	}
	_ = sg.Wait()
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("localstore: put %q: %w", items[i].Key, err)
		}
	}
	return errs
}

// syncDir makes the rename durable where the file system allows it.
func (s *Store) syncDir(dir string) {
	if d, err := s.root.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// copyExact copies size bytes from r to w, failing if r ends early, yields
// more, fails, or ctx ends.
func copyExact(ctx context.Context, w io.Writer, r io.Reader, size int64) error {
	cr := &ctxReader{ctx: ctx, r: r}
	n, err := io.CopyN(w, cr, size)
	if err == io.EOF {
		return fmt.Errorf("reader ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return err
	}
	var one [1]byte
	for range 100 {
		k, err := cr.Read(one[:])
		if k > 0 {
			return fmt.Errorf("reader yields more than %d bytes", size)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
