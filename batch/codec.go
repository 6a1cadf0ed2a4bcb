package batch

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Value kinds on the wire.
const (
	kindNull    = 0
	kindInt64   = 1
	kindUint64  = 2
	kindFloat32 = 3
	kindFloat64 = 4
	kindBytes   = 5
	kindString  = 6
	kindBool    = 7
)

// flagKey is bit 0 of a column's flags byte.
const flagKey = 1

// minColumnSize is the smallest encoding of one column: name length,
// one name byte, type length, flags.
const minColumnSize = 4

// MarshalBinary encodes b into a new slice of exactly the encoded size. It
// is AppendBinary(nil) without the reallocations.
func (b *Batch) MarshalBinary() ([]byte, error) {
	return b.AppendBinary(make([]byte, 0, b.encodedSize()))
}

// AppendBinary appends the encoding of b to dst and returns the extended
// slice. It validates the batch: the header field limits, the columns
// (name, type, no duplicate names, at least one), len(Values) ==
// len(Columns) for every row, a valid Op, and the Go type of every value.
// An invalid batch gives an error wrapping ErrMalformed, a value of an
// unsupported Go type one wrapping ErrUnsupportedValue. On error the
// returned slice is dst as passed in, but bytes past its length, within
// its capacity, may have been overwritten.
func (b *Batch) AppendBinary(dst []byte) ([]byte, error) {
	if err := b.validate(); err != nil {
		return dst, err
	}
	orig := dst
	dst = append(dst, 'G', 'S', 'B', Version)
	dst = appendStr(dst, b.ID)
	dst = appendStr(dst, b.Table)
	dst = appendStr(dst, b.Direction)
	dst = appendStr(dst, b.WindowFrom)
	dst = appendStr(dst, b.WindowTo)
	dst = binary.AppendUvarint(dst, b.Seq)
	dst = appendStr(dst, b.Since)
	dst = append(dst, byte(b.Flags))
	dst = binary.AppendUvarint(dst, uint64(len(b.Columns)))
	for i := range b.Columns {
		c := &b.Columns[i]
		dst = appendStr(dst, c.Name)
		dst = appendStr(dst, c.Type)
		var flags byte
		if c.Key {
			flags |= flagKey
		}
		dst = append(dst, flags)
	}
	ncols := len(b.Columns)
	dst = binary.AppendUvarint(dst, uint64(len(b.Rows)))
	for i := range b.Rows {
		r := &b.Rows[i]
		if r.Op != OpUpsert && r.Op != OpDelete {
			return orig, fmt.Errorf("%w: encode: row %d: invalid op %d", ErrMalformed, i, r.Op)
		}
		if len(r.Values) != ncols {
			return orig, fmt.Errorf("%w: encode: row %d: %d values for %d columns", ErrMalformed, i, len(r.Values), ncols)
		}
		dst = append(dst, byte(r.Op))
		for j, v := range r.Values {
			var ok bool
			if dst, ok = AppendValue(dst, v); !ok {
				return orig, fmt.Errorf("%w: encode: row %d, column %q: Go type %T", ErrUnsupportedValue, i, b.Columns[j].Name, v)
			}
		}
	}
	return dst, nil
}

// AppendValue appends the wire encoding of one value (its kind byte and
// payload) to dst. It reports false, with dst unchanged, for a Go type the
// format does not carry. The encoding is canonical, so it also serves to
// hash rows for comparison (storage's Checksum, the conformance suite).
func AppendValue(dst []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		dst = append(dst, kindNull)
	case int64:
		dst = append(dst, kindInt64)
		dst = binary.AppendUvarint(dst, zigzag(v))
	case uint64:
		dst = append(dst, kindUint64)
		dst = binary.AppendUvarint(dst, v)
	case float32:
		dst = append(dst, kindFloat32)
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	case float64:
		dst = append(dst, kindFloat64)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	case []byte:
		if v == nil {
			return append(dst, kindNull), true
		}
		dst = append(dst, kindBytes)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	case string:
		dst = append(dst, kindString)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	case bool:
		if v {
			dst = append(dst, kindBool, 1)
		} else {
			dst = append(dst, kindBool, 0)
		}
	default:
		return dst, false
	}
	return dst, true
}

func appendStr(dst []byte, s string) []byte {
	if len(s) < 0x80 {
		dst = append(dst, byte(len(s)))
	} else {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
	}
	return append(dst, s...)
}

