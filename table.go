package gapsync

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Direction names which way rows travel.
type Direction string

const (
	// Push is internet → intranet (seed flow 1.1).
	Push Direction = "push"
	// Pull is intranet → internet (seed flow 1.2).
	Pull Direction = "pull"
	// Both enables a table in both directions (sync_config only).
	Both Direction = "both"
)

// Valid reports whether d is one of Push, Pull or Both.
func (d Direction) Valid() bool { return d == Push || d == Pull || d == Both }

// Table is one row of sync_config: a table that may be synced, and how.
// Only tables named in sync_config are ever read or written, on either side.
type Table struct {
	Name      string    // table name, validated by ValidIdentifier
	Direction Direction // Push, Pull or Both
	Key       []string  // primary-key columns, in order
	// Cursor names the column that orders changes; rows whose cursor lies
	// in the window are synced. Its kind follows from its type: a
	// DATETIME/TIMESTAMP that every change sets to its time (with or
	// without ON UPDATE), or an integer that every change raises above
	// every value the column ever held (a version from a sequence or a
	// counter that never goes back, or the AUTO_INCREMENT id of an
	// append-only table). Other types are refused (ErrUnsupportedCursor).
	Cursor string
	// SoftDelete, when set, names a column whose non-NULL, non-zero,
	// non-empty value marks a row deleted.
	SoftDelete string
	// SoftDeleteAs says how a soft-deleted row travels: "update" (the
	// default: the row travels as it is, the flag is data) or "delete"
	// (the far side deletes the row).
	SoftDeleteAs string
	// FileColumns name columns that hold file references (the file flow
	// moves the files and rewrites the references).
	FileColumns []string
	// FilePattern, when set, is a regular expression whose matches (or
	// first submatch) inside file-column values are the references, for
	// text that embeds paths; without it a whole value is one reference.
	FilePattern string
	// Columns, when set, are the only columns this side sends of the
	// table; the key, the cursor, the soft-delete column and the file
	// columns are always sent as well. Exclude names columns this side
	// never sends (none of those four kinds may be excluded). They are
	// not both set. A column not sent keeps, on the far side, whatever
	// that side writes in it.
	Columns []string
	Exclude []string
	// Filter, when set, is a row filter in the grammar of ParseFilter:
	// only rows of this side that match it are sent. FilterAs says what
	// happens to a row that is changed so that it no longer matches: ""
	// (the default) sends nothing, the far side keeps its last version;
	// "delete" sends it as a deletion.
	Filter   string
	FilterAs string
	// RemoteName and RemoteColumns, set in the internet side's
	// sync_config, say that the table and some of its columns have other
	// names on the intranet side (orders here, ext_orders there): the
	// coordinator speaks the intranet's names to the gateway and its own
	// to this database. RemoteColumns maps a column's name here to its
	// name there; a column it does not name has the same name on both
	// sides. The intranet side configures the table under its own names
	// and knows nothing of the mapping.
	RemoteName    string
	RemoteColumns map[string]string
	Enabled       bool
}

// Wire is t's name on the intranet side.
func (t Table) Wire() string {
	if t.RemoteName != "" {
		return t.RemoteName
	}
	return t.Name
}

// WireColumn is the intranet side's name of column col of t.
func (t Table) WireColumn(col string) string {
	for here, there := range t.RemoteColumns {
		if strings.EqualFold(here, col) {
			return there
		}
	}
	return col
}

// LocalColumn is this side's name of the intranet side's column col.
func (t Table) LocalColumn(col string) string {
	for here, there := range t.RemoteColumns {
		if strings.EqualFold(there, col) {
			return here
		}
	}
	return col
}

// Renamed reports whether t has other names on the intranet side.
func (t Table) Renamed() bool { return t.RemoteName != "" || len(t.RemoteColumns) > 0 }

// Sends reports whether this side sends column col of t (see Columns
// and Exclude; names compare without regard to letter case).
func (t Table) Sends(col string) bool {
	fold := func(list []string) bool {
		for _, c := range list {
			if strings.EqualFold(c, col) {
				return true
			}
		}
		return false
	}
	if fold(t.Key) || strings.EqualFold(col, t.Cursor) || (t.SoftDelete != "" && strings.EqualFold(col, t.SoftDelete)) || fold(t.FileColumns) {
		return true
	}
	if len(t.Columns) > 0 {
		return fold(t.Columns)
	}
	return !fold(t.Exclude)
}

