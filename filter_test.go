package gapsync_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

func backquote(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// bare renders a filter with its column names unquoted, which is what the
// grammar reads back (stripping the backquotes from a backquoted rendering
// would also strip them from inside string literals).
func bare(s string) string { return s }

func TestParseFilterRenders(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]string{
		"status = 'open'":                        "`status` = 'open'",
		"status <> 'draft' AND qty >= 10":        "(`status` <> 'draft') AND (`qty` >= 10)",
		"a != 1 or not (b is null)":              "(`a` <> 1) OR (NOT (`b` IS NULL))",
		"region IN ('north', 'O''Brien')":        "`region` IN ('north','O''Brien')",
		"x NOT IN (1, -2.5, 3e4)":                "`x` NOT IN (1,-2.5,3e4)",
		"name LIKE '订单%'":                        "`name` LIKE '订单%'",
		"price BETWEEN 0.5 AND 10 AND ok = TRUE": "(`price` BETWEEN 0.5 AND 10) AND (`ok` = TRUE)",
		"deleted_at IS NOT NULL":                 "`deleted_at` IS NOT NULL",
		"((a = 1))":                              "`a` = 1",
	} {
		f, err := gapsync.ParseFilter(in)
		is.NoErr(err)
		is.Equal(f.SQL(backquote), want)
		// What it renders parses to the same thing again.
		g, err := gapsync.ParseFilter(f.SQL(bare))
		is.NoErr(err)
		is.Equal(g.SQL(backquote), want)
	}
	f, err := gapsync.ParseFilter("a = 1 OR b = a")
	is.NoErr(err)
	is.Equal(f.Columns(), []string{"a", "b"})
}

// Statement injection, and everything outside the grammar, is refused.
func TestParseFilterRefuses(t *testing.T) {
	for _, in := range []string{
		"", "status = 'open'; DROP TABLE orders", "1 = 1 -- ", "a = 1 /* x */", "a = 1 # x",
		`name = 'x\' OR 1=1 -- '`, "name = 'unclosed", "a = (SELECT 1)", "sleep(5) = 0", "a = b()",
		"`a` = 1", `"a" = 1`, "a = 1 OR", "a IN ()", "a IN (b)", "a LIKE b", "a LIKE 5", "a BETWEEN 1", "a IS 5",
		"a = 1 b = 2", "表 = 1", "a = 1e", "a = 1x", "a == 1", "a = 0x41", "a = 1 UNION SELECT * FROM users",
		strings.Repeat("(", 60) + "a = 1" + strings.Repeat(")", 60), strings.Repeat("a = 1 AND ", 500) + "a = 1",
		"a = '" + strings.Repeat("x", 5000) + "'", "a = 'x\x00'", "a = 'why?'",
	} {
		if _, err := gapsync.ParseFilter(in); !errors.Is(err, gapsync.ErrBadFilter) {
			t.Errorf("ParseFilter(%.60q) = %v, want ErrBadFilter", in, err)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"a = 1", "status IN ('a','b') AND NOT x IS NULL", "n LIKE 'x''%'", "p BETWEEN -1 AND 2.5e3", "a = 'x\\'", "0 LIKE'`'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := gapsync.ParseFilter(s)
		if err != nil {
			if !errors.Is(err, gapsync.ErrBadFilter) {
				t.Fatalf("error %v does not wrap ErrBadFilter", err)
			}
			return
		}
		out := flt.SQL(backquote)
		for _, bad := range []string{";", "--", "/*", "\\"} {
			if strings.Contains(strings.ReplaceAll(out, "''", ""), bad) && !inString(out, bad) {
				t.Fatalf("%q renders %q, with %q outside a string", s, out, bad)
			}
		}
		again, err := gapsync.ParseFilter(flt.SQL(bare))
		if err != nil {
			t.Fatalf("%q renders %q, which does not parse: %v", s, out, err)
		}
		if again.SQL(backquote) != out {
			t.Fatalf("%q renders %q, then %q", s, out, again.SQL(backquote))
		}
	})
}

// inString reports whether every occurrence of sub in sql lies inside a
// single-quoted string.
func inString(sql, sub string) bool {
	in := false
	for i := 0; i < len(sql); i++ {
		if sql[i] == '\'' {
			in = !in
			continue
		}
		if !in && strings.HasPrefix(sql[i:], sub) {
			return false
		}
	}
	return true
}
