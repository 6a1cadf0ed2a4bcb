package chunker

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"

	"github.com/emmansun/gmsm/sm3"
	"github.com/gapsync/gapsync"
)

// Next returns chunk i's bytes (e.g. read from a database row) with the
// per-chunk sums recorded when it was split; an empty sum means unknown and
// is not checked. Chunk.Index and Chunk.Offset are ignored. The reader is
// done with the Data of one call when it makes the next, so next may reuse
// its buffer.
type Next func(ctx context.Context, i int) (Chunk, error)

// parallelMin is the chunk length from which the reader runs its hashes
// in parallel goroutines rather than one after the other.
const parallelMin = 64 << 10

// reader is the merged, verified stream of NewReader.
type reader struct {
	ctx  context.Context
	want Sums
	next Next

	ahead    int                // chunks fetched beyond the current one
	launched int                // chunks whose fetch has started
	pending  []chan fetchResult // fetches started, in chunk order

	i     int    // next chunk to fetch
	cur   []byte // verified bytes of the current chunk not yet returned
	total int64  // bytes of the chunks fetched so far
	err   error  // sticky: io.EOF after a verified end, or the failure

	fileMD5, fileSHA   hash.Hash // nil when want has no such sum
	fileSM3            hash.Hash
	chunkMD5, chunkSHA hash.Hash
	md5Sum             [md5.Size]byte
	shaSum             [sha256.Size]byte
}

// NewReader returns a reader of the merged file. It fetches chunks 0 to
// want.Chunks-1 in order through next, one at a time (so memory is one
// chunk), and verifies each before returning any of its bytes: its MD5 and
// SHA-256 when given, that it is not empty (unless want.Size is 0) and
// that the lengths so far do not exceed want.Size. It hashes the whole
// stream and, instead of the final io.EOF, returns an error if the total
// size or the whole-file MD5 or SHA-256 (those set in want) differ.
//
// Every verification error wraps gapsync.ErrChecksumMismatch and names the
// chunk index and the hash; an error from next is returned wrapped with
// the chunk index. Errors are sticky. So a store that writes from this
// reader, and stores nothing when a Read fails, never publishes unverified
// bytes.
//
// The reader also implements io.WriterTo, which io.Copy uses to write
// each chunk without an intermediate buffer.
func NewReader(ctx context.Context, want Sums, next Next) io.Reader {
	return NewReaderAhead(ctx, want, 0, next)
}

// NewReaderAhead is NewReader that fetches up to ahead chunks beyond the
// one being read, each in its own goroutine, so that fetching overlaps
// verifying and writing: memory is ahead+1 chunks. next is then called
// concurrently and must not reuse the buffers it returns. A reader
// abandoned before its end leaves at most ahead fetches to finish on
// their own (cancel ctx to cut them short).
func NewReaderAhead(ctx context.Context, want Sums, ahead int, next Next) io.Reader {
	r := &reader{ctx: ctx, want: want, next: next, ahead: max(ahead, 0), chunkMD5: md5.New(), chunkSHA: sha256.New()}
	if want.MD5 != "" {
		r.fileMD5 = md5.New()
	}
	if want.SHA256 != "" {
		r.fileSHA = sha256.New()
	}
	if want.SM3 != "" {
		r.fileSM3 = sm3.New()
	}
	return r
}

// Merge writes the merged, verified file to w: io.Copy(w, NewReader(...)).
// On error, w may have received some bytes (never those of a chunk that
// failed its own sums); the caller must discard them.
func Merge(ctx context.Context, w io.Writer, want Sums, next Next) error {
	_, err := io.Copy(w, NewReader(ctx, want, next))
	return err
}

func (r *reader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.fetch()
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var written int64
	for {
		for len(r.cur) == 0 {
			if r.err == io.EOF {
				return written, nil
			}
			if r.err != nil {
				return written, r.err
			}
			r.err = r.fetch()
		}
		n, err := w.Write(r.cur)
		written += int64(n)
		r.cur = r.cur[n:]
		if err == nil && len(r.cur) > 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return written, err
		}
	}
}

// mismatch returns a verification error wrapping gapsync.ErrChecksumMismatch.
func mismatch(format string, args ...any) error {
	return fmt.Errorf("chunker: %s: %w", fmt.Sprintf(format, args...), gapsync.ErrChecksumMismatch)
}

