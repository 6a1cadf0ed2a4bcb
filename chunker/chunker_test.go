package chunker_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/chunker"
)

const cs = 64 << 10 // chunk size of most tests

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sm3Hex(b []byte) string    { s := sm3.Sum(b); return hex.EncodeToString(s[:]) }

// memSource serves ranges of data, optionally sleeping a random while
// before each, and counts the ranges it opened.
type memSource struct {
	data     []byte
	maxSleep time.Duration
	opens    atomic.Int64
	mu       sync.Mutex
	offs     []int64 // offsets opened, in the order opened
}

func (m *memSource) open(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	m.opens.Add(1)
	m.mu.Lock()
	m.offs = append(m.offs, off)
	m.mu.Unlock()
	if m.maxSleep > 0 {
		time.Sleep(rand.N(m.maxSleep))
	}
	return io.NopCloser(io.NewSectionReader(bytes.NewReader(m.data), off, n)), nil
}

// split runs Split over data and returns a copy of every emitted chunk,
// in emission order.
func split(t *testing.T, src *memSource, o *chunker.Options, first int) ([]chunker.Chunk, chunker.Sums) {
	t.Helper()
	is := is.New(t)
	var got []chunker.Chunk
	sums, err := chunker.Split(t.Context(), int64(len(src.data)), src.open, o, first, func(c chunker.Chunk) error {
		c.Data = bytes.Clone(c.Data)
		got = append(got, c)
		return nil
	})
	is.NoErr(err)
	return got, sums
}

// store maps chunk index to chunk, like a table of BLOB rows.
type store map[int]chunker.Chunk

func storeOf(chunks []chunker.Chunk) store {
	s := store{}
	for _, c := range chunks {
		s[c.Index] = c
	}
	return s
}

var errMissing = errors.New("no such chunk row")

func (s store) next(ctx context.Context, i int) (chunker.Chunk, error) {
	c, ok := s[i]
	if !ok {
		return chunker.Chunk{}, fmt.Errorf("get chunk %d: %w", i, errMissing)
	}
	return c, nil
}

// readAll reads r to its end, failing the test if Read ever returns io.EOF
// while an error is expected, and returns the bytes and the final error.
func readAll(t *testing.T, r io.Reader, wantErr bool) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, 10_000) // not a multiple of the chunk size
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			if wantErr {
				t.Fatalf("Read returned io.EOF after %d bytes; want a verification error", len(out))
			}
			return out, nil
		}
		if err != nil {
			// The error is sticky.
			if n2, err2 := r.Read(buf); n2 != 0 || err2 == nil || err2 == io.EOF {
				t.Fatalf("Read after error = %d, %v; want 0 and the error again", n2, err2)
			}
			return out, err
		}
	}
}

func TestCount(t *testing.T) {
	is := is.New(t)
	for _, tc := range []struct {
		size, chunk int64
		want        int
	}{
		{0, 10, 0}, {-1, 10, 0}, {1, 10, 1}, {9, 10, 1}, {10, 10, 1}, {11, 10, 2},
		{100, 10, 10}, {101, 10, 11}, {1, 1, 1}, {7, 1, 7},
		{chunker.DefaultChunkSize, 0, 1}, {chunker.DefaultChunkSize + 1, 0, 2},
	} {
		is.Equal(chunker.Count(tc.size, tc.chunk), tc.want) // Count(size, chunk)
	}
}

func TestSum(t *testing.T) {
	is := is.New(t)
	data := randomBytes(100_000, 1)
	s, err := chunker.Sum(bytes.NewReader(data))
	is.NoErr(err)
	is.Equal(s, chunker.Sums{Size: 100_000, MD5: md5Hex(data), SHA256: sha256Hex(data)})
	s, err = chunker.Sum(iotest.ErrReader(errMissing))
	is.True(errors.Is(err, errMissing))
	is.Equal(s, chunker.Sums{})
}