// validate checks the header and the columns of b, the rules Decode
// applies to them.
func (b *Batch) validate() error {
	switch {
	case !validID(b.ID):
		return encodeErr("ID must be 1..64 bytes of [A-Za-z0-9._-]")
	case len(b.Table) < 1 || len(b.Table) > maxTableLen:
		return encodeErr("Table must be 1..256 bytes")
	case len(b.Direction) > maxDirectionLen:
		return encodeErr("Direction longer than 16 bytes")
	case len(b.WindowFrom) > maxWindowLen:
		return encodeErr("WindowFrom longer than 64 bytes")
	case len(b.WindowTo) > maxWindowLen:
		return encodeErr("WindowTo longer than 64 bytes")
	case len(b.Since) > maxWindowLen:
		return encodeErr("Since longer than 64 bytes")
	case b.Flags&^flagsKnown != 0:
		return encodeErr("unknown flags")
	case len(b.Columns) == 0:
		return encodeErr("no columns")
	}
	for i := range b.Columns {
		c := &b.Columns[i]
		if !validNameString(c.Name) {
			return fmt.Errorf("%w: encode: column %d: name must be 1..256 bytes of valid UTF-8 without NUL", ErrMalformed, i)
		}
		if len(c.Type) > maxTypeLen {
			return fmt.Errorf("%w: encode: column %q: type longer than 64 bytes", ErrMalformed, c.Name)
		}
	}
	if i := dupColumn(b.Columns); i >= 0 {
		return fmt.Errorf("%w: encode: duplicate column name %q", ErrMalformed, b.Columns[i].Name)
	}
	return nil
}

func encodeErr(reason string) error {
	return fmt.Errorf("%w: encode: %s", ErrMalformed, reason)
}

// malformedError is a decode failure: a reason and the byte offset at
// which it was found.
type malformedError struct {
	reason string
	off    int
}

func (e *malformedError) Error() string {
	return ErrMalformed.Error() + ": " + e.reason + " at offset " + strconv.Itoa(e.off)
}

func (e *malformedError) Unwrap() error { return ErrMalformed }

// versionError is the version byte of a batch this build cannot read.
type versionError byte

func (e versionError) Error() string {
	return ErrVersion.Error() + " " + strconv.Itoa(int(e)) + " (this build reads " + strconv.Itoa(Version) + ")"
}

func (e versionError) Unwrap() error { return ErrVersion }

func malformed(reason string, off int) error {
	return &malformedError{reason: reason, off: off}
}

// Decode parses an encoded batch. It checks the whole input against the
// format and lim (nil means the defaults) before it allocates the result,
// except for the uniqueness of column names, checked once the columns are
// built. Every failure wraps ErrMalformed, except a version mismatch,
// which wraps ErrVersion.
//
// The []byte values of the result alias data (zero copy), with their
// capacity cut to their length: the caller must not modify data while the
// batch is in use. Strings are copied.
func Decode(data []byte, lim *Limits) (*Batch, error) {
	return decode(data, lim, false)
}

// DecodeHeader parses the header and the columns of an encoded batch,
// and none of its rows: a receiver checks the table and the columns
// (configured? allowed?) at the cost of the header alone, before Decode
// allocates for the rows. The result has no Rows; that the rows parse is
// not checked. Errors are those of Decode.
func DecodeHeader(data []byte, lim *Limits) (*Batch, error) {
	return decode(data, lim, true)
}

func decode(data []byte, lim *Limits, headerOnly bool) (*Batch, error) {
	const magic = "GSB"
	for i := 0; i < len(magic); i++ {
		if i >= len(data) {
			return nil, malformed("truncated magic", i)
		}
		if data[i] != magic[i] {
			return nil, malformed("bad magic", i)
		}
	}
	if len(data) < 4 {
		return nil, malformed("truncated version", 3)
	}
	if data[3] != Version {
		return nil, versionError(data[3])
	}
	d := decoder{data: data, lim: lim.effective(), headerOnly: headerOnly}
	// Pass one checks everything but duplicate column names and counts
	// the string bytes; pass two builds the batch.
	if err := d.parse(nil); err != nil {
		return nil, err
	}
	d.arena.Grow(d.strBytes)
	b := new(Batch)
	if err := d.parse(b); err != nil {
		return nil, err
	}
	return b, nil
}

type decoder struct {
	data       []byte
	lim        Limits
	headerOnly bool            // stop after the columns
	strBytes   int             // string bytes counted by pass one
	arena      strings.Builder // holds every string of the result
}

// text returns s as a string in the arena.
func (d *decoder) text(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	start := d.arena.Len()
	d.arena.Write(s)
	return d.arena.String()[start:]
}

// Results of uvarint other than a new position.
const (
	varintTruncated  = -1
	varintOverflow   = -2
	varintNonMinimal = -3
)

