package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/chunker"
	"github.com/gapsync/gapsync/internal/iox"
)

// Defaults of the staging limits in FileOptions.
const (
	DefaultIdleTimeout = 30 * time.Second
	DefaultFileTimeout = time.Minute
	DefaultMinRate     = 256 << 10 // bytes per second
	DefaultStageTime   = 5 * time.Minute
)

// opener returns how staging reads ranges of the file at key: at the
// version Stat gave, where the store can tell a change
// (VersionedStore), and each range failing when no byte arrives for
// IdleTimeout.
func (f *fileFlow) opener(st FileStore, key string, info FileInfo) chunker.OpenRange {
	vs, versioned := st.(VersionedStore)
	return func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return iox.OpenIdle(ctx, f.opts.IdleTimeout, func(ctx context.Context) (io.ReadCloser, error) {
			if versioned && info.Version != "" {
				return vs.OpenRangeAt(ctx, key, info.Version, off, n)
			}
			return st.OpenRange(ctx, key, off, n)
		})
	}
}

// errDeadline is the cause of a file's staging cut off by its deadline.
var errDeadline = errors.New("staging the file took longer than its deadline")

// fileDeadline is how long staging a file of size bytes may take:
// FileTimeout plus the time its bytes take at MinRate.
func (f *fileFlow) fileDeadline(size int64) time.Duration {
	d := f.opts.FileTimeout
	if f.opts.MinRate > 0 && size > 0 {
		d += time.Duration(float64(size) / float64(f.opts.MinRate) * float64(time.Second))
	}
	return d
}

// withDeadline runs fn under the deadline of a file of size bytes; an
// error after the deadline passed says so.
func (f *fileFlow) withDeadline(ctx context.Context, size int64, fn func(context.Context) error) error {
	d := f.fileDeadline(size)
	fctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("%w (%v for %d bytes: FileTimeout + size/MinRate)", errDeadline, d.Round(time.Millisecond), size))
	defer cancel()
	err := fn(fctx)
	if err != nil && ctx.Err() == nil && !errors.Is(err, errDeadline) && errors.Is(context.Cause(fctx), errDeadline) {
		err = fmt.Errorf("%w: %w", context.Cause(fctx), err)
	}
	return err
}

// restageLater reports whether err means the file is to be read again
// from the start next cycle, without counting an attempt: it changed
// while it was read.
func restageLater(err error) bool { return errors.Is(err, gapsync.ErrChanged) }