// TestRoundTrip splits and merges files of every interesting size, with
// ranges that finish in random order, and checks every sum against
// crypto/md5 and crypto/sha256.
func TestRoundTrip(t *testing.T) {
	const n = 5
	for _, size := range []int{0, 1, cs - 1, cs, n * cs, n*cs + 1} {
		for _, conc := range []int{1, 8} {
			t.Run(fmt.Sprintf("size=%d/concurrency=%d", size, conc), func(t *testing.T) {
				is := is.New(t)
				data := randomBytes(size, uint64(size))
				src := &memSource{data: data, maxSleep: time.Millisecond}
				chunks, sums := split(t, src, &chunker.Options{ChunkSize: cs, Concurrency: conc}, 0)

				count := chunker.Count(int64(size), cs)
				is.Equal(len(chunks), count)
				is.Equal(int(src.opens.Load()), count) // one range per chunk
				is.Equal(sums, chunker.Sums{Size: int64(size), Chunks: count, MD5: md5Hex(data), SHA256: sha256Hex(data)})
				for i, c := range chunks {
					is.Equal(c.Index, i) // emitted in index order
					is.Equal(c.Offset, int64(i*cs))
					end := min((i+1)*cs, size)
					is.Equal(c.Data, data[i*cs:end])
					is.Equal(c.MD5, md5Hex(data[i*cs:end]))
					is.Equal(c.SHA256, sha256Hex(data[i*cs:end]))
				}

				rows := storeOf(chunks)
				var out bytes.Buffer
				is.NoErr(chunker.Merge(t.Context(), &out, sums, rows.next)) // WriteTo path
				is.True(bytes.Equal(out.Bytes(), data))
				got, err := readAll(t, chunker.NewReader(t.Context(), sums, rows.next), false) // Read path
				is.NoErr(err)
				is.True(bytes.Equal(got, data))
				is.NoErr(iotest.TestReader(chunker.NewReader(t.Context(), sums, rows.next), data))
			})
		}
	}
}

// TestSplitOrder makes later ranges finish first and checks that emit
// still sees the chunks in index order, from one goroutine at a time.
func TestSplitOrder(t *testing.T) {
	is := is.New(t)
	const conc, n = 4, 24
	data := randomBytes(n*cs, 2)
	var (
		mu       sync.Mutex
		finished []int64 // chunk offsets in the order their ranges completed
	)
	open := func(ctx context.Context, off, l int64) (io.ReadCloser, error) {
		i := off / cs
		time.Sleep(time.Duration(conc-i%conc) * 3 * time.Millisecond) // later in a window = sooner
		mu.Lock()
		finished = append(finished, i)
		mu.Unlock()
		return io.NopCloser(io.NewSectionReader(bytes.NewReader(data), off, l)), nil
	}
	var order []int
	var inEmit atomic.Int32
	_, err := chunker.Split(t.Context(), int64(len(data)), open, &chunker.Options{ChunkSize: cs, Concurrency: conc}, 0, func(c chunker.Chunk) error {
		is.Equal(inEmit.Add(1), int32(1)) // never two emits at once
		defer inEmit.Add(-1)
		is.True(bytes.Equal(c.Data, data[c.Index*cs:(c.Index+1)*cs]))
		order = append(order, c.Index)
		return nil
	})
	is.NoErr(err)
	is.True(!slices.IsSorted(finished)) // the ranges did finish out of order
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	is.Equal(order, want)
}

