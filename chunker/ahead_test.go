package chunker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/chunker"
)

// peakCounter tracks how many calls run at once.
type peakCounter struct{ now, peak atomic.Int64 }

func (p *peakCounter) enter() {
	n := p.now.Add(1)
	for old := p.peak.Load(); n > old && !p.peak.CompareAndSwap(old, n); old = p.peak.Load() {
	}
}

func (p *peakCounter) leave() { p.now.Add(-1) }

// TestSplitStore: Store sees every chunk with its sums, up to Concurrency
// at once, and each chunk is emitted only after its Store returned.
func TestSplitStore(t *testing.T) {
	is := is.New(t)
	data := randomBytes(20*cs+11, 21)
	var mu sync.Mutex
	stored := store{}
	var pc peakCounter
	o := &chunker.Options{ChunkSize: cs, Concurrency: 4, Store: func(ctx context.Context, c chunker.Chunk) error {
		pc.enter()
		defer pc.leave()
		time.Sleep(2 * time.Millisecond)
		c.Data = bytes.Clone(c.Data)
		mu.Lock()
		stored[c.Index] = c
		mu.Unlock()
		return nil
	}}
	var emitted int
	sums, err := chunker.Split(t.Context(), int64(len(data)), (&memSource{data: data}).open, o, 0, func(c chunker.Chunk) error {
		mu.Lock()
		_, ok := stored[c.Index]
		mu.Unlock()
		is.True(ok) // stored before emitted
		is.Equal(c.Index, emitted)
		emitted++
		return nil
	})
	is.NoErr(err)
	is.Equal(emitted, 21)
	is.Equal(len(stored), 21)
	is.True(pc.peak.Load() > 1) // stores ran in parallel
	is.True(pc.peak.Load() <= 4)
	var out bytes.Buffer
	is.NoErr(chunker.Merge(t.Context(), &out, sums, stored.next))
	is.True(bytes.Equal(out.Bytes(), data))
}

// TestSplitStoreError: a failing Store fails the split with its error and
// nothing after the failed chunk is emitted.
func TestSplitStoreError(t *testing.T) {
	is := is.New(t)
	data := randomBytes(10*cs, 22)
	boom := errors.New("insert refused")
	o := &chunker.Options{ChunkSize: cs, Concurrency: 3, Store: func(ctx context.Context, c chunker.Chunk) error {
		if c.Index == 4 {
			return boom
		}
		return nil
	}}
	var emitted []int
	_, err := chunker.Split(t.Context(), int64(len(data)), (&memSource{data: data}).open, o, 0, func(c chunker.Chunk) error {
		emitted = append(emitted, c.Index)
		return nil
	})
	is.True(errors.Is(err, boom))
	is.True(len(emitted) <= 4)
}

// TestReaderAhead: the read-ahead reader yields the same verified bytes,
// fetches in parallel (never more than ahead+1 at once), and still stops
// at a corrupt chunk without returning its bytes.
func TestReaderAhead(t *testing.T) {
	data := randomBytes(30*cs+5, 23)
	chunks, sums := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs}, 0)
	for _, ahead := range []int{1, 2, 5} {
		t.Run(fmt.Sprint(ahead), func(t *testing.T) {
			is := is.New(t)
			rows := storeOf(chunks)
			var pc peakCounter
			slow := func(ctx context.Context, i int) (chunker.Chunk, error) {
				pc.enter()
				defer pc.leave()
				time.Sleep(time.Millisecond)
				return rows.next(ctx, i)
			}
			got, err := readAll(t, chunker.NewReaderAhead(t.Context(), sums, ahead, slow), false)
			is.NoErr(err)
			is.True(bytes.Equal(got, data))
			is.True(pc.peak.Load() > 1)
			is.True(pc.peak.Load() <= int64(ahead+1))

			bad := store{}
			for _, c := range chunks {
				c.Data = bytes.Clone(c.Data)
				bad[c.Index] = c
			}
			bad[7].Data[0] ^= 1
			got, err = readAll(t, chunker.NewReaderAhead(t.Context(), sums, ahead, bad.next), true)
			is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
			is.True(bytes.Equal(got, data[:7*cs]))
		})
	}
}

// TestNoChunkMD5: chunks carry only their SHA-256, the whole file still
// gets both sums, and the merge verifies the same bytes.
func TestNoChunkMD5(t *testing.T) {
	is := is.New(t)
	data := randomBytes(5*cs+3, 24)
	chunks, sums := split(t, &memSource{data: data}, &chunker.Options{ChunkSize: cs, NoChunkMD5: true}, 0)
	for _, c := range chunks {
		is.Equal(c.MD5, "")
		is.Equal(c.SHA256, sha256Hex(c.Data))
	}
	is.Equal(sums.MD5, md5Hex(data))
	is.Equal(sums.SHA256, sha256Hex(data))
	var out bytes.Buffer
	is.NoErr(chunker.Merge(t.Context(), &out, sums, storeOf(chunks).next))
	is.True(bytes.Equal(out.Bytes(), data))
}
