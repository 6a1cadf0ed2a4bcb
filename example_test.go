package gapsync_test

import (
	"errors"
	"fmt"

	"github.com/gapsync/gapsync"
)

// The short form of a sync_config entry, as the mains take it in -table.
func ExampleParseTable() {
	t, err := gapsync.ParseTable("order_lines:order_id+line_no:updated_at:both:attachment")
	if err != nil {
		panic(err)
	}
	fmt.Println(t.Name, t.Key, t.Cursor, t.Direction, t.FileColumns, t.Enabled)

	_, err = gapsync.ParseTable("orders;id")
	fmt.Println(err)
	// Output:
	// order_lines [order_id line_no] updated_at both [attachment] true
	// gapsync: table "orders;id": want NAME:KEY[+KEY…]:CURSOR[:DIRECTION[:FILECOL[+FILECOL…]]]
}

// A resolver of one's own: here the intranet keeps a row its clerks have
// marked final, and the newer version wins otherwise. Pass it as
// syncer.CoordinatorOptions.Resolver; its Label goes into sync_conflict.
func ExampleResolverFunc() {
	finalWins := gapsync.ResolverFunc{
		Label: "intranet-final-wins",
		Fn: func(c gapsync.Conflict) gapsync.Side {
			for i, col := range c.Columns {
				if col == "status" && !c.Intranet.Deleted && c.Intranet.Values[i] == "final" {
					return gapsync.Intranet
				}
			}
			return gapsync.NewestWins{}.Resolve(c)
		},
	}
	c := gapsync.Conflict{
		Table: "orders", Columns: []string{"id", "status", "updated_at"}, Key: []string{"id"}, Cursor: "updated_at",
		Internet: gapsync.Version{Values: []any{int64(7), "draft", "2026-03-01 10:00:02.000000"}},
		Intranet: gapsync.Version{Values: []any{int64(7), "final", "2026-03-01 10:00:01.000000"}},
	}
	fmt.Println(finalWins.Name(), "keeps the", finalWins.Resolve(c), "version")
	c.Intranet.Values[1] = "draft"
	fmt.Println(finalWins.Name(), "keeps the", finalWins.Resolve(c), "version")
	// Output:
	// intranet-final-wins keeps the intranet version
	// intranet-final-wins keeps the internet version
}

// Errors are sentinels checked with errors.Is, whatever wraps them.
func ExampleCleanKey() {
	for _, k := range []string{"2026/年报.pdf", "../etc/passwd", "/abs/path"} {
		err := gapsync.CleanKey(k)
		fmt.Println(k, errors.Is(err, gapsync.ErrBadPath))
	}
	// Output:
	// 2026/年报.pdf false
	// ../etc/passwd true
	// /abs/path true
}
