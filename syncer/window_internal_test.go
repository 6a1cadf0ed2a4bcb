package syncer

import (
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// Windows compare bounds by kind: integers as numbers; a last bound of the
// other kind (an integer cursor windowed as time by an older release, or a
// cursor column that changed type) starts again from the first load.
func TestWindowByKind(t *testing.T) {
	is := is.New(t)
	is.Equal(window("9", "10"), gapsync.Window{From: "9", To: "10"})
	is.Equal(window("10", "9"), gapsync.Window{From: "10", To: "10"}) // held back: empty
	is.Equal(window("2026-12-01 10:00:00.000000", "2026-12-01 09:00:00.000000"),
		gapsync.Window{From: "2026-12-01 10:00:00.000000", To: "2026-12-01 10:00:00.000000"})
	is.Equal(window("2026-12-01 10:00:00.000000", "42"), gapsync.Window{To: "42"})
	is.Equal(window("42", "2026-12-01 10:00:00.000000"), gapsync.Window{To: "2026-12-01 10:00:00.000000"})
	is.Equal(window("", "42"), gapsync.Window{To: "42"})
}
