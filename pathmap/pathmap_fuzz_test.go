package pathmap_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/pathmap"
)

// FuzzNormalize: whatever a row holds, Normalize never panics, refuses
// with one of its two sentinels, and what it accepts is either an http(s)
// URL without credentials or a clean relative key (no "..", no leading
// slash, no backslash or NUL) that stays clean.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"a.png", "/uploads/a.png", "uploads/子/图 片.png", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd",
		"%2e%2e/x", "http://example.com/a.png", "HTTPS://user:pw@example.com/a", "file:///etc/passwd",
		"ftp://x/y", " a.png ", "a\\b", "a\x00b", "%zz", "%252e%252e/x", "https://[::1]/a#frag",
	} {
		f.Add(s, "")
		f.Add(s, "/uploads/")
	}
	f.Fuzz(func(t *testing.T, ref, strip string) {
		key, err := pathmap.Normalize(ref, strip)
		if err != nil {
			if !errors.Is(err, gapsync.ErrBadPath) && !errors.Is(err, gapsync.ErrForbiddenURL) {
				t.Fatalf("Normalize(%q, %q): error wraps no sentinel: %v", ref, strip, err)
			}
			return
		}
		if strings.HasPrefix(key, "http://") || strings.HasPrefix(key, "https://") {
			if u, err := url.Parse(key); err != nil || u.User != nil || u.Host == "" {
				t.Fatalf("Normalize(%q) = %q: not a URL without credentials (%v)", ref, key, err)
			}
			return
		}
		if err := gapsync.CleanKey(key); err != nil {
			t.Fatalf("Normalize(%q, %q) = %q, which is not a clean key: %v", ref, strip, key, err)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("Normalize(%q, %q) = %q has segment %q", ref, strip, key, seg)
			}
		}
		if strings.ContainsAny(key, "\\\x00") || strings.HasPrefix(key, "/") {
			t.Fatalf("Normalize(%q, %q) = %q", ref, strip, key)
		}
	})
}