// TestSplitConcurrency checks that Split reads up to, and never more than,
// Concurrency ranges at once.
func TestSplitConcurrency(t *testing.T) {
	for _, conc := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			is := is.New(t)
			data := randomBytes(40*1000, 3)
			var open, peak atomic.Int64
			// The first reads wait until Concurrency of them are open (or 5 s
			// pass), so a loaded machine cannot let one finish before the
			// last starts: a Split that never opens that many fails here.
			full := make(chan struct{})
			var fullOnce sync.Once
			src := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
				now := open.Add(1)
				for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
				}
				if now >= int64(conc) {
					fullOnce.Do(func() { close(full) })
				}
				select {
				case <-full:
				case <-time.After(5 * time.Second):
				}
				time.Sleep(2 * time.Millisecond)
				return closer{io.NewSectionReader(bytes.NewReader(data), off, n), func() { open.Add(-1) }}, nil
			}
			_, err := chunker.Split(t.Context(), int64(len(data)), src, &chunker.Options{ChunkSize: 1000, Concurrency: conc}, 0,
				func(chunker.Chunk) error { time.Sleep(time.Millisecond); return nil })
			is.NoErr(err)
			is.Equal(peak.Load(), int64(conc))
		})
	}
}

type closer struct {
	io.Reader
	close func()
}

func (c closer) Close() error { c.close(); return nil }

// TestCorruptChunk flips one byte of a stored chunk: the reader returns the
// chunks before it, then an ErrChecksumMismatch naming it, never io.EOF.
func TestCorruptChunk(t *testing.T) {
	const bad = 3
	data := randomBytes(8*cs+100, 4)
	chunks, sums := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs}, 0)
	for _, tc := range []struct {
		name, hash string
		keep       func(*chunker.Chunk)
	}{
		{"both sums", "MD5", func(*chunker.Chunk) {}},
		{"md5 only", "MD5", func(c *chunker.Chunk) { c.SHA256 = "" }},
		{"sha256 only", "SHA-256", func(c *chunker.Chunk) { c.MD5 = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			rows := store{}
			for _, c := range chunks {
				c.Data = bytes.Clone(c.Data)
				tc.keep(&c)
				rows[c.Index] = c
			}
			rows[bad].Data[cs/2] ^= 0x10

			got, err := readAll(t, chunker.NewReader(t.Context(), sums, rows.next), true)
			is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
			is.True(strings.Contains(err.Error(), fmt.Sprintf("chunk %d:", bad)))
			is.True(strings.Contains(err.Error(), tc.hash+" "))
			is.True(bytes.Equal(got, data[:bad*cs])) // nothing of the bad chunk came out

			var w bytes.Buffer
			err = chunker.Merge(t.Context(), &w, sums, rows.next)
			is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
			is.Equal(w.Len(), bad*cs)
		})
	}
}

// TestWholeFileMismatch: chunks without sums of their own pass, but the
// whole-file sums catch the damage at the end, instead of io.EOF.
func TestWholeFileMismatch(t *testing.T) {
	data := randomBytes(4*cs+7, 5)
	chunks, sums := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs, SM3: true}, 0)
	unverified := func() store {
		rows := store{}
		for _, c := range chunks {
			rows[c.Index] = chunker.Chunk{Data: bytes.Clone(c.Data)}
		}
		return rows
	}
	for _, tc := range []struct {
		name, hash string
		want       chunker.Sums
	}{
		{"both", "MD5", sums},
		{"md5 only", "MD5", chunker.Sums{Size: sums.Size, Chunks: sums.Chunks, MD5: sums.MD5}},
		{"sha256 only", "SHA-256", chunker.Sums{Size: sums.Size, Chunks: sums.Chunks, SHA256: sums.SHA256}},
		{"sm3 only", "SM3", chunker.Sums{Size: sums.Size, Chunks: sums.Chunks, SM3: sums.SM3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			rows := unverified()
			got, err := readAll(t, chunker.NewReader(t.Context(), tc.want, rows.next), false)
			is.NoErr(err) // intact: verifies
			is.True(bytes.Equal(got, data))

			rows[2].Data[9] ^= 1
			got, err = readAll(t, chunker.NewReader(t.Context(), tc.want, rows.next), true)
			is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
			is.True(strings.Contains(err.Error(), "file: "+tc.hash+" "))
			is.Equal(len(got), len(data)) // all bytes, then the error
		})
	}
	t.Run("wrong recorded sum", func(t *testing.T) {
		is := is.New(t)
		want := sums
		want.SHA256 = sha256Hex([]byte("something else"))
		_, err := readAll(t, chunker.NewReader(t.Context(), want, unverified().next), true)
		is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
		is.True(strings.Contains(err.Error(), "SHA-256"))
	})
	t.Run("wrong recorded sm3", func(t *testing.T) {
		is := is.New(t)
		want := sums
		want.SM3 = sm3Hex([]byte("something else"))
		_, err := readAll(t, chunker.NewReader(t.Context(), want, unverified().next), true)
		is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
		is.True(strings.Contains(err.Error(), "file: SM3 "))
	})
}

