// Package iox holds small io helpers shared by the file stores.
package iox

import "io"

// ExactBody returns a ReadCloser that yields exactly n bytes of rc: an
// early end is io.ErrUnexpectedEOF, and bytes past n are not read.
// Closing it closes rc.
func ExactBody(rc io.ReadCloser, n int64) io.ReadCloser {
	return &exactBody{r: io.LimitReader(rc, n), c: rc, left: n}
}

type exactBody struct {
	r    io.Reader
	c    io.Closer
	left int64
}

func (b *exactBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *exactBody) Close() error { return b.c.Close() }
