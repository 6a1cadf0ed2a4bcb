package chunker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/chunker"
)

// Split a file into chunks kept in a map (standing in for a table of BLOB
// rows), merge them back verified, then see a corrupted row caught.
func Example() {
	ctx := context.Background()
	file := []byte("gapsync moves files between zones as rows of chunks.")
	open := func(ctx context.Context, off, n int64) (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(bytes.NewReader(file), off, n)), nil
	}

	rows := map[int]chunker.Chunk{}
	sums, err := chunker.Split(ctx, int64(len(file)), open, &chunker.Options{ChunkSize: 16}, 0,
		func(c chunker.Chunk) error {
			c.Data = bytes.Clone(c.Data) // Data is reused once emit returns
			rows[c.Index] = c
			return nil
		})
	if err != nil {
		panic(err)
	}
	fmt.Println("size", sums.Size, "chunks", sums.Chunks)
	fmt.Println("sha256", sums.SHA256)
	for i := range sums.Chunks {
		fmt.Printf("%d %q %s\n", i, rows[i].Data, rows[i].MD5)
	}

	next := func(ctx context.Context, i int) (chunker.Chunk, error) {
		c, ok := rows[i]
		if !ok {
			return chunker.Chunk{}, fmt.Errorf("chunk %d not arrived", i)
		}
		return c, nil
	}
	var merged bytes.Buffer
	if err := chunker.Merge(ctx, &merged, sums, next); err != nil {
		panic(err)
	}
	fmt.Println(merged.String())

	rows[2].Data[0] ^= 0x20 // flip a bit in one row
	err = chunker.Merge(ctx, io.Discard, sums, next)
	fmt.Println(errors.Is(err, gapsync.ErrChecksumMismatch))
	fmt.Println(err)
	// Output:
	// size 52 chunks 4
	// sha256 c227239c045ff4d911ed9569eb35c1ade4dbdac7d55eaaf8238c513972e2e392
	// 0 "gapsync moves fi" af0beb301e39bfcfd8a3af82ce648334
	// 1 "les between zone" 6c02091687d2449cbfb1b82d24d747cd
	// 2 "s as rows of chu" 23652d2c226b66e2cb46aa73a82f43bd
	// 3 "nks." 4bbc5fbfd751d1ae12e955aecc8364c7
	// gapsync moves files between zones as rows of chunks.
	// true
	// chunker: chunk 2: MD5 546e1b23f182e8466e58a2518bb14924, want 23652d2c226b66e2cb46aa73a82f43bd: gapsync: file checksum mismatch
}
