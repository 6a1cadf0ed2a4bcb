package pathmap_test

import (
	"errors"
	"regexp"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/pathmap"
)

func TestNormalizeRefusesTraversal(t *testing.T) {
	for _, bad := range []string{"../../etc/passwd", "/etc/passwd", "a/../../b", "..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd",
		"a%00b", "a\\..\\b", "uploads/..%2f..%2fx", "", "  ", "./a", "a//b"} {
		if _, err := pathmap.Normalize(bad, ""); !errors.Is(err, gapsync.ErrBadPath) {
			t.Errorf("%q: got %v, want ErrBadPath", bad, err)
		}
	}
	// A stripped prefix does not open a way out either.
	if _, err := pathmap.Normalize("/uploads/../../etc/passwd", "/uploads/"); !errors.Is(err, gapsync.ErrBadPath) {
		t.Errorf("prefix then traversal: %v", err)
	}
	for _, bad := range []string{"file:///etc/passwd", "ftp://x/y", "gopher://x", "http://user:pw@host/x"} {
		if _, err := pathmap.Normalize(bad, ""); !errors.Is(err, gapsync.ErrForbiddenURL) {
			t.Errorf("%q: got %v, want ErrForbiddenURL", bad, err)
		}
	}
}

func TestNormalizeAccepts(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]string{
		"docs/年报 2026.pdf":                     "docs/年报 2026.pdf",
		"docs/%E5%B9%B4%E6%8A%A5%202026.pdf":   "docs/年报 2026.pdf",
		" photos/😀.png ":                       "photos/😀.png",
		"HTTPS://files.example/a%20b.png#frag": "https://files.example/a%20b.png",
	} {
		got, err := pathmap.Normalize(in, "")
		is.NoErr(err)
		is.Equal(got, want)
	}
	got, err := pathmap.Normalize("/uploads/2026/a.png", "/uploads/")
	is.NoErr(err)
	is.Equal(got, "2026/a.png")
}

func TestFindAndRewrite(t *testing.T) {
	is := is.New(t)
	f := pathmap.Finder{Columns: []string{"photo", "doc"}}
	names := []string{"id", "photo", "doc", "note"}
	refs := f.Find(names, []any{int64(1), []byte("a.png"), "a.png", []byte("b.png")})
	is.Equal(refs, []string{"a.png"}) // once, and only from file columns
	v, changed := f.Rewrite([]byte("a.png"), "a.png", "from-internet/a.png")
	is.True(changed)
	is.Equal(v, []byte("from-internet/a.png"))
	_, changed = f.Rewrite([]byte("a.png.bak"), "a.png", "x")
	is.True(!changed)

	p := pathmap.Finder{Columns: []string{"html"}, Pattern: regexp.MustCompile(`src="/files/([^"]+)"`)}
	html := `<img src="/files/a.png"><img src="/files/b%20c.png"><img src="/files/a.png"> ba.png`
	is.Equal(p.Find([]string{"html"}, []any{html}), []string{"a.png", "b%20c.png"})
	v, changed = p.Rewrite(html, "a.png", "x/a.png")
	is.True(changed)
	is.Equal(v, `<img src="/files/x/a.png"><img src="/files/b%20c.png"><img src="/files/x/a.png"> ba.png`)
}
