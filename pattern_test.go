package gapsync_test

import (
	"errors"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

func TestTablePatterns(t *testing.T) {
	is := is.New(t)
	for _, p := range []string{"app_*", "*", "订单_*", "a b?", "x$*_2", "??"} {
		is.NoErr(gapsync.ValidPattern(p))
	}
	for _, p := range []string{"app_%", "a';DROP TABLE x;--*", "x.y*", "*`", "a\"*", "[ab]*", `a\*`, "app", "", "*" + string(make([]byte, 64))} {
		err := gapsync.ValidPattern(p)
		is.True(errors.Is(err, gapsync.ErrBadIdentifier)) // refused, clearly
	}
	is.True(gapsync.MatchTable("app_*", "app_orders"))
	is.True(gapsync.MatchTable("app_*", "APP_Lines")) // letter case aside
	is.True(gapsync.MatchTable("app_?", "app_1"))
	is.True(!gapsync.MatchTable("app_?", "app_12"))
	is.True(!gapsync.MatchTable("app_*", "myapp_orders"))
	is.True(gapsync.MatchTable("订单_*", "订单_2026"))
	// gapsync's own tables never match, whatever the pattern.
	for _, n := range []string{"sync_log", "SYNC_config", "gst_app_orders", "file_chunk", "file_record", "path_mapping"} {
		is.True(!gapsync.MatchTable("*", n))
	}
	is.True(!gapsync.MatchTable("sync_*", "sync_log"))
	is.True(!gapsync.MatchTable("app_%", "app_%")) // not a pattern: no match
	is.True(gapsync.PatternWeight("app_x*") > gapsync.PatternWeight("app_*"))

	// A pattern is a table name in sync_config and in -table flags.
	tb, err := gapsync.ParseTable("app_*:id:updated_at:both")
	is.NoErr(err)
	is.Equal(tb.Name, "app_*")
	_, err = gapsync.ParseTable("app_;*:id:updated_at")
	is.True(errors.Is(err, gapsync.ErrBadIdentifier))
	tb.RemoteName = "ext"
	is.True(tb.Validate() != nil) // a pattern cannot rename
}
