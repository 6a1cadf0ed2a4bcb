package service

import (
	"flag"
	"fmt"
	"strings"

	"github.com/gapsync/gapsync"
)

// SelectionFlags are the per-table column and row selection of a main's
// -table entries (gapsync.Table.Columns, Exclude, Filter, FilterAs), each
// a repeatable NAME=VALUE flag:
//
//	-columns orders=id,status,total    send only these columns (and the key, cursor, soft-delete and file columns)
//	-exclude users=password_hash,phone never send these
//	-filter  "orders=region = 'north' AND status <> 'draft'"
//	-filter-as orders=delete           a row changed out of the filter travels as a deletion
//
// Each side's own settings say what leaves it.
type SelectionFlags struct {
	columns, exclude, filter, filterAs map[string]string
}

// SelectionNames are the flag names, for Load's repeatable list.
var SelectionNames = []string{"columns", "exclude", "filter", "filter-as"}

// Register adds the flags to fs.
func (s *SelectionFlags) Register(fs *flag.FlagSet) {
	s.columns, s.exclude, s.filter, s.filterAs = map[string]string{}, map[string]string{}, map[string]string{}, map[string]string{}
	add := func(name, help string, m map[string]string) {
		fs.Func(name, help, func(v string) error {
			table, val, ok := strings.Cut(v, "=")
			table = strings.TrimSpace(table)
			if !ok || table == "" {
				return fmt.Errorf("want TABLE=VALUE, got %q", v)
			}
			if _, dup := m[table]; dup {
				return fmt.Errorf("-%s given twice for table %s", name, table)
			}
			m[table] = strings.TrimSpace(val)
			return nil
		})
	}
	add("columns", "send only these columns of a -table, as `TABLE=COL,COL` (its key, cursor, soft-delete and file columns always go); repeatable", s.columns)
	add("exclude", "never send these columns of a -table, as `TABLE=COL,COL`; repeatable", s.exclude)
	add("filter", "send only the rows of a -table that match a condition, as `TABLE=CONDITION` (columns, literals, = <> < <= > >=,\nAND OR NOT, IS [NOT] NULL, IN, LIKE, BETWEEN; nothing else); repeatable", s.filter)
	add("filter-as", "what a row changed out of the -filter does, as `TABLE=delete` (travels as a deletion; default: it stops travelling); repeatable", s.filterAs)
}

// Apply sets the selection on the tables it names and validates them. A
// flag naming no -table is an error: it would otherwise do nothing.
func (s *SelectionFlags) Apply(tables []gapsync.Table) ([]gapsync.Table, error) {
	byName := map[string]int{}
	for i, t := range tables {
		byName[t.Name] = i
	}
	for flagName, m := range map[string]map[string]string{"columns": s.columns, "exclude": s.exclude, "filter": s.filter, "filter-as": s.filterAs} {
		for name, v := range m {
			i, ok := byName[name]
			if !ok {
				return nil, fmt.Errorf("-%s names table %s, which no -table enables", flagName, name)
			}
			switch flagName {
			case "columns":
				tables[i].Columns = gapsync.SplitList(v)
			case "exclude":
				tables[i].Exclude = gapsync.SplitList(v)
			case "filter":
				tables[i].Filter = v
			case "filter-as":
				tables[i].FilterAs = v
			}
		}
	}
	for _, t := range tables {
		if err := t.Validate(); err != nil {
			return nil, err
		}
	}
	return tables, nil
}

// RenameFlags are the internet main's names of tables on the intranet
// side (gapsync.Table.RemoteName, RemoteColumns), repeatable:
//
//	-rename orders=ext_orders                  the table is ext_orders there
//	-rename-columns orders=id:order_id,note:remark  and these columns are named so there
//
// The intranet configures the table under its own names.
type RenameFlags struct {
	names, columns map[string]string
}

// RenameNames are the flag names, for Load's repeatable list.
var RenameNames = []string{"rename", "rename-columns"}

// Register adds the flags to fs.
func (r *RenameFlags) Register(fs *flag.FlagSet) {
	r.names, r.columns = map[string]string{}, map[string]string{}
	for _, f := range []struct {
		name, help string
		m          map[string]string
	}{
		{"rename", "the name of a -table on the intranet side, as `TABLE=THERE`; repeatable", r.names},
		{"rename-columns", "the names of a -table's columns on the intranet side, as `TABLE=HERE:THERE[,HERE:THERE…]`; repeatable", r.columns},
	} {
		m, name := f.m, f.name
		fs.Func(name, f.help, func(v string) error {
			table, val, ok := strings.Cut(v, "=")
			table = strings.TrimSpace(table)
			if !ok || table == "" {
				return fmt.Errorf("want TABLE=VALUE, got %q", v)
			}
			if _, dup := m[table]; dup {
				return fmt.Errorf("-%s given twice for table %s", name, table)
			}
			m[table] = strings.TrimSpace(val)
			return nil
		})
	}
}

// Apply sets the names on the tables they name and validates them.
func (r *RenameFlags) Apply(tables []gapsync.Table) ([]gapsync.Table, error) {
	byName := map[string]int{}
	for i, t := range tables {
		byName[t.Name] = i
	}
	for table, v := range r.names {
		i, ok := byName[table]
		if !ok {
			return nil, fmt.Errorf("-rename names table %s, which no -table enables", table)
		}
		tables[i].RemoteName = v
	}
	for table, v := range r.columns {
		i, ok := byName[table]
		if !ok {
			return nil, fmt.Errorf("-rename-columns names table %s, which no -table enables", table)
		}
		m, err := gapsync.ParseColumnMap(v)
		if err != nil {
			return nil, err
		}
		tables[i].RemoteColumns = m
	}
	for _, t := range tables {
		if err := t.Validate(); err != nil {
			return nil, err
		}
	}
	return tables, nil
}
