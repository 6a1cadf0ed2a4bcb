package syncer_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
)

func sm3Of(b []byte) string { s := sm3.Sum(b); return hex.EncodeToString(s[:]) }

var allSM3 = digests{coord: syncer.DigestSM3, gateway: syncer.DigestSM3, worker: syncer.DigestSM3}

// TestSM3DigestsBothWays: with FileOptions.Digest "sm3" on every role,
// the records of both sides carry the SM3 of their file, beside MD5 and
// SHA-256, and files of one chunk and of several cross both ways.
func TestSM3DigestsBothWays(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		const cs = 32 << 10
		z := newDigestZones(t, kind, "local", cs, allSM3)
		small, large := randBytes(21, 1000), randBytes(22, 4*cs+3)
		put(t, z.inetStore, "in/large.bin", large)
		put(t, z.inetStore, "in/small.bin", small)
		put(t, z.intraStore, "out/年报.pdf", large)
		z.doc(gapsync.Internet, 1, "in/large.bin")
		z.doc(gapsync.Internet, 3, "in/small.bin")
		z.doc(gapsync.Intranet, 2, "out/年报.pdf")
		for range 3 {
			z.round()
		}
		is.Equal(sha(t, z.intraStore, "from-internet/in/large.bin"), shaOf(large))
		is.Equal(sha(t, z.intraStore, "from-internet/in/small.bin"), shaOf(small))
		is.Equal(sha(t, z.inetStore, "from-intranet/out/年报.pdf"), shaOf(large))
		for _, db := range []*sql.DB{z.src(), z.dst()} {
			var got string
			is.NoErr(db.QueryRow("SELECT sm3 FROM file_record WHERE ref = ?", "in/large.bin").Scan(&got))
			is.Equal(got, sm3Of(large))
			is.NoErr(db.QueryRow("SELECT sm3 FROM file_record WHERE ref = ?", "in/small.bin").Scan(&got))
			is.Equal(got, sm3Of(small))
			is.NoErr(db.QueryRow("SELECT sm3 FROM file_record WHERE ref = ?", "out/年报.pdf").Scan(&got))
			is.Equal(got, sm3Of(large))
		}
	})
}

// TestSM3VerifiedAtPublish: publishing checks the SM3 digest as it checks
// SHA-256: bytes that do not match it are not published, and the error
// names SM3.
func TestSM3VerifiedAtPublish(t *testing.T) {
	is := is.New(t)
	const cs = 32 << 10
	z := newDigestZones(t, "sqlite", "local", cs, allSM3)
	z.sendOne("report.pdf", randBytes(23, 3*cs+1))
	// Only the SM3 is wrong: size, MD5, SHA-256 and every chunk are right.
	mustExec(t, z.dst(), "UPDATE file_record SET sm3 = ?", sm3Of([]byte("other bytes")))
	w, err := z.worker.RunOnce(context.Background())
	is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
	is.True(strings.Contains(err.Error(), "SM3"))
	is.Equal(w.Published, 0)
	_, serr := z.intraStore.Stat(context.Background(), "from-internet/report.pdf")
	is.True(errors.Is(serr, fs.ErrNotExist)) // nothing published
}

// TestDigestMismatchRefusedAtOffer: roles whose digest settings differ
// refuse the other side's records when they are offered or pulled, with
// gapsync.ErrDigestMismatch and the setting to change, and store nothing
// of them.
func TestDigestMismatchRefusedAtOffer(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    digests
		ref  string
		side gapsync.Side
	}{
		{"internet sm3, gateway none", digests{coord: syncer.DigestSM3}, "in.bin", gapsync.Internet},
		{"internet none, gateway sm3", digests{gateway: syncer.DigestSM3, worker: syncer.DigestSM3}, "in.bin", gapsync.Internet},
		{"intranet sm3, internet none", digests{worker: syncer.DigestSM3}, "out.bin", gapsync.Intranet},
		{"intranet none, internet sm3", digests{coord: syncer.DigestSM3, gateway: syncer.DigestSM3}, "out.bin", gapsync.Intranet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			z := newDigestZones(t, "sqlite", "local", 32<<10, tc.d)
			st := z.inetStore
			if tc.side == gapsync.Intranet {
				st = z.intraStore
			}
			put(t, st, tc.ref, randBytes(24, 5000))
			z.doc(tc.side, 1, tc.ref)
			if tc.side == gapsync.Intranet {
				z.round() // the row is read, its file noted and staged
			}
			z.waitLag()
			r, _ := z.coord.RunOnce(context.Background())
			is.True(errors.Is(r.FilesErr, gapsync.ErrDigestMismatch))
			is.True(!strings.Contains(r.FilesErr.Error(), "HTTP 500")) // refused, not failed: no retries
			is.True(strings.Contains(r.FilesErr.Error(), "-file-digest"))
			is.True(strings.Contains(r.FilesErr.Error(), tc.ref))
			if tc.side == gapsync.Internet {
				is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record"), 0) // nothing stored
			} else {
				is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_record WHERE origin = 'intranet'"), 0)
				is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE acked"), 0) // it comes again
			}
		})
	}

	is := is.New(t)
	_, err := syncer.NewCoordinator(nil, nil, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{Store: newStore(t, "local"), Digest: "md6"}})
	is.True(err != nil)
}
