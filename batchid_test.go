package gapsync_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// TestBatchIDTime: a prefix made at t carries t, sorts by t as text, and
// a marked id that does not carry a time is malformed.
func TestBatchIDTime(t *testing.T) {
	is := is.New(t)
	base := time.Now()
	prev := ""
	for i := range 50 {
		at := base.Add(time.Duration(i*i) * time.Millisecond)
		id := gapsync.NewBatchPrefix(at) + "-12345678901234567890-f"
		is.True(len(id) <= 64)
		got, ok, err := gapsync.BatchTime(id)
		is.NoErr(err)
		is.True(ok)
		is.True(got.Equal(at.Round(0)))
		key := gapsync.BatchIDTimeKey(at.Add(time.Nanosecond))
		is.True(id < key)                                     // made before the key's time
		is.True(id >= gapsync.BatchIDTimeKey(at))             // not before its own
		is.True(strings.HasPrefix(id, gapsync.BatchIDMarker)) // the purge range's lower bound
		is.True(prev < id)
		prev = id
	}
	for _, id := range []string{"b1", "3fa9c0de", "gs1", "gs"} {
		_, ok, err := gapsync.BatchTime(id)
		is.NoErr(err)
		is.True(!ok)
	}
	for _, id := range []string{"gs1.", "gs1.00ab", "GS1.0000000000000000.x", "gs1.000000000000000A.x", "gs1.0000000000000000x", "gs1.ffffffffffffffff.x"} {
		_, _, err := gapsync.BatchTime(id)
		is.True(errors.Is(err, gapsync.ErrMalformed))
	}
}