// uvarint reads a uvarint at data[p:] and returns it and the position
// after it, or a negative position (varintTruncated, ...) on failure.
// Hot loops test for the one-byte case themselves before calling it, as
// this function is too big to inline.
func uvarint(data []byte, p int) (uint64, int) {
	if p < len(data) && data[p] < 0x80 {
		return uint64(data[p]), p + 1
	}
	if len(data)-p >= binary.MaxVarintLen64 {
		// Enough input for the longest uvarint: no length checks.
		b := (*[binary.MaxVarintLen64]byte)(data[p:])
		var x uint64
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c < 0x80 {
				if c == 0 && i > 0 {
					return 0, varintNonMinimal
				}
				if i == len(b)-1 && c > 1 {
					return 0, varintOverflow
				}
				return x | uint64(c)<<(7*i), p + i + 1
			}
			x |= uint64(c&0x7f) << (7 * i)
		}
		return 0, varintOverflow
	}
	var x uint64
	for i := 0; p+i < len(data); i++ {
		c := data[p+i]
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, varintNonMinimal
			}
			return x | uint64(c)<<(7*i), p + i + 1 // i < 9: no overflow possible
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	return 0, varintTruncated
}

// varintErr turns a failed uvarint result into an error for field what at
// offset off.
func varintErr(res int, what string, off int) error {
	switch res {
	case varintTruncated:
		return malformed("truncated "+what, off)
	case varintNonMinimal:
		return malformed("non-minimal varint in "+what, off)
	}
	return malformed("varint overflow in "+what, off)
}

// str reads a str of minLen..maxLen bytes at data[p:]; it returns its bytes
// (aliasing data) and the position after it.
func (d *decoder) str(p int, what string, minLen, maxLen int) ([]byte, int, error) {
	n, q := uvarint(d.data, p)
	if q < 0 {
		return nil, 0, varintErr(q, what+" length", p)
	}
	if n < uint64(minLen) || n > uint64(maxLen) {
		return nil, 0, malformed(what+" length out of range", p)
	}
	if n > uint64(len(d.data)-q) {
		return nil, 0, malformed("truncated "+what, p)
	}
	end := q + int(n)
	return d.data[q:end], end, nil
}

