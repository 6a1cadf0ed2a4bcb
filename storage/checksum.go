package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// Checksum returns a SHA-256 over every row of t in key order, each value
// in its canonical wire encoding, read through the same exact path the
// sync uses, and the number of rows. Equal checksums on both sides mean
// equal tables: this is how an operator (or the quickstart) verifies a
// sync. Rows whose cursor is at or past year 9999 are not counted.
func (db *DB) Checksum(ctx context.Context, t gapsync.Table) (string, int64, error) {
	h := sha256.New()
	var n int64
	var buf []byte
	var after []byte
	for {
		b, next, more, err := db.page(ctx, t, gapsync.Window{To: "9999-12-31 23:59:59.999999"}, after, gapsync.Page{Rows: 5000}, false)
		if err != nil {
			return "", 0, err
		}
		for _, r := range b.Rows {
			n++
			buf = buf[:0]
			for _, v := range r.Values {
				var ok bool
				if buf, ok = batch.AppendValue(buf, v); !ok {
					return "", 0, fmt.Errorf("storage: checksum %s: unsupported value %T", t.Name, v)
				}
			}
			h.Write(buf)
		}
		if !more {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
		after = next
	}
}
