// Package pathmap finds file references inside rows and normalises them
// into store keys, so that the file flow can move the files they name and
// rewrite the references to the far side's address.
//
// # References
//
// A table's file columns (sync_config file_columns) hold references: by
// default each non-empty value is one reference; with a Pattern, every
// match inside the value is one (for HTML or JSON text that embeds paths).
//
// # Normal form
//
// Normalize turns a reference into the key of a store: an http or https
// URL stays a URL (for the read-only HTTP store, which checks its own
// allowlist); anything else is percent-decoded once, a configured prefix
// (such as "/uploads/") is stripped, and the result must be a clean
// relative key (gapsync.CleanKey). So "../../etc/passwd", "/etc/passwd"
// and their encoded forms ("..%2F..%2Fetc%2Fpasswd") are refused with
// gapsync.ErrBadPath before any store is asked for them.
package pathmap

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"

	"github.com/gapsync/gapsync"
)

// Finder finds references in rows.
type Finder struct {
	Columns []string       // the file columns
	Pattern *regexp.Regexp // optional: references are the matches (submatch 1 if any) inside values
}

// Find returns the references in one row, in column order, each once.
// names are the row's column names; values are package batch values.
// A reference is a whole value (or a match, or its submatch 1) with the
// white space around it trimmed; RewriteAll replaces exactly those.
func (f Finder) Find(names []string, vals []any) []string {
	var out []string
	seen := map[string]bool{}
	for i, n := range names {
		if i >= len(vals) || !contains(f.Columns, n) {
			continue
		}
		s, ok := text(vals[i])
		if !ok {
			continue
		}
		for _, sp := range f.spans(s) {
			if r := s[sp[0]:sp[1]]; !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// spans returns where the references in s are, as [lo, hi) byte offsets,
// in order and without overlap: the whole value without a Pattern, else
// each match (submatch 1 when the pattern has a group; a match whose group
// did not take part holds none), trimmed of white space and never empty.
// Find and RewriteAll both use it, so that what one finds the other
// replaces.
func (f Finder) spans(s string) [][2]int {
	if f.Pattern == nil {
		if lo, hi := trimSpan(s, 0, len(s)); lo < hi {
			return [][2]int{{lo, hi}}
		}
		return nil
	}
	var out [][2]int
	for _, m := range f.Pattern.FindAllStringSubmatchIndex(s, -1) {
		lo, hi := m[0], m[1]
		if len(m) > 3 {
			if m[2] < 0 {
				continue
			}
			lo, hi = m[2], m[3]
		}
		if lo, hi = trimSpan(s, lo, hi); lo < hi {
			out = append(out, [2]int{lo, hi})
		}
	}
	return out
}

// trimSpan narrows s[lo:hi] to what strings.TrimSpace would keep.
func trimSpan(s string, lo, hi int) (int, int) {
	t := strings.TrimLeftFunc(s[lo:hi], unicode.IsSpace)
	lo += (hi - lo) - len(t)
	t = strings.TrimRightFunc(t, unicode.IsSpace)
	return lo, lo + len(t)
}

// Rewrite replaces the reference from with to in one value: the whole
// value without a Pattern, every occurrence with one. It reports whether
// the value changed; the new value keeps the old one's Go type.
func (f Finder) Rewrite(v any, from, to string) (any, bool) {
	return f.RewriteAll(v, map[string]string{from: to})
}

// RewriteAll is Rewrite for many references at once (from → to), in one
// pass over the value: a reference that a replacement produces is not
// replaced again.
func (f Finder) RewriteAll(v any, refs map[string]string) (any, bool) {
	s, ok := text(v)
	if !ok {
		return v, false
	}
	// Replace only the references Find sees, not every occurrence of the
	// text ("a.png" inside "ba.png" stays). Without a Pattern the whole
	// value becomes the new reference.
	var b strings.Builder
	last, changed := 0, false
	for _, sp := range f.spans(s) {
		to, ok := refs[s[sp[0]:sp[1]]]
		if !ok {
			continue
		}
		if f.Pattern == nil {
			sp = [2]int{0, len(s)}
		}
		b.WriteString(s[last:sp[0]])
		b.WriteString(to)
		last, changed = sp[1], true
	}
	if !changed {
		return v, false
	}
	b.WriteString(s[last:])
	ns := b.String()
	if _, isBytes := v.([]byte); isBytes {
		return []byte(ns), true
	}
	return ns, true
}

// Normalize turns a reference into a store key (or an http/https URL).
// stripPrefix, when set, is removed from the start of a path reference.
func Normalize(ref, stripPrefix string) (string, error) {
	ref = strings.TrimSpace(ref)
	lower := strings.ToLower(ref)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		u, err := url.Parse(ref)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("%w: %q is not a URL", gapsync.ErrForbiddenURL, ref)
		}
		if u.User != nil {
			return "", fmt.Errorf("%w: %q carries credentials", gapsync.ErrForbiddenURL, ref)
		}
		u.Scheme = strings.ToLower(u.Scheme)
		u.Fragment = ""
		return u.String(), nil
	}
	if i := strings.Index(ref, "://"); i >= 0 || strings.HasPrefix(lower, "file:") {
		return "", fmt.Errorf("%w: %q: only http and https URLs are fetched", gapsync.ErrForbiddenURL, ref)
	}
	dec, err := url.PathUnescape(ref)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", gapsync.ErrBadPath, ref, err)
	}
	if stripPrefix != "" {
		dec = strings.TrimPrefix(dec, stripPrefix)
	}
	if err := gapsync.CleanKey(dec); err != nil {
		return "", err
	}
	if first, _, _ := strings.Cut(dec, "/"); strings.HasSuffix(first, ":") {
		// "C:/…" is a drive, "https:/…" a URL's published key
		// (gapsync.URLKey): neither is a key a path may take.
		return "", fmt.Errorf("%w: %q starts with a scheme or drive", gapsync.ErrBadPath, ref)
	}
	return dec, nil
}

// PublishKey is the relative key under which the far side publishes the
// file ref names (before its key prefix): for a path, its normal form
// (Normalize); for an http or https URL, gapsync.URLKey, which keeps
// scheme, host, port, path and query apart. Distinct files never share a
// key, and spellings of one file always do.
func PublishKey(ref, stripPrefix string) (string, error) {
	key, err := Normalize(ref, stripPrefix)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(key, "http://") || strings.HasPrefix(key, "https://") {
		return gapsync.URLKey(key)
	}
	return key, nil
}

func text(v any) (string, bool) {
	switch x := v.(type) {
	case []byte:
		return string(x), true
	case string:
		return x, true
	}
	return "", false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TableFinder is the finder of t's file columns (and file pattern), and
// false when t has none.
func TableFinder(t gapsync.Table) (Finder, bool) {
	if len(t.FileColumns) == 0 {
		return Finder{}, false
	}
	f := Finder{Columns: t.FileColumns}
	if t.FilePattern != "" {
		f.Pattern = regexp.MustCompile(t.FilePattern) // validated by Table.Validate
	}
	return f, true
}
