package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
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
		if v.Resumed > 0 {
			fmt.Fprintf(w, "%s\tcontinued after %d rows compared before a stop\n", v.Table, v.Resumed)
		}
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

// Verify runs a verification of tables (none: every enabled one) with o
// (nil: the defaults) and prints it (WriteVerify); one that stopped
// before its end (a process killed) is continued. With repair, when rows
// differ, it prints them, repairs them (Coordinator.Repair), prints each
// repair, verifies again from the start and prints that: the error wraps
// ErrDiffer only when rows still differ.
func Verify(ctx context.Context, w io.Writer, c *syncer.Coordinator, tables []string, repair bool, o *syncer.VerifyOptions) error {
	vs, err := c.Verify(ctx, tables, o)
	if err != nil {
		return err
	}
	err = WriteVerify(w, vs)
	if !repair || !errors.Is(err, ErrDiffer) {
		return err
	}
	rs, err := c.Repair(ctx, vs)
	for _, r := range rs {
		state := "repaired (" + r.Action + ")"
		if !r.Done {
			state = "not repaired: " + r.Reason
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", r.Table, r.KeyText(), state)
	}
	if err != nil {
		return err
	}
	again := syncer.VerifyOptions{Fresh: true}
	if o != nil {
		again = *o
		again.Fresh = true
	}
	if vs, err = c.Verify(ctx, tables, &again); err != nil {
		return err
	}
	fmt.Fprint(w, "after repair: ")
	return WriteVerify(w, vs)
}
