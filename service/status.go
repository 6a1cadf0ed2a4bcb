package service

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
)

// WriteStatus prints st for an operator: a line per table and direction,
// then the errors and parkings in full, then the file records by status
// and the failed ones by reason. With asJSON it writes st as one JSON
// document instead.
func WriteStatus(w io.Writer, st *storage.Status, asJSON bool) error {
	if asJSON {
		return writeJSON(w, st)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tDIR\tSTATE\tLAST GOOD WINDOW\tAGE\tLAST RUN\tROWS\tPENDING\tCONFLICTS/DAY")
	var notes []string
	for _, t := range st.Tables {
		window, age := t.Window, "never"
		if window == "" {
			window = "-"
		}
		if t.AgeSeconds >= 0 {
			age = (time.Duration(t.AgeSeconds) * time.Second).String()
		}
		last, rows := "-", "-"
		if r := t.LastRun; r != nil {
			last = r.Status + " " + st.At.Sub(r.FinishedAt).Round(time.Second).String() + " ago"
			rows = fmt.Sprint(r.Rows)
		}
		pending := "?"
		if t.Pending >= 0 {
			pending = fmt.Sprint(t.Pending)
			if t.Pending >= storage.PendingCap {
				pending = "≥" + pending
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", t.Table, t.Direction, tableState(t), window, age, last, rows, pending, t.ConflictsDay)
		if p := t.Parked; p != nil {
			notes = append(notes, fmt.Sprintf("%s %s: parked since %s: %s\n  fix the cause, then: -resume %s",
				t.Table, t.Direction, p.Since.Format(time.RFC3339), oneLine(p.Reason), t.Table))
		} else if t.LastError != "" {
			notes = append(notes, fmt.Sprintf("%s %s: last error: %s", t.Table, t.Direction, oneLine(t.LastError)))
		}
		for _, m := range t.Missing {
			notes = append(notes, fmt.Sprintf("%s %s: column %s is missing on the receiving side since %s; the other columns sync, its values wait\n  run there: %s",
				t.Table, t.Direction, m.Column, m.Since.Format(time.RFC3339), oneLine(m.Alter)))
		}
		if p := t.InProgress; p != nil {
			left := "rows left not known"
			if p.Left >= 0 {
				left = fmt.Sprintf("about %d rows left", p.Left)
			}
			from := p.From
			if from == "" {
				from = "(first row)"
			}
			notes = append(notes, fmt.Sprintf("%s %s: window %s..%s in progress since %s: %d rows done, %s (checkpoint %s ago); the next run goes on from there",
				t.Table, t.Direction, from, p.To, p.StartedAt.Format(time.RFC3339), p.Rows, left, st.At.Sub(p.UpdatedAt).Round(time.Second)))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if len(st.Files) > 0 {
		fmt.Fprintln(w, "\nFILES (origin, status, count, bytes)")
		for _, f := range st.Files {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", f.Origin, f.Status, f.Count, humanBytes(f.Bytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.Failures) > 0 {
		fmt.Fprintln(w, "\nFILES FAILED OR REFUSED, BY REASON")
		for _, f := range st.Failures {
			fmt.Fprintf(tw, "  %d\t%s %s\t%s\t(e.g. %s)\n", f.Count, f.Origin, f.Status, f.Reason, oneLine(f.Example))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.Verify) > 0 {
		fmt.Fprintln(w, "\nVERIFY (table, last finished, rows compared, differ, under way)")
		for _, v := range st.Verify {
			last, running := "never", "-"
			if !v.At.IsZero() {
				last = st.At.Sub(v.At).Round(time.Second).String() + " ago"
			}
			if v.Running > 0 {
				running = fmt.Sprintf("%d rows, kept %s ago", v.Running, st.At.Sub(v.RunningAt).Round(time.Second))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\n", v.Table, last, v.Rows, v.Differ, running)
		}
		return tw.Flush()
	}
	return nil
}

// tableState is one word for a table's direction: parked, disabled,
// failing (its last run failed), reload (it starts again from its first
// row), new (never ran) or ok.
func tableState(t storage.TableStatus) string {
	switch {
	case t.Parked != nil:
		return "parked"
	case !t.Enabled:
		return "disabled"
	case t.LastRun == nil:
		return "new"
	case t.LastRun.Status == storage.StatusFailed:
		return "failing"
	case t.LastRun.Status == storage.StatusReload:
		return "reload"
	}
	return "ok"
}

// WritePlan prints what a dry run counted: a line per table and
// direction, then the file records waiting. With asJSON it writes p as
// one JSON document instead.
func WritePlan(w io.Writer, p *syncer.Plan, asJSON bool) error {
	if asJSON {
		return writeJSON(w, p)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tDIR\tFROM\tTO\tROWS\tBYTES\tFILES\tNEW FILES\tNOTE")
	var rows int64
	for _, r := range p.Runs {
		note := ""
		switch {
		case r.Parked:
			note = "parked: skipped"
		case r.Err != "":
			note = "not counted: " + oneLine(r.Err)
		}
		from := r.Window.From
		if from == "" {
			from = "(first row)"
		}
		rows += r.Rows
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", r.Table, r.Direction, from, r.Window.To, r.Rows, humanBytes(r.Bytes), r.Files, r.NewFiles, note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var waiting []string
	for _, s := range []string{"extracted", "failed", "stored", "incoming", "partial"} {
		if n := p.FilesWaiting[s]; n > 0 {
			waiting = append(waiting, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(waiting) > 0 {
		fmt.Fprintf(w, "file records waiting for the file flow: %s\n", strings.Join(waiting, ", "))
	}
	fmt.Fprintf(w, "dry run: one cycle would move %d rows; nothing was written\n", rows)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
