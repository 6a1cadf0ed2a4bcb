package gapsync

import (
	"strconv"
	"time"
)

// Side names a zone in a conflict.
type Side string

const (
	Internet Side = "internet"
	Intranet Side = "intranet"
)

// Version is one side's state of a row in a conflict.
type Version struct {
	Deleted bool  // the row was deleted on this side (values hold the key and the deletion time in the cursor column)
	Values  []any // in Conflict.Columns order; package batch value types
}

// Conflict is one primary key changed on both sides since they last agreed.
type Conflict struct {
	Table    string
	Columns  []string
	Key      []string // key column names
	Cursor   string   // cursor column name
	Internet Version
	Intranet Version
}

// CursorOf returns the cursor value of v as text ("" when NULL): a time
// in the database's form, an integer in decimal. Compare two of them with
// CompareBounds.
func (c Conflict) CursorOf(v Version) string {
	for i, n := range c.Columns {
		if n == c.Cursor {
			switch x := v.Values[i].(type) {
			case []byte:
				return string(x)
			case string:
				return x
			case int64:
				return strconv.FormatInt(x, 10)
			case uint64:
				return strconv.FormatUint(x, 10)
			case nil:
				return ""
			}
		}
	}
	return ""
}

// Resolver settles conflicts. Resolve must be deterministic and fast; it
// runs in the coordinator. Name is recorded with each conflict.
type Resolver interface {
	Name() string
	Resolve(Conflict) Side
}

// NewestWins keeps the version with the greater cursor value (the later
// change, by each database's clock; for an integer cursor the greater
// number); on a tie the internet side wins. It is the default.
type NewestWins struct{}

func (NewestWins) Name() string { return "newest-wins" }
func (NewestWins) Resolve(c Conflict) Side {
	if CompareBounds(c.CursorOf(c.Intranet), c.CursorOf(c.Internet)) > 0 {
		return Intranet
	}
	return Internet
}

// InternetWins always keeps the internet side's version.
type InternetWins struct{}

func (InternetWins) Name() string          { return "internet-wins" }
func (InternetWins) Resolve(Conflict) Side { return Internet }

// IntranetWins always keeps the intranet side's version.
type IntranetWins struct{}

func (IntranetWins) Name() string          { return "intranet-wins" }
func (IntranetWins) Resolve(Conflict) Side { return Intranet }

// ResolverFunc adapts a function; Label is what the conflict log records.
type ResolverFunc struct {
	Label string
	Fn    func(Conflict) Side
}

func (r ResolverFunc) Name() string            { return r.Label }
func (r ResolverFunc) Resolve(c Conflict) Side { return r.Fn(c) }

// ConflictRecord is one row of the sync_conflict table, for operators.
type ConflictRecord struct {
	RunID      string
	Table      string
	Key        string // the key values as JSON
	Policy     string
	Winner     Side
	Internet   string // the internet version as JSON
	Intranet   string // the intranet version as JSON
	DetectedAt time.Time
}
