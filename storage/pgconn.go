package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
)

// pgConnector hands out pgx connections whose statements may use ? for
// their parameters, as every statement gapsync builds does: each ?
// outside a string, a quoted name, a dollar-quoted body or a comment is
// numbered ($1, $2, …) on its way to the server.
type pgConnector struct {
	driver.Connector
}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		return conn, nil
	}
	return &pgConn{Conn: sc}, nil
}

// pgConn is a pgx connection that numbers ? parameters.
type pgConn struct {
	*stdlib.Conn
}

func (c *pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.Conn.Prepare(numberParams(query))
}

func (c *pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, numberParams(query))
}

func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) > 0 {
		query = numberParams(query)
	}
	return c.Conn.ExecContext(ctx, query, args)
}

func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(args) > 0 {
		query = numberParams(query)
	}
	return c.Conn.QueryContext(ctx, query, args)
}

// numberParams replaces each ? parameter of query by $1, $2, …, leaving
// alone those inside '…' and E'…' strings, "…" names, $tag$…$tag$ bodies,
// and -- and /* */ comments.
func numberParams(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i++
			continue
		case c == '\'' || c == '"':
			// E'…' strings take backslash escapes; a doubled quote is
			// one quote in every kind.
			esc := c == '\'' && i > 0 && (query[i-1] == 'E' || query[i-1] == 'e') && (i < 2 || !isIdentByte(query[i-2]))
			j := quotedEnd(query, i, esc)
			b.WriteString(query[i:j])
			i = j
			continue
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j
			continue
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			j := strings.Index(query[i+2:], "*/")
			end := len(query)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(query[i:end])
			i = end
			continue
		case c == '$' && (i == 0 || !isIdentByte(query[i-1])):
			if tag, ok := dollarTag(query[i:]); ok {
				j := strings.Index(query[i+len(tag):], tag)
				end := len(query)
				if j >= 0 {
					end = i + len(tag) + j + len(tag)
				}
				b.WriteString(query[i:end])
				i = end
				continue
			}
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

// dollarTag returns the $tag$ that s starts with, if it is one.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 || (j > 1 && c >= '0' && c <= '9'):
		default:
			return "", false
		}
	}
	return "", false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// quotedEnd returns the index just past the quoted text that starts at
// query[i] (its quote character ends it, doubled it is part of it).
func quotedEnd(query string, i int, backslash bool) int {
	q := query[i]
	j := i + 1
	for j < len(query) {
		switch {
		case backslash && query[j] == '\\':
			j += 2
			continue
		case query[j] == q:
			if j+1 < len(query) && query[j+1] == q {
				j += 2
				continue
			}
			return j + 1
		}
		j++
	}
	return len(query)
}

// errNoCopy: the connection is not a pgx one.
var errNoCopy = errors.New("storage: COPY needs a pgx connection")

// pgCopyFrom runs the COPY … FROM STDIN statement query on conn's pgx
// connection (in its transaction, if one is open), with data as its input,
// and returns the rows it wrote.
func pgCopyFrom(ctx context.Context, conn *sql.Conn, query string, data io.Reader) (int64, error) {
	var n int64
	err := conn.Raw(func(dc any) error {
		pc, ok := dc.(*pgConn)
		if !ok {
			return errNoCopy
		}
		tag, err := pc.Conn.Conn().PgConn().CopyFrom(ctx, data, query)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
