package rules_test

import (
	"math"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/rules"
)

// One value as each engine's reader gives it hashes alike; values that
// differ, NULL and empty among them, do not.
func TestCanonical(t *testing.T) {
	is := is.New(t)
	same := []struct {
		class string
		a, b  any // MySQL's form, PostgreSQL's (or SQLite's)
	}{
		{"", int64(42), "42"},
		{"", uint64(18446744073709551615), "18446744073709551615"},
		{"", []byte("12.50"), "12.50"},
		{"", []byte("中文 😀"), "中文 😀"},
		{"", []byte(nil), []byte{}},
		{rules.ClassTime, []byte("2026-01-01 00:00:00"), "2026-01-01 00:00:00.000000"},
		{rules.ClassTime, []byte("2026-01-01 00:00:00.120000"), "2026-01-01 00:00:00.12"},
		{rules.ClassTime, []byte("23:59:59.999999"), "23:59:59.999999"},
		{rules.ClassTime, []byte("2026-01-01"), "2026-01-01"},
		{rules.ClassFloat32, float32(3.4028235e38), "3.4028235e+38"},
		{rules.ClassFloat64, float64(123456789012), "123456789012"},
		{rules.ClassFloat64, float64(0.30000000000000004), "0.30000000000000004"},
		{rules.ClassBool, int64(1), "true"},
		{rules.ClassBool, int64(0), "false"},
		{"", true, int64(1)},
	}
	for _, c := range same {
		is.Equal(rules.VerifyHash([]string{"x"}, []string{c.class}, []any{c.a}), rules.VerifyHash([]string{"x"}, []string{c.class}, []any{c.b}))
	}
	differ := []struct {
		class string
		a, b  any
	}{
		{"", nil, []byte{}},
		{"", nil, ""},
		{"", []byte("12.50"), []byte("12.5")}, // two scales are two values
		{"", []byte("1.50"), "1.5"},
		{rules.ClassTime, []byte("2026-01-01 00:00:00.000001"), "2026-01-01 00:00:00"},
		{rules.ClassFloat64, float64(0.1), math.Nextafter(0.1, 1)},
		{"", []byte("中"), []byte("仲")},
		{"", []byte{0x00, 0xff}, []byte{0x00, 0xfe}},
		{rules.ClassBool, "true", "false"},
	}
	for _, c := range differ {
		is.True(rules.VerifyHash([]string{"x"}, []string{c.class}, []any{c.a}) != rules.VerifyHash([]string{"x"}, []string{c.class}, []any{c.b}))
	}
}