// Allows reports whether t is enabled for direction d.
func (t Table) Allows(d Direction) bool {
	return t.Enabled && (t.Direction == d || t.Direction == Both)
}

// Validate checks every identifier in t and the direction.
func (t Table) Validate() error {
	if IsPattern(t.Name) {
		if err := ValidPattern(t.Name); err != nil {
			return err
		}
		if t.RemoteName != "" {
			return fmt.Errorf("gapsync: table pattern %s: a pattern cannot set a remote name; configure the renamed table by its name", t.Name)
		}
	} else if err := ValidIdentifier(t.Name); err != nil {
		return err
	}
	if !t.Direction.Valid() {
		return fmt.Errorf("gapsync: table %s: direction %q is not push, pull or both", t.Name, t.Direction)
	}
	if t.SoftDeleteAs != "" && t.SoftDeleteAs != "update" && t.SoftDeleteAs != "delete" {
		return fmt.Errorf("gapsync: table %s: soft-delete mode %q is not update or delete", t.Name, t.SoftDeleteAs)
	}
	if t.SoftDeleteAs == "delete" && t.SoftDelete == "" {
		return fmt.Errorf("gapsync: table %s: soft-delete mode delete needs a soft-delete column", t.Name)
	}
	if t.FilePattern != "" {
		if _, err := regexp.Compile(t.FilePattern); err != nil {
			return fmt.Errorf("gapsync: table %s: file pattern: %w", t.Name, err)
		}
	}
	if len(t.Key) == 0 {
		return fmt.Errorf("gapsync: table %s: no primary-key columns configured", t.Name)
	}
	cols := append(append([]string{}, t.Key...), t.Cursor)
	if t.SoftDelete != "" {
		cols = append(cols, t.SoftDelete)
	}
	cols = append(cols, t.FileColumns...)
	for _, c := range cols {
		if err := ValidIdentifier(c); err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
	}
	if len(t.Columns) > 0 && len(t.Exclude) > 0 {
		return fmt.Errorf("gapsync: table %s: set the columns to send or the columns to exclude, not both", t.Name)
	}
	for _, c := range append(append([]string{}, t.Columns...), t.Exclude...) {
		if err := ValidIdentifier(c); err != nil {
			return fmt.Errorf("table %s: column list: %w", t.Name, err)
		}
	}
	for _, c := range t.Exclude {
		for _, need := range cols {
			if strings.EqualFold(c, need) {
				return fmt.Errorf("gapsync: table %s: column %s cannot be excluded: it is the key, the cursor, the soft-delete or a file column", t.Name, c)
			}
		}
	}
	if t.Filter != "" {
		if _, err := ParseFilter(t.Filter); err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
	}
	if t.FilterAs != "" && t.FilterAs != "delete" {
		return fmt.Errorf("gapsync: table %s: filter mode %q is not delete (or empty)", t.Name, t.FilterAs)
	}
	if t.FilterAs == "delete" && t.Filter == "" {
		return fmt.Errorf("gapsync: table %s: filter mode delete needs a row filter", t.Name)
	}
	if t.RemoteName != "" {
		if err := ValidIdentifier(t.RemoteName); err != nil {
			return fmt.Errorf("table %s: remote name: %w", t.Name, err)
		}
	}
	there := map[string]string{}
	for here, name := range t.RemoteColumns {
		for _, c := range []string{here, name} {
			if err := ValidIdentifier(c); err != nil {
				return fmt.Errorf("table %s: remote column: %w", t.Name, err)
			}
		}
		if prev, dup := there[strings.ToLower(name)]; dup {
			return fmt.Errorf("gapsync: table %s: columns %s and %s both map to %s on the intranet side", t.Name, prev, here, name)
		}
		there[strings.ToLower(name)] = here
	}
	return nil
}

// ParseColumnMap parses "here:there,here2:there2" (RemoteColumns).
func ParseColumnMap(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range SplitList(s) {
		here, there, ok := strings.Cut(p, ":")
		here, there = strings.TrimSpace(here), strings.TrimSpace(there)
		if !ok || here == "" || there == "" {
			return nil, fmt.Errorf("gapsync: column map %q: want HERE:THERE[,HERE:THERE…]", s)
		}
		if _, dup := out[here]; dup {
			return nil, fmt.Errorf("gapsync: column map %q names %s twice", s, here)
		}
		out[here] = there
	}
	return out, nil
}

