package storage

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
)

// A batch's values are in the form of the engine that read them: MySQL
// gives bytes and numbers, PostgreSQL text and bytes, SQLite its storage
// classes. Before a batch is applied, adaptValues puts each value into the
// form this engine takes for its column (dialect.writeValue) and refuses,
// naming the table, key and column, a value the column cannot hold as it
// is: a MySQL zero date in PostgreSQL, or more fraction digits than a
// time or decimal column keeps (which an engine would round in silence).
// The mapping between engines is the README's type table.

// colSpec is what adaptValues needs of a column's declared type.
type colSpec struct {
	typ   string // lower case
	frac  int    // fraction digits a time or decimal column keeps; -1: not such a column
	time  bool   // a date, time or timestamp column
	bytes bool   // a binary column (bytea, BLOB, BINARY, BIT)
}

var (
	precisionRe = regexp.MustCompile(`\((\d+)\)`)
	scaleRe     = regexp.MustCompile(`^(?:decimal|numeric|dec|fixed)\s*\(\s*\d+\s*,\s*(\d+)\s*\)`)
)

// specOf reads a declared type as the dialect reports it.
func specOf(d dialect, typ string) colSpec {
	t := strings.ToLower(strings.TrimSpace(typ))
	s := colSpec{typ: t, frac: -1}
	if strings.HasSuffix(t, "[]") {
		return s
	}
	switch {
	case strings.HasPrefix(t, "datetime"), strings.HasPrefix(t, "timestamp"), strings.HasPrefix(t, "time"):
		s.time = true
		s.frac = d.defaultTimePrecision()
		if m := precisionRe.FindStringSubmatch(t); m != nil {
			s.frac, _ = strconv.Atoi(m[1])
		}
	case t == "date":
		s.time = true
	case strings.HasPrefix(t, "decimal"), strings.HasPrefix(t, "numeric"), strings.HasPrefix(t, "dec("), strings.HasPrefix(t, "fixed"):
		if m := scaleRe.FindStringSubmatch(t); m != nil {
			s.frac, _ = strconv.Atoi(m[1])
		} else if !strings.Contains(t, "(") {
			s.frac = d.defaultDecimalScale()
		} else if m := precisionRe.FindStringSubmatch(t); m != nil {
			s.frac = 0 // DECIMAL(p): no fraction
		}
	}
	s.bytes = t == "bytea" || strings.Contains(t, "blob") || strings.Contains(t, "binary") || strings.HasPrefix(t, "bit")
	return s
}

// adaptValues gives b's rows their values in this engine's form (see
// above), in new slices.
func (db *DB) adaptValues(ctx context.Context, t gapsync.Table, names []string, b *batch.Batch) error {
	cols, err := db.columns(ctx, t.Name)
	if err != nil {
		return err
	}
	specs := make([]colSpec, len(names))
	for i, n := range names {
		c, _ := findColumn(cols, n)
		specs[i] = specOf(db.d, c.Type)
	}
	keyPos := rules.Positions(names, t.Key)
	for k, r := range b.Rows {
		// Each row gets values of its own: the caller's may be shared
		// (several batches built from one set of rows, applied at once).
		out := make([]any, len(r.Values))
		for i, v := range r.Values {
			if v == nil {
				continue
			}
			nv, err := fitValue(db.d, specs[i], v)
			if err != nil {
				return fmt.Errorf("%w: table %s, key %s, column %s (%s): %v", gapsync.ErrRejected, t.Name,
					keyString(rules.Pick(r.Values, keyPos)), names[i], specs[i].typ, err)
			}
			out[i] = nv
		}
		b.Rows[k].Values = out
	}
	return nil
}

// fitValue checks that v fits s exactly and returns it in the dialect's
// write form.
func fitValue(d dialect, s colSpec, v any) (any, error) {
	if s.frac >= 0 || s.time {
		var text string
		switch x := v.(type) {
		case []byte:
			text = string(x)
		case string:
			text = x
		}
		if s.frac >= 0 {
			if n := fractionDigits(text, s.time); n > s.frac {
				return nil, fmt.Errorf("value %q has %d significant fraction digits and the column keeps %d: it would be rounded; widen the column", clip(text), n, s.frac)
			}
		}
	}
	return d.writeValue(s, v)
}

// fractionDigits counts the digits after the decimal point of a number or
// of a time's seconds, less trailing zeros.
func fractionDigits(s string, isTime bool) int {
	if isTime {
		// The seconds' fraction: after the last '.', up to a zone or era.
		i := strings.LastIndexByte(s, '.')
		if i < 0 || strings.IndexByte(s[:i], ':') < 0 {
			return 0
		}
		s = s[i+1:]
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		return len(strings.TrimRight(s[:end], "0"))
	}
	i := strings.IndexByte(s, '.')
	if i < 0 || strings.ContainsAny(s, "eE") {
		return 0
	}
	return len(strings.TrimRight(s[i+1:], "0"))
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// keyString is a key's values as an operator reads them.
func keyString(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case []byte:
			parts[i] = strconv.Quote(string(x))
		case string:
			parts[i] = strconv.Quote(x)
		default:
			parts[i] = fmt.Sprint(x)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// textOf is v as text, the form every engine parses for every type.
func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}