// TestSM3: Options.SM3 adds the whole-file SM3 (the GB/T 32905 vector
// first), only on a full pass, and the merge verifies it.
func TestSM3(t *testing.T) {
	is := is.New(t)
	is.Equal(sm3Hex([]byte("abc")), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
	for _, size := range []int{0, 1, cs, 3*cs + 5} {
		data := randomBytes(size, uint64(size)+9)
		src := &memSource{data: data}
		chunks, sums := split(t, src, &chunker.Options{ChunkSize: cs, Concurrency: 3, SM3: true}, 0)
		is.Equal(sums.SM3, sm3Hex(data))
		is.Equal(sums.SHA256, sha256Hex(data)) // beside the others
		var out bytes.Buffer
		is.NoErr(chunker.Merge(t.Context(), &out, sums, storeOf(chunks).next))
		is.True(bytes.Equal(out.Bytes(), data))

		_, plain := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs}, 0)
		is.Equal(plain.SM3, "") // not asked for
		if n := chunker.Count(int64(size), cs); n > 1 {
			_, resumed := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs, SM3: true}, 1)
			is.Equal(resumed.SM3, "") // what was not read cannot be hashed
		}
	}
}

// TestBadLengths covers missing, short, long and empty chunks and a wrong
// chunk count.
func TestBadLengths(t *testing.T) {
	data := randomBytes(5*cs+10, 6)
	chunks, sums := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs}, 0)
	last := sums.Chunks - 1
	rowsWith := func(sums bool, edit func(store)) store {
		rows := store{}
		for _, c := range chunks {
			c.Data = bytes.Clone(c.Data)
			if !sums {
				c.MD5, c.SHA256 = "", ""
			}
			rows[c.Index] = c
		}
		edit(rows)
		return rows
	}
	sizeOnly := chunker.Sums{Size: sums.Size, Chunks: sums.Chunks}
	for _, tc := range []struct {
		name     string
		want     chunker.Sums
		rows     store
		mismatch bool // else errMissing
		msg      string
		gotBytes int
	}{
		{"missing chunk", sums, rowsWith(true, func(s store) { delete(s, 2) }), false, "chunk 2", 2 * cs},
		{"short last chunk, no sums", sizeOnly, rowsWith(false, func(s store) {
			c := s[last]
			c.Data = c.Data[:len(c.Data)-1]
			s[last] = c
		}), true, "bytes in", len(data) - 1},
		{"short middle chunk, no sums", sizeOnly, rowsWith(false, func(s store) {
			c := s[1]
			c.Data = c.Data[:100]
			s[1] = c
		}), true, "bytes in", len(data) - cs + 100},
		{"short chunk with sums", sums, rowsWith(true, func(s store) {
			c := s[1]
			c.Data = c.Data[:100]
			s[1] = c
		}), true, "chunk 1: MD5", cs},
		{"long chunk", sizeOnly, rowsWith(false, func(s store) {
			c := s[last]
			c.Data = append(c.Data, 0)
			s[last] = c
		}), true, fmt.Sprintf("chunk %d: 11 bytes", last), len(data) - 10},
		{"empty chunk", sizeOnly, rowsWith(false, func(s store) { s[0] = chunker.Chunk{} }), true, "chunk 0 of 6 is empty", 0},
		{"too few chunks", chunker.Sums{Size: sums.Size, Chunks: sums.Chunks - 1}, rowsWith(false, func(store) {}), true, "bytes in 5 chunks", 5 * cs},
		{"no chunks", chunker.Sums{Size: sums.Size}, rowsWith(false, func(store) {}), true, "0 bytes in 0 chunks", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			got, err := readAll(t, chunker.NewReader(t.Context(), tc.want, tc.rows.next), true)
			is.Equal(errors.Is(err, gapsync.ErrChecksumMismatch), tc.mismatch)
			is.Equal(errors.Is(err, errMissing), !tc.mismatch)
			is.True(strings.Contains(err.Error(), tc.msg))
			is.Equal(len(got), tc.gotBytes)
			is.True(bytes.Equal(got, data[:len(got)]) || tc.name == "short middle chunk, no sums")
		})
	}
	t.Run("empty file", func(t *testing.T) {
		is := is.New(t)
		empty := chunker.Sums{MD5: md5Hex(nil), SHA256: sha256Hex(nil)}
		got, err := readAll(t, chunker.NewReader(t.Context(), empty, store{}.next), false)
		is.NoErr(err)
		is.Equal(len(got), 0)
		// A stray chunk for an empty file is caught.
		_, err = readAll(t, chunker.NewReader(t.Context(), chunker.Sums{Chunks: 1}, store{0: {Data: []byte{1}}}.next), true)
		is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
	})
}