// parse walks the input. With out nil it checks the input and counts
// d.strBytes; otherwise it fills out, relying on the checks of pass one
// except for duplicate column names.
func (d *decoder) parse(out *Batch) error {
	build := out != nil
	data := d.data
	p := 4
	var s []byte
	var err error

	// Header.
	off := p
	if s, p, err = d.str(p, "ID", 1, maxIDLen); err != nil {
		return err
	}
	if build {
		out.ID = d.text(s)
	} else {
		if !validID(s) {
			return malformed("ID has a character outside [A-Za-z0-9._-]", off)
		}
		d.strBytes += len(s)
	}
	if s, p, err = d.str(p, "table", 1, maxTableLen); err != nil {
		return err
	}
	if build {
		out.Table = d.text(s)
	} else {
		d.strBytes += len(s)
	}
	if s, p, err = d.str(p, "direction", 0, maxDirectionLen); err != nil {
		return err
	}
	if build {
		out.Direction = d.text(s)
	} else {
		d.strBytes += len(s)
	}
	if s, p, err = d.str(p, "window start", 0, maxWindowLen); err != nil {
		return err
	}
	if build {
		out.WindowFrom = d.text(s)
	} else {
		d.strBytes += len(s)
	}
	if s, p, err = d.str(p, "window end", 0, maxWindowLen); err != nil {
		return err
	}
	if build {
		out.WindowTo = d.text(s)
	} else {
		d.strBytes += len(s)
	}
	off = p
	seq, p := uvarint(data, p)
	if p < 0 {
		return varintErr(p, "seq", off)
	}
	if build {
		out.Seq = seq
	}
	if s, p, err = d.str(p, "since", 0, maxWindowLen); err != nil {
		return err
	}
	if build {
		out.Since = d.text(s)
	} else {
		d.strBytes += len(s)
	}
	if p >= len(data) {
		return malformed("truncated before flags", p)
	}
	if Flags(data[p])&^flagsKnown != 0 {
		return malformed("unknown flags", p)
	}
	if build {
		out.Flags = Flags(data[p])
	}
	p++

	// Columns.
	colsOff := p
	nc, p := uvarint(data, p)
	if p < 0 {
		return varintErr(p, "column count", colsOff)
	}
	switch {
	case nc == 0:
		return malformed("no columns", colsOff)
	case nc > uint64(d.lim.MaxColumns):
		return malformed("too many columns", colsOff)
	case nc > uint64((len(data)-p)/minColumnSize):
		return malformed("truncated columns (count exceeds remaining input)", colsOff)
	}
	ncols := int(nc)
	var cols []Column
	if build {
		cols = make([]Column, ncols)
		out.Columns = cols
	}
	for i := 0; i < ncols; i++ {
		off = p
		var name, typ []byte
		if name, p, err = d.str(p, "column name", 1, maxNameLen); err != nil {
			return err
		}
		if !build && !validNameBytes(name) {
			return malformed("column name is not valid UTF-8 or contains NUL", off)
		}
		if typ, p, err = d.str(p, "column type", 0, maxTypeLen); err != nil {
			return err
		}
		if p >= len(data) {
			return malformed("truncated column flags", p)
		}
		flags := data[p]
		if flags&^flagKey != 0 {
			return malformed("bad column flags", p)
		}
		p++
		if build {
			cols[i] = Column{Name: d.text(name), Type: d.text(typ), Key: flags&flagKey != 0}
		} else {
			d.strBytes += len(name) + len(typ)
		}
	}
	if build {
		if i := dupColumn(cols); i >= 0 {
			return malformed("duplicate column name", d.columnOffset(colsOff, i))
		}
	}

	if d.headerOnly {
		return nil
	}

	// Rows.
	off = p
	nr, p := uvarint(data, p)
	if p < 0 {
		return varintErr(p, "row count", off)
	}
	switch {
	case nr > uint64(d.lim.MaxRows):
		return malformed("too many rows", off)
	case nr > uint64((len(data)-p)/(1+ncols)):
		return malformed("truncated rows (count exceeds remaining input)", off)
	}
	nrows := int(nr)
	var rows []Row
	var vals []any
	if build && nrows > 0 {
		rows = make([]Row, nrows)
		vals = make([]any, nrows*ncols) // nrows*(1+ncols) <= len(data): no overflow
		out.Rows = rows
	}
	maxValue := uint64(d.lim.MaxValue)
	for i := 0; i < nrows; i++ {
		if p >= len(data) {
			return malformed("truncated row", p)
		}
		op := Op(data[p])
		if op != OpUpsert && op != OpDelete {
			return malformed("bad row op", p)
		}
		p++
		var rv []any
		if build {
			rv = vals[i*ncols : (i+1)*ncols : (i+1)*ncols]
			rows[i] = Row{Op: op, Values: rv}
		}
		for j := 0; j < ncols; j++ {
			off = p
			if p >= len(data) {
				return malformed("truncated value", p)
			}
			kind := data[p]
			p++
			switch kind {
			case kindNull:
			case kindInt64, kindUint64:
				var u uint64
				if p < len(data) && data[p] < 0x80 {
					u = uint64(data[p])
					p++
				} else if u, p = uvarint(data, p); p < 0 {
					return varintErr(p, "integer value", off)
				}
				if build {
					if kind == kindInt64 {
						rv[j] = int64(u>>1) ^ -int64(u&1)
					} else {
						rv[j] = u
					}
				}
			case kindFloat32:
				if len(data)-p < 4 {
					return malformed("truncated float32 value", off)
				}
				if build {
					rv[j] = math.Float32frombits(binary.LittleEndian.Uint32(data[p:]))
				}
				p += 4
			case kindFloat64:
				if len(data)-p < 8 {
					return malformed("truncated float64 value", off)
				}
				if build {
					rv[j] = math.Float64frombits(binary.LittleEndian.Uint64(data[p:]))
				}
				p += 8
			case kindBytes, kindString:
				var n uint64
				if p < len(data) && data[p] < 0x80 {
					n = uint64(data[p])
					p++
				} else if n, p = uvarint(data, p); p < 0 {
					return varintErr(p, "value length", off)
				}
				if n > maxValue {
					return malformed("value larger than limit", off)
				}
				if n > uint64(len(data)-p) {
					return malformed("truncated value", off)
				}
				end := p + int(n)
				if kind == kindBytes {
					if build {
						rv[j] = data[p:end:end]
					}
				} else if build {
					rv[j] = d.text(data[p:end])
				} else {
					d.strBytes += int(n)
				}
				p = end
			case kindBool:
				if p >= len(data) {
					return malformed("truncated bool value", off)
				}
				if data[p] > 1 {
					return malformed("bad bool value", off)
				}
				if build {
					rv[j] = data[p] == 1
				}
				p++
			default:
				return malformed("unknown value kind", off)
			}
		}
	}
	if p != len(data) {
		return malformed("trailing bytes after last row", p)
	}
	return nil
}

// columnOffset returns the offset of column i of a column section that
// starts at p and that pass one found valid.
func (d *decoder) columnOffset(p, i int) int {
	_, p = uvarint(d.data, p)
	for ; i > 0; i-- {
		_, p, _ = d.str(p, "", 0, maxNameLen)
		_, p, _ = d.str(p, "", 0, maxTypeLen)
		p++
	}
	return p
}
