package storage

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gapsync/gapsync"
)

// Table patterns in sync_config (see gapsync.IsPattern): a row named
// "app_*" stands for every table of this database it matches. Tables,
// Table, Shapes, Status and Reload see the tables it stands for; Config
// returns the rows as they are.

// tableNames lists the base tables of this database (this schema on
// PostgreSQL), by name.
func (db *DB) tableNames(ctx context.Context) ([]string, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.listTables())
	if err != nil {
		return nil, fmt.Errorf("storage: list tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("storage: list tables: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list tables: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

// expand replaces the pattern rows of cfg by the tables they stand for,
// in name order, and returns which tables each pattern took. A table with
// a row of its own keeps it; of several patterns that match a table the
// one of highest gapsync.PatternWeight wins (then the first by name),
// enabled or not, so that a disabled pattern can keep some tables out of
// a wider one.
func (db *DB) expand(ctx context.Context, cfg []gapsync.Table) ([]gapsync.Table, map[string][]string, error) {
	var (
		out  []gapsync.Table
		pats []gapsync.Table
	)
	own := map[string]bool{}
	for _, t := range cfg {
		if gapsync.IsPattern(t.Name) {
			pats = append(pats, t)
			continue
		}
		own[strings.ToLower(t.Name)] = true
		out = append(out, t)
	}
	matches := map[string][]string{}
	if len(pats) == 0 {
		return out, matches, nil
	}
	sort.SliceStable(pats, func(i, j int) bool {
		wi, wj := gapsync.PatternWeight(pats[i].Name), gapsync.PatternWeight(pats[j].Name)
		if wi != wj {
			return wi > wj
		}
		return pats[i].Name < pats[j].Name
	})
	names, err := db.tableNames(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range pats {
		matches[p.Name] = nil
	}
	for _, n := range names {
		if own[strings.ToLower(n)] {
			continue
		}
		for _, p := range pats {
			if gapsync.MatchTable(p.Name, n) {
				t := p
				t.Name = n
				out = append(out, t)
				matches[p.Name] = append(matches[p.Name], n)
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b gapsync.Table) int { return strings.Compare(a.Name, b.Name) })
	return out, matches, nil
}

// expandedConfig is Config with the pattern rows expanded.
func (db *DB) expandedConfig(ctx context.Context) ([]gapsync.Table, error) {
	cfg, err := db.Config(ctx)
	if err != nil {
		return nil, err
	}
	out, _, err := db.expand(ctx, cfg)
	return out, err
}

// PatternMatches returns, for each enabled pattern row of sync_config,
// the tables of this database it stands for (none: an empty list), for
// the setup check. It only reads.
func (db *DB) PatternMatches(ctx context.Context) (map[string][]string, error) {
	cfg, err := db.Config(ctx)
	if err != nil {
		return nil, err
	}
	_, m, err := db.expand(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg {
		if gapsync.IsPattern(t.Name) && !t.Enabled {
			delete(m, t.Name)
		}
	}
	return m, nil
}

// patternFor returns the pattern row that stands for table name, when no
// row of its own names it: the gateway's lookup of a table that a
// pattern configures.
func (db *DB) patternFor(ctx context.Context, name string) (gapsync.Table, bool, error) {
	if gapsync.IsMetadataTable(name) {
		return gapsync.Table{}, false, nil
	}
	var rows []ConfigRow
	if err := db.bun.NewSelect().Model(&rows).Where("table_name LIKE ? OR table_name LIKE ?", "%*%", "%?%").Scan(ctx); err != nil {
		return gapsync.Table{}, false, fmt.Errorf("storage: read sync_config: %w", err)
	}
	var best *gapsync.Table
	for _, r := range rows {
		t := r.table()
		if !gapsync.MatchTable(t.Name, name) {
			continue
		}
		if best == nil || gapsync.PatternWeight(t.Name) > gapsync.PatternWeight(best.Name) ||
			(gapsync.PatternWeight(t.Name) == gapsync.PatternWeight(best.Name) && t.Name < best.Name) {
			best = &t
		}
	}
	if best == nil {
		return gapsync.Table{}, false, nil
	}
	t := *best
	t.Name = name
	return t, true, nil
}