func TestReaderContext(t *testing.T) {
	is := is.New(t)
	data := randomBytes(3*cs, 7)
	chunks, sums := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs}, 0)
	ctx, cancel := context.WithCancel(t.Context())
	r := chunker.NewReader(ctx, sums, storeOf(chunks).next)
	buf := make([]byte, cs)
	_, err := io.ReadFull(r, buf)
	is.NoErr(err)
	cancel()
	_, err = readAll(t, r, true)
	is.True(errors.Is(err, context.Canceled))
}

// TestShortRange: a range that yields fewer bytes than asked fails Split.
func TestShortRange(t *testing.T) {
	for _, short := range []int64{1, cs} { // partial, and nothing at all
		t.Run(fmt.Sprint(short), func(t *testing.T) {
			is := is.New(t)
			data := randomBytes(6*cs, 8)
			open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
				if off == 3*cs {
					n -= short
				}
				return io.NopCloser(io.NewSectionReader(bytes.NewReader(data), off, n)), nil
			}
			var emitted []int
			_, err := chunker.Split(t.Context(), int64(len(data)), open, &chunker.Options{ChunkSize: cs, Concurrency: 2}, 0,
				func(c chunker.Chunk) error { emitted = append(emitted, c.Index); return nil })
			is.True(errors.Is(err, io.ErrUnexpectedEOF))
			is.True(strings.Contains(err.Error(), "chunk 3"))
			is.True(isPrefix(emitted, 3)) // in order, and stopped before chunk 3
		})
	}
}

// TestRangeError: an error opening a range stops Split and is returned.
func TestRangeError(t *testing.T) {
	is := is.New(t)
	boom := errors.New("boom")
	data := randomBytes(10*cs, 9)
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		if off == 5*cs {
			return nil, boom
		}
		return io.NopCloser(io.NewSectionReader(bytes.NewReader(data), off, n)), nil
	}
	var emitted []int
	sums, err := chunker.Split(t.Context(), int64(len(data)), open, &chunker.Options{ChunkSize: cs, Concurrency: 3}, 0,
		func(c chunker.Chunk) error { emitted = append(emitted, c.Index); return nil })
	is.True(errors.Is(err, boom))
	is.Equal(sums, chunker.Sums{})
	is.True(isPrefix(emitted, 5)) // in order, and stopped before chunk 5
}