// FormatColumnMap writes m in the form ParseColumnMap reads, sorted.
func FormatColumnMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + ":" + m[k]
	}
	return strings.Join(keys, ",")
}

// ValidIdentifier accepts 1 to 64 characters of ASCII letters, digits, _ and
// $, not starting with a digit. Anything else (quotes, backticks, spaces,
// dots, non-ASCII) is refused with ErrBadIdentifier: identifiers are quoted
// as well, but refusing odd names keeps vendor isolation gateways, which
// often filter statements, out of trouble.
func ValidIdentifier(s string) error {
	if len(s) == 0 || len(s) > 64 {
		return fmt.Errorf("%w: %q must be 1 to 64 characters", ErrBadIdentifier, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '$':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return fmt.Errorf("%w: %q", ErrBadIdentifier, s)
		}
	}
	return nil
}

// SplitList splits a comma-separated list of names, trimming spaces and
// dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Window is the half-open range [From, To) of cursor values synced in one
// run, as text: for a time cursor in the database's own format
// ("2006-01-02 15:04:05.999999"), for an integer cursor the decimal number
// ("1042"). Compare bounds with CompareBounds, not as strings. From is
// empty for a table's first run: the initial load has no lower bound and
// also takes rows whose cursor is NULL.
//
// A table with an integer cursor and a tombstone table has two windows in
// one: live rows by the integer cursor, deletions by the time the trigger
// stamped them with the database clock. Its bounds carry both parts,
// joined by "@" ("1042@2026-12-01 22:15:00.000000"; see JoinBound and
// SplitBound), and each part advances on its own. Every other bound has
// one part and no "@".
type Window struct {
	From string
	To   string
}

// boundSep joins the cursor part and the deletions part of a bound.
const boundSep = "@"

// JoinBound makes a bound of a cursor part and a deletions part; with no
// deletions part it is the cursor part alone.
func JoinBound(cursor, deletions string) string {
	if deletions == "" {
		return cursor
	}
	return cursor + boundSep + deletions
}

// SplitBound returns a bound's cursor part and its deletions part ("" when
// it has none).
func SplitBound(s string) (cursor, deletions string) {
	c, d, _ := strings.Cut(s, boundSep)
	return c, d
}

// Rows returns the window of the live rows: the cursor parts of w.
func (w Window) Rows() Window {
	f, _ := SplitBound(w.From)
	t, _ := SplitBound(w.To)
	return Window{From: f, To: t}
}

// Deletions returns the window of the deletions: the deletions parts of
// w. Its To is "" when w has none (no tombstones are read); its From is
// "" when only w.To has one (every tombstone before To is read).
func (w Window) Deletions() Window {
	_, f := SplitBound(w.From)
	_, t := SplitBound(w.To)
	if t == "" {
		f = ""
	}
	return Window{From: f, To: t}
}

// Ordered reports whether each part of From is at or before the same
// part of To (an empty From, or part of it, always is).
func (w Window) Ordered() bool {
	fc, fd := SplitBound(w.From)
	tc, td := SplitBound(w.To)
	if fc != "" && CompareBounds(fc, tc) > 0 {
		return false
	}
	return fd == "" || td == "" || CompareBounds(fd, td) <= 0
}

