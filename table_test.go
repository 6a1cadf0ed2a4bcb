package gapsync_test

import (
	"errors"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

func TestValidIdentifier(t *testing.T) {
	for _, ok := range []string{"a", "orders", "Order_Lines2", "_x", "t$1", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234"} {
		if err := gapsync.ValidIdentifier(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1abc", "a`b", `a"b`, "a'b", "a b", "a.b", "a;b", "表", "a-b", "a\x00b",
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij12345"} {
		if err := gapsync.ValidIdentifier(bad); !errors.Is(err, gapsync.ErrBadIdentifier) {
			t.Errorf("%q: got %v, want ErrBadIdentifier", bad, err)
		}
	}
}

func TestParseTable(t *testing.T) {
	is := is.New(t)
	tb, err := gapsync.ParseTable("lines:order_id+line_no:changed_at:both")
	is.NoErr(err)
	is.Equal(tb.Name, "lines")
	is.Equal(tb.Key, []string{"order_id", "line_no"})
	is.Equal(tb.Cursor, "changed_at")
	is.Equal(tb.Direction, gapsync.Both)
	is.True(tb.Enabled && tb.Allows(gapsync.Pull) && tb.Allows(gapsync.Push))
	tb, err = gapsync.ParseTable("orders:id:updated_at")
	is.NoErr(err)
	is.True(tb.Allows(gapsync.Push) && !tb.Allows(gapsync.Pull))
	tb, err = gapsync.ParseTable("docs:id:u:both:path+thumb")
	is.NoErr(err)
	is.Equal(tb.FileColumns, []string{"path", "thumb"})
	for _, bad := range []string{"orders", "orders:id", "o`x:id:u", "orders:id:u:sideways", "a:b:c:d:e`", "a:b:c:d:e:f"} {
		_, err := gapsync.ParseTable(bad)
		is.True(err != nil)
	}
}

func TestCodesRoundTrip(t *testing.T) {
	is := is.New(t)
	for _, e := range []error{gapsync.ErrUnknownTable, gapsync.ErrUnknownColumn, gapsync.ErrBadIdentifier, gapsync.ErrTooLarge,
		gapsync.ErrMalformed, gapsync.ErrBadEnvelope, gapsync.ErrTampered, gapsync.ErrUnknownKey, gapsync.ErrStale, gapsync.ErrReplayed, gapsync.ErrBusy, gapsync.ErrTooSlow} {
		is.Equal(gapsync.ErrorOf(gapsync.CodeOf(e)), e)
	}
	is.Equal(gapsync.CodeOf(errors.New("x")), gapsync.Code("internal"))
	is.Equal(gapsync.ErrorOf("nonsense"), gapsync.ErrRemote)
}

func TestCompareBounds(t *testing.T) {
	is := is.New(t)
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"9", "10", -1}, {"10", "9", 1}, {"10", "10", 0}, {"-5", "3", -1}, {"-5", "-12", 1}, {"007", "7", 0},
		{"18446744073709551615", "9223372036854775807", 1}, {"-9223372036854775808", "0", -1},
		{"2026-01-01 00:00:00.000000", "2026-01-02 00:00:00.000000", -1}, {"", "5", -1},
	} {
		is.Equal(gapsync.CompareBounds(c.a, c.b), c.want)
	}
	is.True(gapsync.IsIntegerBound("-12"))
	is.True(!gapsync.IsIntegerBound("2026-01-01"))
	is.True(!gapsync.IsIntegerBound("-"))
	is.True(!gapsync.IsIntegerBound(""))
	// Newest wins by number for integer cursors.
	c := gapsync.Conflict{Columns: []string{"id", "ver"}, Cursor: "ver",
		Internet: gapsync.Version{Values: []any{int64(1), int64(9)}}, Intranet: gapsync.Version{Values: []any{int64(1), int64(10)}}}
	is.Equal(gapsync.NewestWins{}.Resolve(c), gapsync.Intranet)
	c.Intranet.Values[1] = uint64(8)
	is.Equal(gapsync.NewestWins{}.Resolve(c), gapsync.Internet)
}