// isPrefix reports whether emitted is 0, 1, 2, … and stops before n.
func isPrefix(emitted []int, n int) bool {
	for i, v := range emitted {
		if v != i {
			return false
		}
	}
	return len(emitted) <= n
}

// TestEmitErrorCancels: an emit error stops Split, cancels the ranges in
// flight and opens no more.
func TestEmitErrorCancels(t *testing.T) {
	is := is.New(t)
	const conc, stopAt = 4, 2
	stop := errors.New("database full")
	data := randomBytes(100*1000, 10)
	var opens, canceled atomic.Int64
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		opens.Add(1)
		if off/1000 > stopAt { // these never finish on their own
			select {
			case <-ctx.Done():
				canceled.Add(1)
				return nil, ctx.Err()
			case <-time.After(10 * time.Second):
				return nil, errors.New("range not canceled")
			}
		}
		return io.NopCloser(io.NewSectionReader(bytes.NewReader(data), off, n)), nil
	}
	start := time.Now()
	_, err := chunker.Split(t.Context(), int64(len(data)), open, &chunker.Options{ChunkSize: 1000, Concurrency: conc}, 0,
		func(c chunker.Chunk) error {
			if c.Index == stopAt {
				return stop
			}
			return nil
		})
	is.True(errors.Is(err, stop))
	is.True(time.Since(start) < 5*time.Second)
	is.True(opens.Load() <= stopAt+1+conc)             // a bounded window, not all 100
	is.Equal(canceled.Load(), opens.Load()-(stopAt+1)) // every range in flight was canceled
	is.True(canceled.Load() > 0)
}

func TestSplitContextCanceled(t *testing.T) {
	is := is.New(t)
	data := randomBytes(20*1000, 11)
	ctx, cancel := context.WithCancel(t.Context())
	var emitted int
	_, err := chunker.Split(ctx, int64(len(data)), (&memSource{data: data}).open, &chunker.Options{ChunkSize: 1000}, 0,
		func(c chunker.Chunk) error {
			emitted++
			if c.Index == 4 {
				cancel()
			}
			return nil
		})
	is.True(errors.Is(err, context.Canceled))
	is.True(emitted < 20)
}

// TestResume: first=k reads and emits only chunks k.., and cannot give the
// whole-file hashes.
func TestResume(t *testing.T) {
	for _, first := range []int{1, 4, 7, 8} {
		t.Run(fmt.Sprint(first), func(t *testing.T) {
			is := is.New(t)
			data := randomBytes(7*cs+3, 12)
			src := &memSource{data: data, maxSleep: time.Millisecond}
			full, _ := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs}, 0)
			chunks, sums := split(t, src, &chunker.Options{ChunkSize: cs, Concurrency: 3}, first)
			is.Equal(sums, chunker.Sums{Size: int64(len(data)), Chunks: 8})
			is.Equal(len(chunks), len(full)-first)
			for i, c := range chunks {
				is.Equal(c, full[first+i])
			}
			is.Equal(int(src.opens.Load()), 8-first)
			for _, off := range src.offs {
				is.True(off >= int64(first*cs)) // no earlier range opened
			}
		})
	}
}

func TestSplitBadArgs(t *testing.T) {
	is := is.New(t)
	src := &memSource{data: make([]byte, 10)}
	emit := func(chunker.Chunk) error { t.Error("emit called"); return nil }
	for _, tc := range []struct {
		size  int64
		open  chunker.OpenRange
		o     *chunker.Options
		first int
	}{
		{10, src.open, &chunker.Options{ChunkSize: -1}, 0},
		{10, src.open, &chunker.Options{Concurrency: -1}, 0},
		{-1, src.open, nil, 0},
		{10, nil, nil, 0},
		{10, src.open, &chunker.Options{ChunkSize: 4}, -1},
		{10, src.open, &chunker.Options{ChunkSize: 4}, 4},
	} {
		_, err := chunker.Split(t.Context(), tc.size, tc.open, tc.o, tc.first, emit)
		is.True(err != nil)
	}
	is.Equal(src.opens.Load(), int64(0))

	// Defaults: a nil *Options means 4 MiB chunks.
	sums, err := chunker.Split(t.Context(), 10, src.open, nil, 0, func(c chunker.Chunk) error { return nil })
	is.NoErr(err)
	is.Equal(sums.Chunks, 1)
}