// IsIntegerBound reports whether s is an integer cursor's bound or value:
// an optional minus sign and decimal digits.
func IsIntegerBound(s string) bool {
	d := strings.TrimPrefix(s, "-")
	if d == "" {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// CompareBounds compares two window bounds or cursor values given as text
// and returns -1, 0 or +1. Two integers compare as numbers, whatever their
// size (BIGINT UNSIGNED included); anything else compares as text, which
// is right for the time form. Callers that may hold bounds of two kinds
// (a cursor whose column changed type) check IsIntegerBound first.
func CompareBounds(a, b string) int {
	if !IsIntegerBound(a) || !IsIntegerBound(b) {
		return strings.Compare(a, b)
	}
	na, da := splitInt(a)
	nb, db := splitInt(b)
	switch {
	case na && !nb:
		return -1
	case !na && nb:
		return 1
	}
	c := len(da) - len(db)
	if c == 0 {
		c = strings.Compare(da, db)
	}
	if c > 0 {
		c = 1
	} else if c < 0 {
		c = -1
	}
	if na {
		return -c
	}
	return c
}

// splitInt returns an integer's sign and its digits without leading zeros.
func splitInt(s string) (neg bool, digits string) {
	neg = strings.HasPrefix(s, "-")
	digits = strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
	if digits == "" {
		return false, "0"
	}
	return neg, digits
}

// Result is what the far side reports for one applied batch; it is the
// gateway's sync log entry (seed 1.1.6) that the coordinator records.
type Result struct {
	BatchID   string `json:"batch_id"`
	Table     string `json:"table"`
	Rows      int    `json:"rows"`      // rows in the batch
	Written   int64  `json:"written"`   // rows the database reports as inserted or changed
	Bytes     int64  `json:"bytes"`     // payload bytes of the batch
	Duplicate bool   `json:"duplicate"` // already applied earlier: nothing written this time
	// Conflicts holds, as an encoded batch (package batch), the receiving
	// side's own versions of rows that were not applied because they had
	// changed there too; empty when there were none.
	Conflicts []byte `json:"conflicts,omitempty"`
	// Missing names the batch's columns that the receiving table does not
	// have (a column added on the sending side only). Their values were
	// not written; the columns both sides share were. The sender keeps
	// syncing the shared columns and sends the rows again once the column
	// exists here (see syncer's schema drift). A key column, or the
	// cursor of a two-way table, is never missing: such a batch is
	// refused with ErrUnknownColumn.
	Missing   []string `json:"missing,omitempty"`
	AppliedAt string   `json:"applied_at"`
}

// Page bounds one batch read from a ChangeSource.
type Page struct {
	Rows  int // at most this many rows (default 1000)
	Bytes int // stop adding rows once the payload passes this (default 4 MiB)
}

// LogEntry is one run of one table in one direction: a row of sync_log.
type LogEntry struct {
	RunID      string
	Table      string
	Direction  Direction
	Window     Window
	Batches    int
	Rows       int64 // rows read and sent
	Written    int64 // rows the far database reported written
	Duplicates int   // batches the far side had already applied
	Conflicts  int   // keys changed on both sides, settled by the resolver
	Bytes      int64
	Err        error // nil for a successful run
	StartedAt  time.Time
	FinishedAt time.Time
}

// ParseTable reads the short form NAME:KEY[+KEY…]:CURSOR[:DIRECTION[:FILECOL[+FILECOL…]]]
// that the example mains take in -table flags, for example
// "orders:id:updated_at", "lines:order_id+line_no:changed_at:both" or
// "docs:id:updated_at:both:path". The direction defaults to push; the
// table is enabled.
func ParseTable(s string) (Table, error) {
	p := strings.Split(s, ":")
	if len(p) < 3 || len(p) > 5 {
		return Table{}, fmt.Errorf("gapsync: table %q: want NAME:KEY[+KEY…]:CURSOR[:DIRECTION[:FILECOL[+FILECOL…]]]", s)
	}
	t := Table{Name: p[0], Key: strings.Split(p[1], "+"), Cursor: p[2], Direction: Push, Enabled: true}
	if len(p) >= 4 {
		t.Direction = Direction(p[3])
	}
	if len(p) == 5 {
		t.FileColumns = strings.Split(p[4], "+")
	}
	return t, t.Validate()
}

// CleanKey checks a file key: a slash-separated relative path of at most
// 1024 bytes whose elements are 1 to 255 bytes, none "." or "..", with no
// backslash and no NUL. It returns an error wrapping ErrBadPath otherwise.
// Keys are taken literally: callers that read paths out of rows or URLs
// decode them first (package pathmap does), so that an encoded "..%2f"
// is checked as the ".." it stands for.
func CleanKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("%w: %q must be 1 to 1024 bytes", ErrBadPath, key)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w: %q holds a backslash or NUL", ErrBadPath, key)
	}
	if key[0] == '/' {
		return fmt.Errorf("%w: %q is absolute", ErrBadPath, key)
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." || len(el) > 255 {
			return fmt.Errorf("%w: %q has an empty, dot or over-long element", ErrBadPath, key)
		}
	}
	return nil
}