// fetch gets and verifies the next chunk into r.cur, or checks the whole
// file and returns io.EOF or the mismatch once all chunks are read.
func (r *reader) fetch() error {
	if r.i >= r.want.Chunks {
		return r.finish()
	}
	if err := r.ctx.Err(); err != nil {
		return err
	}
	i := r.i
	c, err := r.get(i)
	if err != nil {
		return fmt.Errorf("chunker: chunk %d: %w", i, err)
	}
	d := c.Data
	switch {
	case len(d) == 0 && r.want.Size != 0:
		return mismatch("chunk %d of %d is empty", i, r.want.Chunks)
	case int64(len(d)) > r.want.Size-r.total:
		return mismatch("chunk %d: %d bytes after %d run past the %d-byte size", i, len(d), r.total, r.want.Size)
	}

	// Hash the chunk with every hash that is wanted; for big chunks, in
	// parallel, so a merge is about as fast as the slowest single hash.
	var hs [5]hash.Hash
	k := 0
	for _, h := range []hash.Hash{r.fileMD5, r.fileSHA, r.fileSM3} {
		if h != nil {
			hs[k] = h
			k++
		}
	}
	if c.MD5 != "" {
		r.chunkMD5.Reset()
		hs[k] = r.chunkMD5
		k++
	}
	if c.SHA256 != "" {
		r.chunkSHA.Reset()
		hs[k] = r.chunkSHA
		k++
	}
	if len(d) < parallelMin || k < 2 {
		for _, h := range hs[:k] {
			h.Write(d)
		}
	} else {
		var wg sync.WaitGroup
		for _, h := range hs[1:k] {
			wg.Go(func() { h.Write(d) })
		}
		hs[0].Write(d)
		wg.Wait()
	}
	if c.MD5 != "" {
		if got := hex.EncodeToString(r.chunkMD5.Sum(r.md5Sum[:0])); !strings.EqualFold(got, c.MD5) {
			return mismatch("chunk %d: MD5 %s, want %s", i, got, c.MD5)
		}
	}
	if c.SHA256 != "" {
		if got := hex.EncodeToString(r.chunkSHA.Sum(r.shaSum[:0])); !strings.EqualFold(got, c.SHA256) {
			return mismatch("chunk %d: SHA-256 %s, want %s", i, got, c.SHA256)
		}
	}
	r.i++
	r.total += int64(len(d))
	r.cur = d
	return nil
}

type fetchResult struct {
	c   Chunk
	err error
}

// get returns chunk i, the next in order, through next: at once, or from
// the fetches started ahead, starting those up to i+ahead.
func (r *reader) get(i int) (Chunk, error) {
	if r.ahead == 0 {
		return r.next(r.ctx, i)
	}
	for ; r.launched < r.want.Chunks && r.launched <= i+r.ahead; r.launched++ {
		j, ch := r.launched, make(chan fetchResult, 1)
		go func() {
			c, err := r.next(r.ctx, j)
			ch <- fetchResult{c, err}
		}()
		r.pending = append(r.pending, ch)
	}
	res := <-r.pending[0]
	r.pending[0] = nil
	r.pending = r.pending[1:]
	return res.c, res.err
}

// finish checks the whole file after the last chunk.
func (r *reader) finish() error {
	if r.total != r.want.Size {
		return mismatch("file: %d bytes in %d chunks, want %d", r.total, r.i, r.want.Size)
	}
	if r.fileMD5 != nil {
		if got := hex.EncodeToString(r.fileMD5.Sum(r.md5Sum[:0])); !strings.EqualFold(got, r.want.MD5) {
			return mismatch("file: MD5 %s, want %s", got, r.want.MD5)
		}
	}
	if r.fileSHA != nil {
		if got := hex.EncodeToString(r.fileSHA.Sum(r.shaSum[:0])); !strings.EqualFold(got, r.want.SHA256) {
			return mismatch("file: SHA-256 %s, want %s", got, r.want.SHA256)
		}
	}
	if r.fileSM3 != nil {
		if got := hex.EncodeToString(r.fileSM3.Sum(r.shaSum[:0])); !strings.EqualFold(got, r.want.SM3) {
			return mismatch("file: SM3 %s, want %s", got, r.want.SM3)
		}
	}
	return io.EOF
}
