// Package batch implements the versioned binary "batch" format in which
// gapsync carries changed database rows from one zone to the other.
//
// A [Batch] holds one page of rows of one table, with the columns they
// share. [Batch.AppendBinary] and [Batch.MarshalBinary] encode it, and
// [Decode] parses it back. The format is self-contained: no schema is
// needed to decode it. Each valid batch has exactly one encoding, so
// decoding and encoding again gives back the same bytes.
//
// # Wire layout, version 1
//
// A batch is the following fields in this order. Nothing lies between
// fields, and nothing may follow the last row.
//
//	bytes        field
//	1            'G' (0x47)
//	1            'S' (0x53)
//	1            'B' (0x42)
//	1            version, 0x01 (see Version)
//	str          ID          1..64 bytes, each one of A-Z a-z 0-9 . _ -
//	str          Table       1..256 bytes
//	str          Direction   0..16 bytes, e.g. "push" or "pull"
//	str          WindowFrom  0..64 bytes
//	str          WindowTo    0..64 bytes
//	uvarint      Seq         page number within the window
//	str          Since       0..64 bytes: the reverse direction's last bound
//	1            Flags       bit 0: force (apply without conflict checks);
//	                         bit 1: load (a page of a first load);
//	                         bits 2..7 must be 0
//	uvarint      ncols       number of columns, at least 1
//	ncols times:
//	  str        Name        1..256 bytes of valid UTF-8 without NUL
//	  str        Type        0..64 bytes, informative only
//	  1          flags       bit 0 set: the column is part of the primary key;
//	                         bits 1..7 must be 0
//	uvarint      nrows       number of rows, may be 0
//	nrows times:
//	  1          op          1 = upsert, 2 = delete (see Op)
//	  ncols times, in column order:
//	    1        kind        the value's kind (see below)
//	    ...      payload     depends on kind
//
// # Integers and strings
//
// A uvarint is an unsigned integer in 1 to 10 bytes, 7 bits per byte,
// least significant group first, the high bit of each byte set when
// another byte follows: the encoding of [encoding/binary.AppendUvarint].
// It must be minimal: a final byte of 0x00 after other bytes is
// malformed, as is a value that does not fit in 64 bits.
//
// A varint is a signed integer zigzag-mapped to a uvarint (0, -1, 1, -2,
// 2 ... become 0, 1, 2, 3, 4 ...), as [encoding/binary.AppendVarint]
// writes it.
//
// A str is a uvarint byte count followed by that many bytes.
//
// # Values
//
// Each value is one kind byte followed by its payload. The Go type in
// the right column is what [Decode] puts in [Row].Values, and what
// [Batch.AppendBinary] accepts.
//
//	kind  name     payload                                  Go type
//	0     null     none                                     nil
//	1     int64    varint                                   int64
//	2     uint64   uvarint                                  uint64
//	3     float32  4 bytes, IEEE-754 bits, little-endian    float32
//	4     float64  8 bytes, IEEE-754 bits, little-endian    float64
//	5     bytes    uvarint length, then that many bytes     []byte
//	6     string   uvarint length, then that many bytes     string
//	7     bool     1 byte, 0x00 false or 0x01 true          bool
//
// Any other kind byte is malformed, and so is a bool byte other than 0
// or 1. Float bits travel unchanged: NaN payloads and the sign of zero
// survive. The bytes of a string value are not checked for valid UTF-8,
// since databases may hold anything in a text column.
//
// bytes and string are distinct kinds. bytes is a value as the database
// returned it (MySQL returns DECIMAL, DATETIME, BIT, BLOB and TEXT as
// []byte); string is a text value (the SQLite TEXT storage class). An
// empty bytes value is not null: it decodes as a non-nil []byte of
// length 0, while null decodes as nil. When encoding, a nil []byte is
// taken for SQL NULL, as database/sql drivers return it, and is written
// as kind 0.
//
// # Decoding
//
// [Decode] trusts no length or count. Every failure wraps [ErrMalformed]
// (see [errors.Is]) and its message gives a short reason and the byte
// offset at which the problem was found; a batch whose magic is right but
// whose version byte is not [Version] fails with [ErrVersion] instead.
// Besides the rules above, Decode enforces [Limits]: the number of
// columns, the number of rows and the size of one bytes or string value.
// Duplicate column names are malformed.
//
// Decode reads the input twice. The first pass checks it whole (all but
// the uniqueness of column names) and allocates nothing, so malformed
// input costs no memory but the error; the second builds the batch. A
// count or length that claims more than the remaining input is rejected
// before anything is sized by it, and Decode never allocates more than a
// small multiple of len(data): about 25 times at worst, for rows of
// one-byte nulls, plus a constant.
//
// The []byte values of a decoded batch alias data, the slice that was
// passed to Decode: no value bytes are copied. Such a value's capacity
// equals its length, so appending to it never writes into data, but the
// caller must not modify data while the batch is in use, and the batch
// keeps data reachable. Strings (the header fields, the column names and
// types, and string values) are copied, all into one shared allocation.
package batch
