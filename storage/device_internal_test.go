package storage

import (
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/batch"
)

// Over the text protocol a FLOAT column is read through a DOUBLE, and the
// connection knows the result column by its name; nothing else changes.
func TestMySQLTextSelectExpr(t *testing.T) {
	is := is.New(t)
	text, bin := mysqlDialect{text: true}, mysqlDialect{}
	is.Equal(text.SelectExpr("fl", "float"), "CAST(`fl` AS DOUBLE)")
	is.Equal(text.SelectExpr("f`x", "FLOAT UNSIGNED"), "CAST(`f``x` AS DOUBLE)")
	is.Equal(text.SelectExpr("db", "double"), "`db`")
	is.Equal(text.SelectExpr("de", "decimal(65,30)"), "`de`")
	is.Equal(text.SelectExpr("bt", "bit(64)"), "`bt`")
	is.Equal(bin.SelectExpr("fl", "float"), "`fl`")
	is.True(isMySQLFloatRead(text.SelectExpr("fl", "float")))
	is.True(isMySQLFloatRead(text.SelectExpr("f`x", "float")))
	is.True(!isMySQLFloatRead("fl"))
	is.True(!isMySQLFloatRead("CAST(fl AS CHAR)"))
}

// A row's text size covers every value escaped at worst.
func TestRowTextSize(t *testing.T) {
	is := is.New(t)
	r := batch.Row{Values: []any{int64(-1), nil, []byte{0, 0}, "中", float32(0.1)}}
	is.Equal(rowTextSize(r), 3+(26+2)+(4+2)+(2*2+12+2)+(2*3+12+2)+(26+2))
	s := "ab"
	is.Equal(textSize([]*string{&s, nil}), 12+6+4+6)
	is.Equal(textSize([][]byte{{1}, {}}), 12+8+6)
}
