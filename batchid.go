package gapsync

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BatchIDMarker starts every batch id that carries the time its batch was
// made: "gs1." followed by 16 lowercase hex digits of Unix nanoseconds and
// a ".". The ids the coordinator makes all have this form.
//
// The time lets the writing side forget applied batch ids safely: a batch
// made before its replay watermark (see the storage package) is refused
// as stale, so its id can leave the applied-batch ledger without the batch
// ever being applied twice. A batch id without the marker is never
// refused for its age, and its ledger entry is kept forever.
const BatchIDMarker = "gs1."

const batchTimeDigits = 16

// NewBatchPrefix returns the prefix for the ids of one run's batches:
// the marker, the time t and 8 random bytes. Append "-" and a page number
// to name a batch; the result stays well under the 64-byte id limit.
func NewBatchPrefix(t time.Time) string {
	var r [8]byte
	rand.Read(r[:])
	ns := uint64(t.UnixNano())
	if t.Before(time.Unix(0, 0)) {
		ns = 0
	}
	return BatchIDMarker + fmt.Sprintf("%0*x", batchTimeDigits, ns) + "." + hex.EncodeToString(r[:])
}

// BatchIDTimeKey returns the smallest id of the marked form made at t:
// every marked id that sorts below it (bytewise, as SQL compares ASCII
// text) was made before t.
func BatchIDTimeKey(t time.Time) string {
	ns := uint64(0)
	if t.After(time.Unix(0, 0)) {
		ns = uint64(t.UnixNano())
	}
	return BatchIDMarker + fmt.Sprintf("%0*x", batchTimeDigits, ns)
}

// BatchTime returns the time a batch id carries. ok is false for an id
// without the marker. An id that starts with the marker (in any letter
// case) but does not continue with 16 lowercase hex digits and a "." is
// an error wrapping ErrMalformed: it would sort among the marked ids.
func BatchTime(id string) (t time.Time, ok bool, err error) {
	if len(id) < len(BatchIDMarker) || !strings.EqualFold(id[:len(BatchIDMarker)], BatchIDMarker) {
		return time.Time{}, false, nil
	}
	rest := id[len(BatchIDMarker):]
	bad := fmt.Errorf("%w: batch id %q starts with %q but does not carry a time (want %s<16 lowercase hex digits>.…)",
		ErrMalformed, id, BatchIDMarker, BatchIDMarker)
	if !strings.HasPrefix(id, BatchIDMarker) || len(rest) <= batchTimeDigits || rest[batchTimeDigits] != '.' {
		return time.Time{}, false, bad
	}
	for _, c := range rest[:batchTimeDigits] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return time.Time{}, false, bad
		}
	}
	ns, err := strconv.ParseUint(rest[:batchTimeDigits], 16, 64)
	if err != nil || ns > 1<<63-1 {
		return time.Time{}, false, bad
	}
	return time.Unix(0, int64(ns)).UTC(), true, nil
}
