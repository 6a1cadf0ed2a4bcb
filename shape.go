package gapsync

import "time"

// Shape is one side's view of a table named in sync_config, as the setup
// check compares it: the configuration row, and the table as the database
// describes it. It holds names and types only, never row data.
type Shape struct {
	Name string `json:"name"`
	// Config is the table's sync_config row on this side, nil when the
	// table is not named there.
	Config *Table `json:"config,omitempty"`
	// Exists reports whether the table exists. The fields below are set
	// only for a table that exists and is named in sync_config.
	Exists bool `json:"exists"`
	// Dialect is the engine: "mysql", "postgres" or "sqlite".
	Dialect string `json:"dialect,omitempty"`
	// Quote is the engine's identifier quote ("`" on MySQL, `"` on
	// PostgreSQL and SQLite), and AlterType its statement that changes a
	// column's type, as a format of the quoted table, the quoted column
	// and the type: the forms of the statements printed for an operator
	// to run on this side. Empty (a peer that does not say) means `"` and
	// "ALTER TABLE %s ALTER COLUMN %s TYPE %s".
	Quote     string `json:"quote,omitempty"`
	AlterType string `json:"alter_type,omitempty"`
	// Charset is the table's default character set ("utf8mb4", "latin1",
	// …); empty where the engine has none (SQLite stores UTF-8).
	Charset string        `json:"charset,omitempty"`
	Columns []ColumnShape `json:"columns,omitempty"`
	// Keys are the primary key and the unique keys.
	Keys []KeyShape `json:"keys,omitempty"`
	// Indexes lists the columns of every index, keys included, in order.
	Indexes [][]string `json:"indexes,omitempty"`
	// Tombstones reports that the table has a tombstone table on this
	// side: deletions of its rows travel from here (a repair deletes the
	// far side's extra rows only then).
	Tombstones bool `json:"tombstones,omitempty"`
}

// ColumnShape is one column of a Shape.
type ColumnShape struct {
	Name string `json:"name"`
	Type string `json:"type"` // as the engine spells it, e.g. "varchar(200)"
	// Charset of a text column ("" for other columns, and on SQLite).
	Charset  string `json:"charset,omitempty"`
	Nullable bool   `json:"nullable"`
	// Class is what a verification's canonical form of the column's
	// values needs of its type (rules.ClassTime, …; "" for none), as this
	// side's engine classes it.
	Class string `json:"class,omitempty"`
}

// KeyShape is a primary or unique key of a Shape.
type KeyShape struct {
	Name    string   `json:"name"`
	Primary bool     `json:"primary"`
	Columns []string `json:"columns"`
}

// Column returns the column called name, and whether there is one.
func (s Shape) Column(name string) (ColumnShape, bool) {
	for _, c := range s.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return ColumnShape{}, false
}

// Parked is a table that sync stopped in one direction because its rows
// were refused for good (ErrRejected), until an operator resumes it.
type Parked struct {
	Table     string
	Direction Direction
	Reason    string
	Since     time.Time
}

// MissingColumn is a column that one side of a table has and the side
// that receives it lacks (schema drift, kept on the internet side). The
// shared columns keep syncing; the column's values wait until an operator
// adds it there (Alter is the statement), and every row is then sent
// again so that they arrive.
type MissingColumn struct {
	Table     string
	Direction Direction // the direction whose receiving side lacks it
	Column    string
	Alter     string
	Since     time.Time
}
