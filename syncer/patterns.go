package syncer

import (
	"context"
	"sort"

	"github.com/gapsync/gapsync"
)

// PatternMatcher is implemented by an internet database whose sync_config
// may hold table patterns (gapsync.IsPattern; storage's *DB is one): the
// tables each enabled pattern stands for, for the setup check.
type PatternMatcher interface {
	PatternMatches(ctx context.Context) (map[string][]string, error)
}

// patternProblems names the internet side's enabled patterns that match
// no table: a typo there would otherwise sync nothing without a word.
func (c *Coordinator) patternProblems(ctx context.Context) (Problems, error) {
	pm, ok := c.db.(PatternMatcher)
	if !ok {
		return nil, nil
	}
	m, err := pm.PatternMatches(ctx)
	if err != nil {
		return nil, err
	}
	var ps Problems
	for p, tables := range m {
		if len(tables) == 0 {
			ps = append(ps, Problem{Table: p, Side: gapsync.Internet,
				What: "the table pattern matches no table of this database (gapsync's own sync_*, gst_*, file_record, file_chunk and path_mapping tables never match)",
				Fix:  "create the tables it is meant for, correct the pattern in sync_config, or disable its row"})
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Table < ps[j].Table })
	return ps, nil
}
