package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgRawFormats asks for bytea and the integers in binary, every other
// type as its text output: the forms the pgx stdlib driver asks for
// those, and for the types it has no Go type for (text among them).
var pgRawFormats = pgx.QueryResultFormatsByOID{
	pgtype.ByteaOID: 1, pgtype.Int2OID: 1, pgtype.Int4OID: 1, pgtype.Int8OID: 1,
}

// pgStdlibTyped are the types the pgx stdlib driver turns into a Go type
// of its own (a bool, a float, a time.Time, …) rather than a string; a
// page with a column of one of these is read through database/sql.
// SelectExpr reads none of them (every value is text or bytea), and the
// row filter's flag is an integer.
var pgStdlibTyped = map[uint32]bool{
	pgtype.BoolOID: true, pgtype.CIDOID: true, pgtype.OIDOID: true, pgtype.XIDOID: true,
	pgtype.DateOID: true, pgtype.Float4OID: true, pgtype.Float8OID: true,
	pgtype.JSONOID: true, pgtype.JSONBOID: true, pgtype.TimestampOID: true,
	pgtype.TimestamptzOID: true, pgtype.XMLOID: true,
}

// errRawFallback: the page is read through database/sql instead.
var errRawFallback = errors.New("storage: read through database/sql")

// readRows is readPage's read on PostgreSQL: q runs on the pgx
// connection itself (as database/sql would run it: the same statement,
// numbered parameters, the same arguments and result formats), and each
// row's values come straight from the wire in the form the pgx stdlib
// driver and database/sql's Scan into any give them, after
// rules.Normalize: NULL as nil, text as a string, bytea as its bytes
// (never nil), an integer as an int64. What it saves is database/sql's
// work a value (its locks, the driver.Value and the conversion into the
// destination) and an allocation a value: the strings of a page are cut
// from a few large buffers, the values from one slice a few hundred
// rows. row gets each row and returns true to stop. handled is false,
// before any row, when the page must go through database/sql: a
// connection behind an isolation device (no pgConn), a column of a type
// the stdlib driver converts, a column count other than ncols, or a
// connection that broke before the query ran (database/sql retries on
// another).
func (pgDialect) readRows(ctx context.Context, db *sql.DB, q Query, ncols int, row func([]any) bool) (handled bool, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return false, nil
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		pc, ok := dc.(*pgConn)
		if !ok {
			return errRawFallback
		}
		query := q.SQL
		if len(q.Args) > 0 {
			query = numberParams(query)
		}
		args := make([]any, 1+len(q.Args))
		args[0] = pgRawFormats
		copy(args[1:], q.Args)
		rows, err := pc.Conn.Conn().Query(ctx, query, args...)
		if err != nil {
			return pgRawErr(err, true)
		}
		defer rows.Close()
		fds := rows.FieldDescriptions()
		if len(fds) != ncols {
			return errRawFallback
		}
		conv := make([]func([]byte) any, len(fds))
		var text pgTextArena
		var bytes pgByteArena
		for i, fd := range fds {
			switch {
			case fd.DataTypeOID == pgtype.ByteaOID && fd.Format == pgx.BinaryFormatCode:
				conv[i] = func(b []byte) any { return bytes.copy(b) }
			case (fd.DataTypeOID == pgtype.Int2OID || fd.DataTypeOID == pgtype.Int4OID || fd.DataTypeOID == pgtype.Int8OID) && fd.Format == pgx.BinaryFormatCode:
				conv[i] = pgBinaryInt
			case fd.DataTypeOID == pgtype.ByteaOID, fd.DataTypeOID == pgtype.Int2OID, fd.DataTypeOID == pgtype.Int4OID,
				fd.DataTypeOID == pgtype.Int8OID, pgStdlibTyped[fd.DataTypeOID], fd.Format != pgx.TextFormatCode:
				return errRawFallback
			default:
				conv[i] = func(b []byte) any { return text.str(b) }
			}
		}
		var slab []any
		first := true
		for rows.Next() {
			first = false
			raw := rows.RawValues()
			if len(slab) < ncols {
				slab = make([]any, ncols*pgSlabRows)
			}
			vals := slab[:ncols:ncols]
			slab = slab[ncols:]
			for i, b := range raw {
				if b == nil {
					continue // NULL
				}
				v := conv[i](b)
				if err, ok := v.(error); ok {
					return err
				}
				vals[i] = v
			}
			if row(vals) {
				rows.Close()
				return rows.Err()
			}
		}
		return pgRawErr(rows.Err(), first)
	})
	switch {
	case errors.Is(err, errRawFallback), errors.Is(err, driver.ErrBadConn):
		return false, nil
	case err != nil:
		return true, err
	}
	return true, nil
}

// pgRawErr: a connection that broke before the query ran is given back
// as bad, so that the page is read again through database/sql, which
// retries on another (as the stdlib driver has it do).
func pgRawErr(err error, before bool) error {
	if err != nil && before && pgconn.SafeToRetry(err) {
		return driver.ErrBadConn
	}
	return err
}

// pgSlabRows is how many rows' values one slice holds.
const pgSlabRows = 256

// pgBinaryInt is an integer in binary form as an int64, as the stdlib
// driver gives int2, int4 and int8.
func pgBinaryInt(b []byte) any {
	switch len(b) {
	case 2:
		return int64(int16(binary.BigEndian.Uint16(b)))
	case 4:
		return int64(int32(binary.BigEndian.Uint32(b)))
	case 8:
		return int64(binary.BigEndian.Uint64(b))
	}
	return errors.New("storage: an integer of " + strconv.Itoa(len(b)) + " bytes")
}

// pgArenaChunk is the size of the buffers a page's strings and bytes are
// cut from.
const pgArenaChunk = 256 << 10

// pgTextArena makes strings that share large buffers: a page's values
// live and die together.
type pgTextArena struct{ b strings.Builder }

func (a *pgTextArena) str(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if a.b.Cap()-a.b.Len() < len(p) {
		a.b.Reset()
		a.b.Grow(max(pgArenaChunk, len(p)))
	}
	start := a.b.Len()
	a.b.Write(p)
	return a.b.String()[start:]
}

// pgByteArena is pgTextArena for byte slices, each capped at its length
// so that an append copies.
type pgByteArena struct{ b []byte }

func (a *pgByteArena) copy(p []byte) []byte {
	if len(p) == 0 {
		return []byte{}
	}
	if cap(a.b)-len(a.b) < len(p) {
		a.b = make([]byte, 0, max(pgArenaChunk, len(p)))
	}
	start := len(a.b)
	a.b = append(a.b, p...)
	return a.b[start:len(a.b):len(a.b)]
}
