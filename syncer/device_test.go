package syncer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// TestChunkOverDeviceLimitRefused: a gateway whose isolation device
// passes chunks of 16 KiB refuses a file in chunks of 32 KiB, offered or
// pulled, with gapsync.ErrTooLarge and the setting to change, and stores
// nothing of it; in chunks that fit, the same file crosses.
func TestChunkOverDeviceLimitRefused(t *testing.T) {
	for _, side := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
		t.Run(string(side), func(t *testing.T) {
			is := is.New(t)
			z := newDigestZones(t, "sqlite", "local", 32<<10, digests{maxChunk: 16 << 10})
			st, ref := z.inetStore, "in.bin"
			if side == gapsync.Intranet {
				st, ref = z.intraStore, "out.bin"
			}
			put(t, st, ref, randBytes(25, 100<<10))
			z.doc(side, 1, ref)
			if side == gapsync.Intranet {
				z.round() // the row is read, its file noted and staged
			}
			z.waitLag()
			r, _ := z.coord.RunOnce(context.Background())
			is.True(errors.Is(r.FilesErr, gapsync.ErrTooLarge))
			is.True(strings.Contains(r.FilesErr.Error(), "-chunk-size"))
			is.True(strings.Contains(r.FilesErr.Error(), "16384"))
			if side == gapsync.Internet {
				is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record"), 0) // nothing stored
			} else {
				is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk WHERE synced"), 0)
			}
		})
	}
	is := is.New(t)
	z := newDigestZones(t, "sqlite", "local", 16<<10, digests{maxChunk: 16 << 10})
	data := randBytes(26, 100<<10)
	z.sendOne("fits.bin", data)
	_, wr := z.round()
	is.Equal(wr.Published, 1)
}