// pattern is the repeating content of synthetic sources; its length is
// prime so that chunks differ.
var pattern = randomBytes(65521, 13)

// genReader yields n bytes of the endless pattern from offset off without
// holding them.
type genReader struct{ off, n int64 }

func (g *genReader) Read(p []byte) (int, error) {
	if g.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.n)]
	total := 0
	for len(p) > 0 {
		k := copy(p, pattern[g.off%int64(len(pattern)):])
		p, g.off, g.n, total = p[k:], g.off+int64(k), g.n-int64(k), total+k
	}
	return total, nil
}

func (g *genReader) Close() error { return nil }

func genOpen(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	return &genReader{off, n}, nil
}

// allocated returns the bytes f allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestSplitMemory: splitting 256 MiB with 1 MiB chunks and 4 readers
// reuses its buffers: it allocates about 5 MiB, not 256.
func TestSplitMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 256 MiB")
	}
	is := is.New(t)
	const size, chunk = 256 << 20, 1 << 20
	want, err := chunker.Sum(&genReader{0, size})
	is.NoErr(err)
	var sums chunker.Sums
	var emitted int64
	n := allocated(func() {
		sums, err = chunker.Split(t.Context(), size, genOpen, &chunker.Options{ChunkSize: chunk, Concurrency: 4}, 0,
			func(c chunker.Chunk) error { emitted += int64(len(c.Data)); return nil })
	})
	is.NoErr(err)
	is.Equal(emitted, int64(size))
	want.Chunks = 256
	is.Equal(sums, want)
	t.Logf("Split of 256 MiB allocated %.2f MiB", float64(n)/(1<<20))
	is.True(n < 16<<20) // buffers are reused
}

// TestReaderMemory: merging 256 chunks of 1 MiB holds one chunk at a time
// and allocates next to nothing of its own.
func TestReaderMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 256 MiB")
	}
	is := is.New(t)
	const size, chunk, count = 256 << 20, 1 << 20, 256
	want, err := chunker.Sum(&genReader{0, size})
	is.NoErr(err)
	want.Chunks = count
	buf := make([]byte, chunk) // the only chunk buffer, reused by next
	sums := make([][2]string, count)
	for i := range count {
		_, err := io.ReadFull(&genReader{int64(i) * chunk, chunk}, buf)
		is.NoErr(err)
		sums[i] = [2]string{md5Hex(buf), sha256Hex(buf)}
	}
	next := func(ctx context.Context, i int) (chunker.Chunk, error) {
		if _, err := io.ReadFull(&genReader{int64(i) * chunk, chunk}, buf); err != nil {
			return chunker.Chunk{}, err
		}
		return chunker.Chunk{Data: buf, MD5: sums[i][0], SHA256: sums[i][1]}, nil
	}
	var written int64
	n := allocated(func() {
		written, err = io.Copy(io.Discard, chunker.NewReader(t.Context(), want, next))
	})
	is.NoErr(err)
	is.Equal(written, int64(size))
	t.Logf("merge of 256 MiB allocated %.2f MiB", float64(n)/(1<<20))
	is.True(n < 4<<20)

	// The same through Read with a small buffer.
	small := make([]byte, 32<<10)
	n = allocated(func() {
		written, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{chunker.NewReader(t.Context(), want, next)}, small)
	})
	is.NoErr(err)
	is.Equal(written, int64(size))
	is.True(n < 4<<20)
}
