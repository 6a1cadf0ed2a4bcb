package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Verdict is what one check of both sides found.
type Verdict struct {
	Rows     int // rows compared, both sides together
	Files    int // referenced files checked
	Lost     int // keys whose journalled state is missing on a side (a row or an update)
	Doubled  int // keys present on a side that the journal says are gone or never were
	Differ   int // keys whose rows differ between the sides, or are on one side only
	FilesBad int // referenced files missing on the far side, with another SHA-256, or not rewritten to it
	Stuck    int // file records in a state that is not terminal
	Notes    []string
}

// Clean reports whether nothing is wrong.
func (v Verdict) Clean() bool {
	return v.Lost == 0 && v.Doubled == 0 && v.Differ == 0 && v.FilesBad == 0 && v.Stuck == 0
}

func (v *Verdict) note(format string, args ...any) {
	if len(v.Notes) < 40 {
		v.Notes = append(v.Notes, fmt.Sprintf(format, args...))
	}
}

// side is one zone's database and file store as the check sees them.
type side struct {
	name  string
	db    *sql.DB
	store string
}

type row struct {
	app  string // the writer's columns, references as their origin wrote them
	full string // app plus the cursor
	ref  string // the file reference as this side stores it (doc only)
}

// origins maps a reference this side's rows hold for a published copy of
// the other side's file back to the reference at its origin.
func origins(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT foreign_ref, local_ref FROM path_mapping")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var f, l string
		if err := rows.Scan(&f, &l); err != nil {
			return nil, err
		}
		m[l] = f
	}
	return m, rows.Err()
}

func readTable(ctx context.Context, db *sql.DB, table string, back map[string]string) (map[string]row, error) {
	cols := append(append(append([]string{}, keyCols[table]...), appCols[table]...), "updated_at")
	q := "SELECT `" + strings.Join(cols, "`, `") + "` FROM `" + table + "`"
	rs, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]row{}
	nk, na := len(keyCols[table]), len(appCols[table])
	for rs.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, err
		}
		str := func(v sql.NullString) string {
			if !v.Valid {
				return "\x00null"
			}
			return v.String
		}
		var key, app []string
		for _, v := range vals[:nk] {
			key = append(key, str(v))
		}
		var r row
		for i, v := range vals[nk : nk+na] {
			s := str(v)
			if table == "doc" && appCols[table][i] == "path" {
				r.ref = s
				if o, ok := back[s]; ok {
					s = o
				}
			}
			app = append(app, s)
		}
		r.app = strings.Join(app, "\x1f")
		r.full = r.app + "\x1f" + str(vals[nk+na])
		out[strings.Join(key, "\x1f")] = r
	}
	return out, rs.Err()
}

// Check compares both sides with each other and with the writers' journal.
func Check(ctx context.Context, inet, intra side, j *Journal) (Verdict, error) {
	var v Verdict
	sides := []side{inet, intra}
	back := make([]map[string]string, 2)
	for i, s := range sides {
		m, err := origins(ctx, s.db)
		if err != nil {
			return v, fmt.Errorf("%s path_mapping: %w", s.name, err)
		}
		back[i] = m
	}
	for _, t := range tables {
		var got [2]map[string]row
		for i, s := range sides {
			m, err := readTable(ctx, s.db, t, back[i])
			if err != nil {
				return v, fmt.Errorf("%s %s: %w", s.name, t, err)
			}
			got[i] = m
			v.Rows += len(m)
		}
		keys := map[string]bool{}
		for _, k := range j.Keys(t) {
			keys[k] = true
		}
		for i := range got {
			for k := range got[i] {
				keys[k] = true
			}
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			a, inA := got[0][k]
			b, inB := got[1][k]
			if inA != inB || a.full != b.full {
				v.Differ++
				switch {
				case inA && inB:
					v.note("%s %s differs: internet %q, intranet %q", t, show(k), a.full, b.full)
				case inA:
					v.note("%s %s is on the internet only: %q", t, show(k), a.full)
				default:
					v.note("%s %s is on the intranet only: %q", t, show(k), b.full)
				}
			}
			lost, doubled := false, false
			states := [2]string{absent, absent}
			for i, present := range []bool{inA, inB} {
				if present {
					states[i] = got[i][k].app
				}
			}
			// The origin's own database says how a write the writer is
			// unsure of came out: the far side must match it.
			o := 0
			if isIntranetKey(k) {
				o = 1
			}
			originOK, _ := j.Accepts(t, k, states[o])
			for _, i := range []int{o, 1 - o} {
				state := states[i]
				if i != o && originOK {
					switch {
					case state == states[o]:
					case states[o] == absent:
						doubled = true
						v.note("%s %s is still on %s after its delete at its origin: %q", t, show(k), sides[i].name, state)
					case state == absent:
						lost = true
						v.note("%s %s committed at its origin is missing on %s", t, show(k), sides[i].name)
					default:
						lost = true
						v.note("%s %s on %s holds %q, not its origin's %q", t, show(k), sides[i].name, state, states[o])
					}
					continue
				}
				ok, known := j.Accepts(t, k, state)
				if ok {
					continue
				}
				switch {
				case state == absent:
					lost = true
					v.note("%s %s lost on %s (the writer committed it)", t, show(k), sides[i].name)
				case !known:
					doubled = true
					v.note("%s %s on %s was never committed by a writer: %q", t, show(k), sides[i].name, state)
				default:
					if del, _ := j.Accepts(t, k, absent); del {
						doubled = true
						v.note("%s %s came back on %s after its delete: %q", t, show(k), sides[i].name, state)
					} else {
						lost = true
						v.note("%s %s on %s holds %q, not the last committed write", t, show(k), sides[i].name, state)
					}
				}
			}
			if lost {
				v.Lost++
			}
			if doubled {
				v.Doubled++
			}
		}
		if t == "doc" {
			checkFiles(&v, sides, got, j)
		}
	}
	stuck, err := stuckFiles(ctx, sides)
	if err != nil {
		return v, err
	}
	for _, s := range stuck {
		v.Stuck++
		v.note("stuck: %s", s)
	}
	return v, nil
}

