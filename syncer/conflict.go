package syncer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// settle resolves the conflicts the receiving side reported for batch b
// (sent in direction d): for each key, the resolver picks a side; the
// incoming versions that win are applied again with batch.FlagForce, the
// local versions that win stay and travel the other way in their own
// direction's next run (their cursor is past that direction's bound).
// Every conflict is recorded with both versions.
// mu, when set, guards e (pages settle concurrently).
func (c *Coordinator) settle(ctx context.Context, runID string, t gapsync.Table, d gapsync.Direction, b *batch.Batch, blob []byte, e *gapsync.LogEntry, mu *sync.Mutex) error {
	if len(blob) == 0 {
		return nil
	}
	if mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	local, err := batch.Decode(blob, nil)
	if err != nil {
		return fmt.Errorf("conflicts of batch %s: %w", b.ID, err)
	}
	if err := alignColumns(local, b); err != nil {
		return fmt.Errorf("conflicts of batch %s: %w", b.ID, err)
	}
	names := make([]string, len(b.Columns))
	var keyPos []int
	for i, col := range b.Columns {
		names[i] = col.Name
		if col.Key {
			keyPos = append(keyPos, i)
		}
	}
	incoming := make(map[string]batch.Row, len(b.Rows))
	for _, r := range b.Rows {
		incoming[rowKey(r.Values, keyPos)] = r
	}
	incomingSide := gapsync.Internet
	if d == gapsync.Pull {
		incomingSide = gapsync.Intranet
	}
	var winners []batch.Row
	for _, l := range local.Rows {
		k := rowKey(l.Values, keyPos)
		in, ok := incoming[k]
		if !ok {
			return fmt.Errorf("%w: conflict for a key batch %s did not carry", gapsync.ErrMalformed, b.ID)
		}
		cf := gapsync.Conflict{Table: t.Name, Columns: names, Key: t.Key, Cursor: t.Cursor}
		iv := gapsync.Version{Deleted: in.Op == batch.OpDelete, Values: in.Values}
		lv := gapsync.Version{Deleted: l.Op == batch.OpDelete, Values: l.Values}
		if d == gapsync.Pull {
			cf.Intranet, cf.Internet = iv, lv
		} else {
			cf.Internet, cf.Intranet = iv, lv
		}
		winner := c.opts.Resolver.Resolve(cf)
		if winner == incomingSide {
			winners = append(winners, in)
		}
		e.Conflicts++
		rec := gapsync.ConflictRecord{RunID: runID, Table: t.Name, Key: render(names, l.Values, keyPos, false),
			Policy: c.opts.Resolver.Name(), Winner: winner, DetectedAt: time.Now(),
			Internet: render(names, cf.Internet.Values, nil, cf.Internet.Deleted),
			Intranet: render(names, cf.Intranet.Values, nil, cf.Intranet.Deleted)}
		if err := c.db.RecordConflict(ctx, rec); err != nil {
			return err
		}
		c.opts.Logger.Info("conflict settled", "table", t.Name, "key", rec.Key, "winner", winner, "loser_version",
			map[bool]string{true: rec.Intranet, false: rec.Internet}[winner == gapsync.Internet])
	}
	if len(winners) == 0 {
		return nil
	}
	fb := &batch.Batch{ID: b.ID + "-f", Table: b.Table, Direction: b.Direction, WindowFrom: b.WindowFrom, WindowTo: b.WindowTo,
		Seq: b.Seq, Since: b.Since, Flags: batch.FlagForce, Columns: b.Columns, Rows: winners}
	var res gapsync.Result
	if d == gapsync.Pull {
		res, err = c.db.Apply(ctx, fb)
	} else {
		res, err = c.tr.Apply(ctx, fb)
	}
	if err != nil {
		return fmt.Errorf("apply conflict winners: %w", err)
	}
	e.Written += res.Written
	return nil
}

// alignColumns puts the rows of the far side's versions (local) in the
// column order of the batch b they answer, by name: the far side sends
// only the columns it has (a column it lacks is nil here), and a version
// without a key column of b, or naming a column b lacks, is malformed.
func alignColumns(local, b *batch.Batch) error {
	pos := make([]int, len(b.Columns))
	have := make(map[string]int, len(local.Columns))
	for i, c := range local.Columns {
		have[c.Name] = i
	}
	for _, c := range local.Columns {
		if !slices.ContainsFunc(b.Columns, func(x batch.Column) bool { return x.Name == c.Name }) {
			return fmt.Errorf("%w: a version names column %q the batch does not", gapsync.ErrMalformed, c.Name)
		}
	}
	for i, c := range b.Columns {
		j, ok := have[c.Name]
		if !ok && c.Key {
			return fmt.Errorf("%w: a version lacks key column %q", gapsync.ErrMalformed, c.Name)
		}
		if !ok {
			j = -1
		}
		pos[i] = j
	}
	for r := range local.Rows {
		vals := make([]any, len(b.Columns))
		for i, j := range pos {
			if j >= 0 {
				vals[i] = local.Rows[r].Values[j]
			}
		}
		local.Rows[r].Values = vals
	}
	local.Columns = b.Columns
	return nil
}

// rowKey is a map key for the key values of a row.
func rowKey(vals []any, keyPos []int) string {
	var buf []byte
	for _, p := range keyPos {
		v := vals[p]
		if b, ok := v.([]byte); ok && b == nil {
			v = []byte{}
		}
		buf, _ = batch.AppendValue(buf, v)
	}
	return string(buf)
}

// render writes a version as a JSON object for the conflict log: text as
// text, other bytes as {"hex": …}, numbers exactly as text. pos limits it
// to some columns (nil: all).
func render(names []string, vals []any, pos []int, deleted bool) string {
	m := map[string]any{}
	if pos == nil {
		for i := range names {
			pos = append(pos, i)
		}
	}
	for _, i := range pos {
		m[names[i]] = jsonValue(vals[i])
	}
	if deleted {
		m = map[string]any{"deleted": true, "row": m}
	}
	out, _ := json.Marshal(m)
	return string(out)
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, uint64:
		return x
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		if utf8.Valid(x) {
			return string(x)
		}
		return map[string]string{"hex": hex.EncodeToString(x)}
	case string:
		if utf8.ValidString(x) {
			return x
		}
		return map[string]string{"hex": hex.EncodeToString([]byte(x))}
	}
	return fmt.Sprint(v)
}
