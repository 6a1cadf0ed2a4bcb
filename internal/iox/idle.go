package iox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ErrIdle is wrapped by the error of a read that waited longer than its
// idle timeout for a byte (a server that stalls, or trickles slower than
// one byte per timeout). Retryable.
var ErrIdle = errors.New("no byte arrived within the idle timeout")

// OpenIdle calls open with a context that is canceled when idle passes
// with no byte read: from the call of open to the first byte, and between
// any two reads that return bytes. The returned reader reports that as an
// error wrapping ErrIdle; closing it releases the timer. idle ≤ 0 calls
// open with ctx as it is.
//
// It bounds readers that honour their context while blocked (an HTTP
// body, an S3 GetObject); cancellation is how it stops them.
func OpenIdle(ctx context.Context, idle time.Duration, open func(context.Context) (io.ReadCloser, error)) (io.ReadCloser, error) {
	if idle <= 0 {
		return open(ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(idle, func() { cancel(fmt.Errorf("%w (%v)", ErrIdle, idle)) })
	rc, err := open(ctx)
	if err != nil {
		t.Stop()
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, ErrIdle) {
			return nil, fmt.Errorf("%w: %w", cause, err)
		}
		return nil, err
	}
	return &idleReader{rc: rc, ctx: ctx, cancel: cancel, t: t, idle: idle}, nil
}

type idleReader struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	t      *time.Timer
	idle   time.Duration
	once   sync.Once
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.t.Reset(r.idle)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(r.ctx); errors.Is(cause, ErrIdle) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
	}
	return n, err
}

func (r *idleReader) Close() error {
	err := r.rc.Close()
	r.once.Do(func() {
		r.t.Stop()
		r.cancel(nil)
	})
	return err
}
