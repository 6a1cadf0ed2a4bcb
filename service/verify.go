package service

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gapsync/gapsync"
)

// VerifyFlag is -verify: given alone it verifies every enabled table;
// -verify=orders,docs (or -verify followed by the list) names them.
type VerifyFlag struct {
	On     bool
	Tables []string
}

func (f *VerifyFlag) String() string { return strings.Join(f.Tables, ",") }

// Set takes "true" (the flag alone), "false", or a list of tables.
func (f *VerifyFlag) Set(s string) error {
	switch s {
	case "true":
		f.On = true
	case "false":
		f.On = false
	default:
		f.On, f.Tables = true, gapsync.SplitList(s)
	}
	return nil
}

// IsBoolFlag lets -verify stand alone.
func (f *VerifyFlag) IsBoolFlag() bool { return true }

// TakeArgs takes the list of tables from the arguments left after the
// flags (-verify orders,docs), when the flag came alone; it returns the
// arguments it did not take.
func (f *VerifyFlag) TakeArgs(args []string) []string {
	if f.On && len(f.Tables) == 0 && len(args) > 0 {
		f.Tables = gapsync.SplitList(args[0])
		return args[1:]
	}
	return args
}

// ErrDiffer marks a verification that found rows that differ (exit
// status 3).
var ErrDiffer = errors.New("the two sides differ")

// WriteVerify prints one line per row that differs (table, key, kind,
// side, columns) and the summary line "verify: T tables, R rows
// compared, D differ"; it returns an error wrapping ErrDiffer when D is
// not zero.
func WriteVerify(w io.Writer, vs []gapsync.TableVerify) error {
	var rows int64
	differ := 0
	for _, v := range vs {
		rows += v.Rows
		for _, d := range v.Diffs {
			differ++
			line := fmt.Sprintf("%s\t%s\t%s on %s", d.Table, d.KeyText(), d.Kind, d.Side)
			if d.Kind == gapsync.DiffMissing {
				line = fmt.Sprintf("%s\t%s\tmissing on %s", d.Table, d.KeyText(), d.Side)
			}
			if len(d.Columns) > 0 {
				line += "\t" + strings.Join(d.Columns, ",")
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintf(w, "verify: %d tables, %d rows compared, %d differ\n", len(vs), rows, differ)
	if differ > 0 {
		return fmt.Errorf("%w: %d rows", ErrDiffer, differ)
	}
	return nil
}
