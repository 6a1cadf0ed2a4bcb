package gapsync

import (
	"fmt"
	"path"
	"strings"
	"unicode"
)

// Table patterns. A sync_config row whose name holds * (any run of
// characters) or ? (one character), such as "app_*", stands for every
// table of that side's database whose name it matches, letter case
// aside, each with the row's settings. The side that holds the row
// expands it against its own tables: the internet side's rows list what
// the coordinator syncs (for pull too: the internet side must have the
// table to apply its rows), the intranet side's rows say what the
// gateway accepts and serves. A table with a row of its own (enabled or
// not) takes that row, not a pattern's; a table that several patterns
// match takes the one with the most characters that are not wildcards
// (then the first by name). Metadata tables (IsMetadataTable) never
// match. A matched table the far side lacks fails as a named table
// would: with the usual clear error, parked in that direction.

// IsPattern reports whether name is a table pattern (holds * or ?).
func IsPattern(name string) bool { return strings.ContainsAny(name, "*?") }

// ValidPattern checks a table pattern: 1 to 64 characters, each a
// letter (Chinese included), a digit, _, $, a space, * or ?. Anything
// else (quotes, dots, brackets, %) is refused with ErrBadIdentifier, so
// that no pattern can carry SQL.
func ValidPattern(p string) error {
	if len(p) == 0 || len(p) > 64 {
		return fmt.Errorf("%w: table pattern %q must be 1 to 64 bytes", ErrBadIdentifier, p)
	}
	if !IsPattern(p) {
		return fmt.Errorf("%w: table pattern %q has no * or ?", ErrBadIdentifier, p)
	}
	for _, r := range p {
		switch {
		case r == '*', r == '?', r == '_', r == '$', r == ' ':
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
		case unicode.Is(unicode.Han, r):
		default:
			return fmt.Errorf("%w: table pattern %q: %q is not allowed (letters, digits, _, $, space, Chinese, * and ? are)", ErrBadIdentifier, p, r)
		}
	}
	return nil
}

// MatchTable reports whether table name matches pattern p, letter case
// aside. A metadata table never matches, nor does anything when p is not
// a valid pattern.
func MatchTable(p, name string) bool {
	if ValidPattern(p) != nil || IsMetadataTable(name) {
		return false
	}
	ok, err := path.Match(strings.ToLower(p), strings.ToLower(name))
	return err == nil && ok
}

// IsMetadataTable reports whether name is one of gapsync's own tables,
// which no pattern matches: sync_* and gst_* (tombstones), and the file
// staging tables file_record, file_chunk and path_mapping.
func IsMetadataTable(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "sync_") || strings.HasPrefix(n, "gst_") ||
		n == "file_record" || n == "file_chunk" || n == "path_mapping"
}

// PatternWeight orders the patterns that match one table: the count of
// characters that are not wildcards; the highest wins.
func PatternWeight(p string) int {
	n := 0
	for _, r := range p {
		if r != '*' && r != '?' {
			n++
		}
	}
	return n
}
