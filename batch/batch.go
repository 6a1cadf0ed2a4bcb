package batch

import (
	"bytes"
	"errors"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Version is the wire format version. An encoded batch starts with
// 'G', 'S', 'B' and byte(Version).
const Version = 1

// Op is what a row asks of the receiving side.
type Op uint8

const (
	OpUpsert Op = 1 // insert or update by primary key
	OpDelete Op = 2 // delete by primary key (only key values are meaningful)
)

// Column describes one column of the batch.
type Column struct {
	Name string // column name as configured: valid UTF-8, 1..256 bytes, no NUL
	Type string // database type name as reported by the driver, informative; may be empty, <= 64 bytes
	Key  bool   // part of the primary key
}

// Row is one changed row. Values has one entry per Column, in order.
//
// Each value is one of exactly these Go types; anything else is an
// encode error wrapping ErrUnsupportedValue:
//
//	nil, int64, uint64, float32, float64, bool, []byte, string
//
// []byte and string are distinct kinds: []byte is "bytes as the
// database returned them" (MySQL returns DECIMAL, DATETIME, BIT, BLOB and
// TEXT all as []byte), string is a text value (SQLite TEXT storage
// class). An empty []byte{} is not NULL: it decodes as a non-nil []byte
// of length 0, while NULL decodes as nil. A nil []byte is encoded as
// NULL, the way database/sql drivers report NULL in a []byte.
type Row struct {
	Op     Op
	Values []any
}

// Batch is one page of changed rows of one table.
type Batch struct {
	ID         string // idempotency key, 1..64 bytes, chars [A-Za-z0-9._-]
	Table      string // 1..256 bytes
	Direction  string // e.g. "push" or "pull", <= 16 bytes
	WindowFrom string // window bounds as text (may be empty), <= 64 bytes each
	WindowTo   string
	Seq        uint64 // page number within the window
	// Since is the reverse direction's last window bound, <= 64 bytes: a
	// row on the receiving side whose cursor is at or after it changed
	// there since the last sync and has not travelled back yet, so an
	// incoming change to it is a conflict (see the storage package).
	Since   string
	Flags   Flags
	Columns []Column
	Rows    []Row
}

// Flags modify how a batch is applied.
type Flags uint8

const (
	// FlagForce applies every row without conflict checks: the batch
	// carries the winners of conflicts the sender has already settled.
	FlagForce Flags = 1 << 0
	// FlagLoad says the batch is a page of a table's first load (a window
	// from the table's start): its rows are expected to be new on the
	// receiving side, which may insert them by a faster path. It changes
	// nothing of what is applied: a row that is there after all is
	// replaced as in any batch, and the conflict rules are the same.
	FlagLoad   Flags = 1 << 1
	flagsKnown       = FlagForce | FlagLoad
)

// Limits bounds what Decode accepts. Zero (or negative) fields mean the
// defaults shown. Limits apply to Decode only; encoding does not check
// them.
type Limits struct {
	MaxColumns int // default 4096
	MaxRows    int // default 1_000_000
	MaxValue   int // max bytes of one []byte/string value, default 1<<30
}

// Default limits, used for zero fields of Limits.
const (
	defaultMaxColumns = 4096
	defaultMaxRows    = 1_000_000
	defaultMaxValue   = 1 << 30
)

// Field limits of the header and the columns.
const (
	maxIDLen        = 64
	maxTableLen     = 256
	maxDirectionLen = 16
	maxWindowLen    = 64
	maxNameLen      = 256
	maxTypeLen      = 64
)

var (
	// ErrMalformed is wrapped by every decode failure (other than
	// ErrVersion), with a short reason and the byte offset in the
	// message, and by encode failures caused by an invalid batch.
	ErrMalformed = errors.New("gapsync/batch: malformed batch")
	// ErrVersion is wrapped by the error Decode returns when the magic is
	// right but the version byte is not Version. It does not wrap
	// ErrMalformed.
	ErrVersion = errors.New("gapsync/batch: unsupported batch version")
	// ErrUnsupportedValue is wrapped by the error of encoding a value of a
	// Go type outside the supported set (e.g. int32, time.Time); the
	// message names the column and the Go type.
	ErrUnsupportedValue = errors.New("gapsync/batch: unsupported value type")
)

// effective returns l with defaults filled in; l may be nil.
func (l *Limits) effective() Limits {
	var e Limits
	if l != nil {
		e = *l
	}
	if e.MaxColumns <= 0 {
		e.MaxColumns = defaultMaxColumns
	}
	if e.MaxRows <= 0 {
		e.MaxRows = defaultMaxRows
	}
	if e.MaxValue <= 0 {
		e.MaxValue = defaultMaxValue
	}
	return e
}

// RowSize returns an upper bound of the encoded size of r, for callers
// that cut batches by bytes. It is exact when every value has a supported
// type (a value of another type counts as its kind byte only), and it
// neither allocates nor checks len(r.Values) against the columns.
func RowSize(r Row) int {
	n := 1 + len(r.Values) // op byte, one kind byte per value
	for _, v := range r.Values {
		n += payloadSize(v)
	}
	return n
}

// payloadSize is the encoded size of v without its kind byte.
func payloadSize(v any) int {
	switch v := v.(type) {
	case int64:
		return uvarintLen(zigzag(v))
	case uint64:
		return uvarintLen(v)
	case float32:
		return 4
	case float64:
		return 8
	case bool:
		return 1
	case []byte:
		if v == nil {
			return 0
		}
		return uvarintLen(uint64(len(v))) + len(v)
	case string:
		return uvarintLen(uint64(len(v))) + len(v)
	}
	return 0
}

// Bytes returns the payload size of the batch's values, for logs: the sum
// of len() of all []byte and string values plus 8 per numeric value
// (int64, uint64, float32, float64). NULLs and bools count 0.
func (b *Batch) Bytes() int64 {
	var n int64
	for i := range b.Rows {
		for _, v := range b.Rows[i].Values {
			switch v := v.(type) {
			case []byte:
				n += int64(len(v))
			case string:
				n += int64(len(v))
			case int64, uint64, float32, float64:
				n += 8
			}
		}
	}
	return n
}

// encodedSize is the exact encoded size of a batch that encodes without
// error.
func (b *Batch) encodedSize() int {
	n := 4 + strSize(b.ID) + strSize(b.Table) + strSize(b.Direction) +
		strSize(b.WindowFrom) + strSize(b.WindowTo) + uvarintLen(b.Seq) + strSize(b.Since) + 1 +
		uvarintLen(uint64(len(b.Columns))) + uvarintLen(uint64(len(b.Rows)))
	for i := range b.Columns {
		n += strSize(b.Columns[i].Name) + strSize(b.Columns[i].Type) + 1
	}
	for i := range b.Rows {
		n += RowSize(b.Rows[i])
	}
	return n
}

func strSize(s string) int { return uvarintLen(uint64(len(s))) + len(s) }

// uvarintLen is the number of bytes of the uvarint encoding of x.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

// validID reports whether s is 1..64 bytes of [A-Za-z0-9._-].
func validID[T string | []byte](s T) bool {
	if len(s) < 1 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// validNameString reports whether s is a valid column name: valid UTF-8,
// 1..256 bytes, no NUL.
func validNameString(s string) bool {
	return len(s) >= 1 && len(s) <= maxNameLen && strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// validNameBytes is validNameString for a name still in the input.
func validNameBytes(s []byte) bool {
	return len(s) >= 1 && len(s) <= maxNameLen && bytes.IndexByte(s, 0) < 0 && utf8.Valid(s)
}

// dupColumn returns the index of the first column whose name repeats an
// earlier one, or -1.
func dupColumn(cols []Column) int {
	if len(cols) <= 64 { // up to 2016 comparisons; cheaper than a map
		for i := 1; i < len(cols); i++ {
			for j := 0; j < i; j++ {
				if cols[i].Name == cols[j].Name {
					return i
				}
			}
		}
		return -1
	}
	seen := make(map[string]struct{}, len(cols))
	for i := range cols {
		if _, ok := seen[cols[i].Name]; ok {
			return i
		}
		seen[cols[i].Name] = struct{}{}
	}
	return -1
}
