package syncer

import (
	"testing"

	"github.com/matryer/is"
)

// The kinds of value column types hold, as the three engines spell them,
// and which changes of type keep every value.
func TestTypeKinds(t *testing.T) {
	is := is.New(t)
	for typ, kind := range map[string]string{
		"bigint(20) unsigned": "integer", "int(11)": "integer", "integer": "integer", "int8": "integer", "tinyint(1)": "integer",
		"decimal(10,2)": "decimal", "numeric": "decimal", "double": "float", "real": "float", "boolean": "bool",
		"bit(8)": "bits", "datetime(6)": "time", "timestamp with time zone": "time", "interval": "time", "year": "time",
		"longblob": "binary", "bytea": "binary", "varbinary(16)": "binary", "point": "binary",
		"jsonb": "json", "json": "json", "varchar(200)": "text", "character varying(20)": "text", "tinytext": "text",
		"enum('a','b')": "text", "uuid": "text",
	} {
		if got := typeKind(typ); got != kind {
			t.Errorf("typeKind(%q) = %q, want %q", typ, got, kind)
		}
	}
	is.True(compatibleTypes("int(11)", "bigint(20)"))
	is.True(compatibleTypes("int", "decimal(20,0)"))
	is.True(compatibleTypes("int", "varchar(30)"))
	is.True(compatibleTypes("varchar(10)", "text"))
	is.True(!compatibleTypes("varchar(10)", "int"))
	is.True(!compatibleTypes("datetime(6)", "bigint"))
	is.True(!compatibleTypes("blob", "varchar(10)"))
	is.True(!compatibleTypes("double", "bigint"))
}
