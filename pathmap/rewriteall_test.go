package pathmap_test

import (
	"regexp"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/pathmap"
)

// RewriteAll replaces every mapped reference in one pass: a replacement
// that is itself a mapped reference is not replaced again, and text that
// merely contains a reference stays.
func TestRewriteAll(t *testing.T) {
	is := is.New(t)
	refs := map[string]string{"a.png": "from-internet/a.png", "from-internet/a.png": "twice", "b.pdf": "x/b.pdf"}
	f := pathmap.Finder{Columns: []string{"body"}, Pattern: regexp.MustCompile(`[\w./-]+\.(?:png|pdf)`)}
	v, ok := f.RewriteAll("see a.png and b.pdf, not ba.png", refs)
	is.True(ok)
	is.Equal(v, "see from-internet/a.png and x/b.pdf, not ba.png")
	v, ok = f.RewriteAll([]byte("a.png"), refs)
	is.True(ok)
	is.Equal(v, []byte("from-internet/a.png")) // the type is kept
	_, ok = f.RewriteAll("nothing here", refs)
	is.True(!ok)
	eq := pathmap.Finder{Columns: []string{"path"}}
	v, ok = eq.RewriteAll(" a.png ", refs)
	is.True(ok)
	is.Equal(v, "from-internet/a.png")
	_, ok = eq.RewriteAll("a.png.bak", refs)
	is.True(!ok)
}
