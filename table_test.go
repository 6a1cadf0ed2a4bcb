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
		gapsync.ErrMalformed, gapsync.ErrBadEnvelope, gapsync.ErrTampered, gapsync.ErrUnknownKey, gapsync.ErrStale, gapsync.ErrReplayed} {
		is.Equal(gapsync.ErrorOf(gapsync.CodeOf(e)), e)
	}
	is.Equal(gapsync.CodeOf(errors.New("x")), gapsync.Code("internal"))
	is.Equal(gapsync.ErrorOf("nonsense"), gapsync.ErrRemote)
}
