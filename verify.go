package gapsync

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// KeyRange is the rows of a table whose key lies after Lo, up to and
// including Hi, in the table's key order (the primary key's order on its
// own engine). A nil Lo starts at the first row, a nil Hi ends at the last.
type KeyRange struct {
	Lo, Hi []any
}

// RangeHash is one range of a verification scan: the key of its last
// row, how many rows it holds, and a hash over their row hashes in key
// order (see storage.DB.HashRanges). A range of one row carries that
// row's own hash.
type RangeHash struct {
	Last []any
	Rows int64
	Hash []byte
}

// DiffKind is how a row differs between the two sides.
type DiffKind string

const (
	// DiffMissing: the row is on the origin side (by the table's
	// direction; the internet for a table synced both ways) and not on
	// the far side.
	DiffMissing DiffKind = "missing"
	// DiffExtra: the row is on the far side and not on the origin side.
	DiffExtra DiffKind = "extra"
	// DiffChanged: the row is on both sides with other values in Columns.
	DiffChanged DiffKind = "different"
)

// RowDiff is one row that differs between the sides.
type RowDiff struct {
	Table string
	// Key is the row's key values, in configured key order.
	Key  []any
	Kind DiffKind
	// Side is the far side, where the row is missing, extra or
	// different.
	Side Side
	// Columns name the columns whose values differ (DiffChanged only).
	Columns []string
	// InternetHash and IntranetHash are the row's hash on each side as the
	// verification saw it (nil: no row there); a repair leaves the row
	// alone when either has changed since.
	InternetHash, IntranetHash []byte
}

// Repair is what a repair did, or did not do, to one row that differed.
type Repair struct {
	RowDiff
	// Done reports that the row was sent (or its deletion was); when it
	// is false, Reason says why not.
	Done   bool
	Action string // "upsert" or "delete"
	Reason string
}

// TableVerify is the verification of one table.
type TableVerify struct {
	Table string
	// Ranges is how many ranges were compared at the top level, Rows how
	// many rows the larger side holds.
	Ranges int
	Rows   int64
	Diffs  []RowDiff
	Took   time.Duration
	// Columns are the columns compared, Salt the run's salt of the
	// hashes (a repair hashes the rows again with it).
	Columns []string
	Salt    []byte
	// Resumed is how many of Rows were compared before a stop (a process
	// killed, or VerifyOptions.Until) by an earlier call that this one
	// continued; 0 for a table verified in one go.
	Resumed int64
	// Unfinished reports that the verification stopped before the
	// table's last row (VerifyOptions.Until): Rows and Diffs cover the
	// rows compared so far, and the next verification of the same
	// tables continues from there.
	Unfinished bool
}

// VerifyCheckpoint is how far the verification of one table in a run has
// come, kept in the internet database (sync_verify_progress) so that a
// verification killed midway continues from its last finished range.
type VerifyCheckpoint struct {
	// RunID names the run, Tables every table it verifies, in order: a
	// later verification continues the run only when it asks for the
	// same tables.
	RunID  string
	Tables []string
	// TableVerify holds the table's counts so far, its columns and its
	// salt (a continued run hashes with the same salt, so that a repair
	// can check every row it reported).
	TableVerify
	// After is the key of the last row compared (nil: none yet): every
	// row up to it, on both sides, has been compared.
	After []any
	// Done reports that the table was compared to its end.
	Done bool
}

// KeyText is the row's key as text, for logs and reports: the key values
// comma separated, bytes as text when they are valid UTF-8, else as hex.
func (d RowDiff) KeyText() string {
	parts := make([]string, len(d.Key))
	for i, v := range d.Key {
		switch x := v.(type) {
		case []byte:
			if utf8.Valid(x) {
				parts[i] = string(x)
			} else {
				parts[i] = "0x" + hex.EncodeToString(x)
			}
		case nil:
			parts[i] = "NULL"
		default:
			parts[i] = fmt.Sprint(x)
		}
	}
	return strings.Join(parts, ",")
}
