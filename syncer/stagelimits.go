package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/chunker"
	"github.com/gapsync/gapsync/internal/iox"
)

// Defaults of the staging limits in FileOptions.
const (
	DefaultIdleTimeout = 30 * time.Second
	DefaultFileTimeout = time.Minute
	// DefaultMinRate is low on purpose: staging is paced by the database
	// that stores the chunks as much as by the store, and a loaded
	// database must not make a healthy file fail.
	DefaultMinRate   = 64 << 10 // bytes per second
	DefaultStageTime = 5 * time.Minute
)

// opener returns how staging reads ranges of the file at key: at the
// version Stat gave, where the store can tell a change
// (VersionedStore), and each range failing when no byte arrives for
// IdleTimeout.
func (f *fileFlow) opener(st FileStore, key string, info FileInfo) chunker.OpenRange {
	vs, versioned := st.(VersionedStore)
	return func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		rc, err := iox.OpenIdle(ctx, f.opts.IdleTimeout, func(ctx context.Context) (io.ReadCloser, error) {
			if versioned && info.Version != "" {
				return vs.OpenRangeAt(ctx, key, info.Version, off, n)
			}
			return st.OpenRange(ctx, key, off, n)
		})
		if err != nil {
			return nil, err
		}
		if c, ok := ctx.Value(readKey{}).(*atomic.Int64); ok {
			return &counting{rc, c}, nil
		}
		return rc, nil
	}
}

// readKey holds, in a file's staging context, the count of its bytes read.
type readKey struct{}

type counting struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// errDeadline is the cause of a file's staging cut off by its deadline.
var errDeadline = errors.New("staging the file missed its deadline")

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
// error after the deadline passed says so. The rate is also watched while
// fn runs: once FileTimeout has passed, a file whose bytes read so far
// lag behind MinRate over the time since is cut at once, rather than at
// the deadline of the size its server announced.
func (f *fileFlow) withDeadline(ctx context.Context, size int64, fn func(context.Context) error) error {
	d := f.fileDeadline(size)
	tctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("%w (%v for %d bytes: FileTimeout + size/MinRate)", errDeadline, d.Round(time.Millisecond), size))
	defer cancel()
	fctx, cut := context.WithCancelCause(tctx)
	defer cut(nil)
	read := new(atomic.Int64)
	fctx = context.WithValue(fctx, readKey{}, read)
	if size > 0 {
		start := time.Now()
		tick := time.NewTicker(min(max(f.opts.FileTimeout/10, 10*time.Millisecond), time.Second))
		defer tick.Stop()
		go func() {
			for {
				select {
				case <-fctx.Done():
					return
				case <-tick.C:
					late := time.Since(start) - f.opts.FileTimeout
					if want := int64(late.Seconds() * float64(f.opts.MinRate)); late > 0 && read.Load() < min(want, size) {
						cut(fmt.Errorf("%w: %d of %d bytes after %v, slower than MinRate %d B/s after the first FileTimeout %v",
							errDeadline, read.Load(), size, time.Since(start).Round(time.Millisecond), f.opts.MinRate, f.opts.FileTimeout))
						return
					}
				}
			}
		}()
	}
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
