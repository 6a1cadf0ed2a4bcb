package rules

import (
	"strconv"
	"strings"
)

// Value classes: what a value's canonical form (Canonical) needs to know
// of its column's declared type. Each engine's dialect names the class of
// each of its types; a column of no class here is "".
const (
	// ClassTime is a date, time or timestamp column.
	ClassTime = "time"
	// ClassFloat32 and ClassFloat64 are binary floating-point columns of
	// 4 and 8 bytes.
	ClassFloat32 = "float32"
	ClassFloat64 = "float64"
	// ClassBool is a boolean column that its engine reads as true or
	// false (PostgreSQL's boolean; MySQL's BOOLEAN is TINYINT(1), read as
	// a number).
	ClassBool = "bool"
)

// Canonical is the form of a value that a verification hashes, one form
// for every engine that reads the same value: text as bytes, a number as
// its decimal text (a float in the shortest text that reads back
// bit-exact at its column's width), a boolean as 1 or 0, a time with the
// trailing zeros of its fraction cut, so that MySQL's DATETIME(0)
// "2026-01-01 00:00:00" and PostgreSQL's fixed "… 00:00:00.000000" agree.
// Binary values stay bytes, and NULL stays nil (an empty value is not
// NULL). It does not bring two spellings of one JSON document, or two
// scales of one decimal, together: those differ.
func Canonical(class string, v any) any {
	var text string
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		if class == "" {
			if x == nil {
				return []byte{}
			}
			return x
		}
		text = string(x)
	case string:
		text = x
	case int64:
		return []byte(strconv.FormatInt(x, 10))
	case uint64:
		return []byte(strconv.FormatUint(x, 10))
	case int:
		return []byte(strconv.Itoa(x))
	case float32:
		return []byte(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		if class == ClassFloat32 {
			return []byte(strconv.FormatFloat(x, 'g', -1, 32))
		}
		return []byte(strconv.FormatFloat(x, 'g', -1, 64))
	case bool:
		if x {
			return []byte("1")
		}
		return []byte("0")
	default:
		return v
	}
	switch class {
	case ClassTime:
		text = trimFraction(text)
	case ClassFloat32, ClassFloat64:
		bits := 64
		if class == ClassFloat32 {
			bits = 32
		}
		if f, err := strconv.ParseFloat(text, bits); err == nil {
			text = strconv.FormatFloat(f, 'g', -1, bits)
		}
	case ClassBool:
		switch text {
		case "true", "t":
			text = "1"
		case "false", "f":
			text = "0"
		}
	}
	return []byte(text)
}

// trimFraction cuts the trailing zeros of a time's fraction of a second,
// and the point when nothing is left of it.
func trimFraction(s string) string {
	i := strings.LastIndexByte(s, '.')
	if i < 0 || strings.IndexByte(s[:i], ':') < 0 {
		return s
	}
	end := i + 1
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	frac := strings.TrimRight(s[i+1:end], "0")
	if frac == "" {
		return s[:i] + s[end:]
	}
	return s[:i+1] + frac + s[end:]
}

// VerifyHash is the hash a verification compares for one row: RowHash
// of its values in their Canonical form, classes[i] being the class of
// names[i] (nil: none known), so that equal rows hash equal on MySQL,
// PostgreSQL and SQLite alike.
func VerifyHash(names, classes []string, vals []any) string {
	canon := make([]any, len(vals))
	for i, v := range vals {
		class := ""
		if i < len(classes) {
			class = classes[i]
		}
		canon[i] = Canonical(class, v)
	}
	return RowHash(names, canon)
}

// VerifyKey identifies a row by its key values in their Canonical form
// (classes[i] the class of vals[i]), so that one key read by two engines
// is one key.
func VerifyKey(classes []string, vals []any) string {
	canon := make([]any, len(vals))
	for i, v := range vals {
		class := ""
		if i < len(classes) {
			class = classes[i]
		}
		canon[i] = Canonical(class, v)
	}
	return KeyHash(canon)
}
