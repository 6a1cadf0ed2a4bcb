package iox_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/internal/iox"
)

// ctxReader blocks in Read until its context ends, after yielding data.
type ctxReader struct {
	ctx  context.Context
	data *strings.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.data.Len() > 0 {
		return c.data.Read(p[:1])
	}
	<-c.ctx.Done()
	return 0, c.ctx.Err()
}

func (c *ctxReader) Close() error { return nil }

func TestOpenIdle(t *testing.T) {
	is := is.New(t)
	rc, err := iox.OpenIdle(context.Background(), 50*time.Millisecond, func(ctx context.Context) (io.ReadCloser, error) {
		return &ctxReader{ctx: ctx, data: strings.NewReader("abc")}, nil
	})
	is.NoErr(err)
	defer rc.Close()
	start := time.Now()
	b, err := io.ReadAll(rc)
	is.Equal(string(b), "abc")
	is.True(errors.Is(err, iox.ErrIdle)) // the stalled read ended with ErrIdle
	is.True(time.Since(start) < 2*time.Second)

	// A reader that keeps yielding is never cut, however long it runs.
	rc, err = iox.OpenIdle(context.Background(), 50*time.Millisecond, func(ctx context.Context) (io.ReadCloser, error) {
		return io.NopCloser(&slow{n: 10, every: 20 * time.Millisecond}), nil
	})
	is.NoErr(err)
	b, err = io.ReadAll(rc)
	is.NoErr(err)
	is.Equal(len(b), 10)
	is.NoErr(rc.Close())
}

type slow struct {
	n     int
	every time.Duration
}

func (s *slow) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.every)
	s.n--
	p[0] = 'x'
	return 1, nil
}
