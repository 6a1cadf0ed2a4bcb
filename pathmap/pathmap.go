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

	"github.com/gapsync/gapsync"
)

// Finder finds references in rows.
type Finder struct {
	Columns []string       // the file columns
	Pattern *regexp.Regexp // optional: references are the matches (submatch 1 if any) inside values
}

// Find returns the references in one row, in column order, each once.
// names are the row's column names; values are package batch values.
func (f Finder) Find(names []string, vals []any) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for i, n := range names {
		if !contains(f.Columns, n) {
			continue
		}
		s, ok := text(vals[i])
		if !ok {
			continue
		}
		if f.Pattern == nil {
			add(s)
			continue
		}
		for _, m := range f.Pattern.FindAllStringSubmatch(s, -1) {
			if len(m) > 1 {
				add(m[1])
			} else {
				add(m[0])
			}
		}
	}
	return out
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
	var ns string
	if f.Pattern == nil {
		to, ok := refs[strings.TrimSpace(s)]
		if !ok {
			return v, false
		}
		ns = to
	} else {
		// Replace only the references the pattern finds, not every
		// occurrence of the text ("a.png" inside "ba.png" stays).
		var b strings.Builder
		last := 0
		for _, m := range f.Pattern.FindAllStringSubmatchIndex(s, -1) {
			lo, hi := m[0], m[1]
			if len(m) > 3 && m[2] >= 0 {
				lo, hi = m[2], m[3]
			}
			to, ok := refs[s[lo:hi]]
			if !ok {
				continue
			}
			b.WriteString(s[last:lo])
			b.WriteString(to)
			last = hi
		}
		if last == 0 {
			return v, false
		}
		b.WriteString(s[last:])
		ns = b.String()
	}
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
	return dec, nil
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
