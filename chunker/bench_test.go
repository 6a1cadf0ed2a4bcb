package chunker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/gapsync/gapsync/chunker"
)

const benchSize = 64 << 20

// BenchmarkSplit splits a 64 MiB in-memory file into default 4 MiB chunks
// with an emit that does nothing: the cost of reading and hashing, with
// and without the per-chunk MD5 (the file flow leaves it out).
func BenchmarkSplit(b *testing.B) {
	data := randomBytes(benchSize, 100)
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(bytes.NewReader(data), off, n)), nil
	}
	for _, v := range []struct {
		conc  int
		noMD5 bool
	}{{1, false}, {4, false}, {4, true}} {
		b.Run(fmt.Sprintf("concurrency=%d/chunkMD5=%v", v.conc, !v.noMD5), func(b *testing.B) {
			o := &chunker.Options{Concurrency: v.conc, NoChunkMD5: v.noMD5}
			b.SetBytes(benchSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := chunker.Split(b.Context(), benchSize, open, o, 0, func(chunker.Chunk) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMerge merges and verifies the 64 MiB file split with
// concurrency 1 and 4 (the chunks are the same either way), with per-chunk
// and whole-file sums ("all") or whole-file sums only ("file").
func BenchmarkMerge(b *testing.B) {
	data := randomBytes(benchSize, 100)
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(bytes.NewReader(data), off, n)), nil
	}
	for _, conc := range []int{1, 4} {
		rows := store{}
		sums, err := chunker.Split(b.Context(), benchSize, open, &chunker.Options{Concurrency: conc}, 0, func(c chunker.Chunk) error {
			c.Data = bytes.Clone(c.Data)
			rows[c.Index] = c
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		fileOnly := store{}
		for i, c := range rows {
			fileOnly[i] = chunker.Chunk{Data: c.Data}
		}
		for _, v := range []struct {
			name string
			rows store
		}{{"all", rows}, {"file", fileOnly}} {
			b.Run(fmt.Sprintf("concurrency=%d/sums=%s", conc, v.name), func(b *testing.B) {
				b.SetBytes(benchSize)
				b.ReportAllocs()
				for b.Loop() {
					if err := chunker.Merge(b.Context(), io.Discard, sums, v.rows.next); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
