package pathmap_test

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/pathmap"
)

// patterns are the shapes of file_pattern operators write: a group inside
// an attribute, a bare path, a group that may not take part, none at all.
var patterns = []*regexp.Regexp{
	nil,
	regexp.MustCompile(`src="([^"]*)"`),
	regexp.MustCompile(`[\w./ -]+\.(?:png|pdf)`),
	regexp.MustCompile(`(?:href='([^']*)'|\[\[[^\]]*\]\])`),
	regexp.MustCompile(`\s*\S+\.txt\s*`),
}

// TestFindAgreesWithRewriteAll: the reported case, a reference with white
// space inside the attribute, is found and rewritten.
func TestFindAgreesWithRewriteAll(t *testing.T) {
	is := is.New(t)
	f := pathmap.Finder{Columns: []string{"body"}, Pattern: patterns[1]}
	v := `<img src=" a.png">`
	is.Equal(f.Find([]string{"body"}, []any{v}), []string{"a.png"})
	out, ok := f.RewriteAll(v, map[string]string{"a.png": "from-internet/a.png"})
	is.True(ok)
	is.Equal(out, `<img src=" from-internet/a.png">`)
	out, ok = f.RewriteAll([]byte("<img src=\"\ta.png \">"), map[string]string{"a.png": "b"})
	is.True(ok)
	is.Equal(out, []byte("<img src=\"\tb \">"))
}

// checkFindRewrite is the property: every reference Find returns for a
// value is replaced by RewriteAll, each where Find saw it, and text that
// holds no reference comes back unchanged.
func checkFindRewrite(t *testing.T, f pathmap.Finder, s string) {
	t.Helper()
	refs := f.Find([]string{"c"}, []any{s})
	for i, r := range refs {
		marker := "\x00" + strings.Repeat("#", i+1) + "\x00"
		out, ok := f.RewriteAll(s, map[string]string{r: marker})
		if !ok || !strings.Contains(out.(string), marker) {
			t.Fatalf("pattern %v: %q finds %q, which RewriteAll leaves (%q, %v)", f.Pattern, s, r, out, ok)
		}
		bout, ok := f.RewriteAll([]byte(s), map[string]string{r: marker})
		if !ok || string(bout.([]byte)) != out.(string) {
			t.Fatalf("pattern %v: %q: bytes and string rewrite differ", f.Pattern, s)
		}
	}
	if len(refs) == 0 {
		if out, ok := f.RewriteAll(s, map[string]string{s: "x", strings.TrimSpace(s): "x"}); ok && f.Pattern != nil {
			t.Fatalf("pattern %v: %q has no reference but was rewritten to %q", f.Pattern, s, out)
		}
	}
}

// TestFindRewriteProperty runs the property over generated values built
// from the pieces that matter: quotes, white space of several kinds,
// extensions, brackets, multi-byte text.
func TestFindRewriteProperty(t *testing.T) {
	pieces := []string{`src="`, `"`, `'`, `href='`, " ", "\t", "\u00a0", "\u3000", "\n", "a.png", "b.pdf",
		"c.txt", "[[", "]]", "/", "..", "文件", "😀", "x", "=", "<img ", ">"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range patterns {
		f := pathmap.Finder{Columns: []string{"c"}, Pattern: p}
		for range 3000 {
			var b strings.Builder
			for range rng.IntN(12) {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			checkFindRewrite(t, f, b.String())
		}
	}
}

// FuzzFindRewrite is the same property over arbitrary text:
// go test -run '^$' -fuzz FuzzFindRewrite ./pathmap/
func FuzzFindRewrite(f *testing.F) {
	for _, s := range []string{`<img src=" a.png">`, " a.png ", `src="" src=" "`, "x.txt\u3000y.txt", `href=' b.pdf '`} {
		for i := range patterns {
			f.Add(s, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, s string, pi uint8) {
		checkFindRewrite(t, pathmap.Finder{Columns: []string{"c"}, Pattern: patterns[int(pi)%len(patterns)]}, s)
	})
}