// checkFiles checks, for each row that references a file, that the far
// side holds that file under the reference its row now has, with the
// origin's SHA-256.
func checkFiles(v *Verdict, sides []side, got [2]map[string]row, j *Journal) {
	seen := map[string]bool{}
	for k, origin := range got[0] {
		far, ok := got[1][k]
		if !ok {
			continue
		}
		o, f := 0, 1
		if isIntranetKey(k) {
			o, f = 1, 0
			origin, far = far, origin
		}
		ref := origin.ref
		if seen[ref+"\x1f"+far.ref] {
			continue
		}
		seen[ref+"\x1f"+far.ref] = true
		v.Files++
		j.mu.Lock()
		want, known := j.files[ref]
		j.mu.Unlock()
		if !known {
			v.FilesBad++
			v.note("doc %s: %s row references %q, which no writer uploaded", k, sides[o].name, ref)
			continue
		}
		if sum, err := fileSum(sides[o].store, ref); err != nil || sum != want {
			v.FilesBad++
			v.note("doc %s: origin file %q on %s: %v (sha %s)", k, ref, sides[o].name, err, sum)
			continue
		}
		if far.ref == ref {
			v.FilesBad++
			v.note("doc %s: %s row still holds the %s reference %q", k, sides[f].name, sides[o].name, ref)
			continue
		}
		sum, err := fileSum(sides[f].store, far.ref)
		if err != nil || sum != want {
			v.FilesBad++
			v.note("doc %s: %s copy %q of %q: %v (sha %s, want %s)", k, sides[f].name, far.ref, ref, err, sum, want)
		}
	}
}

func isIntranetKey(k string) bool {
	var n int64
	fmt.Sscan(strings.SplitN(k, "\x1f", 2)[0], &n)
	return n > 1_000_000
}

func fileSum(store, ref string) (string, error) {
	f, err := os.Open(filepath.Join(store, filepath.FromSlash(ref)))
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// terminal are the file_record states a record may rest in when all is
// quiet: staged at its origin, published at the far side, or refused.
var terminal = map[string]bool{"stored": true, "published": true, "refused": true}

func stuckFiles(ctx context.Context, sides []side) ([]string, error) {
	var out []string
	for _, s := range sides {
		rows, err := s.db.QueryContext(ctx, "SELECT origin, ref, status, error, attempts FROM file_record")
		if err != nil {
			return nil, fmt.Errorf("%s file_record: %w", s.name, err)
		}
		for rows.Next() {
			var origin, ref, status, msg string
			var attempts int
			if err := rows.Scan(&origin, &ref, &status, &msg, &attempts); err != nil {
				rows.Close()
				return nil, err
			}
			if !terminal[status] {
				out = append(out, fmt.Sprintf("%s file_record %s %q %s (attempts %d) %s", s.name, origin, ref, status, attempts, msg))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func show(k string) string { return "(" + strings.ReplaceAll(k, "\x1f", ",") + ")" }
