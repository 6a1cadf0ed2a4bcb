package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// PathVerify answers the intranet's side of a verification: the hashes
// of a table's key ranges, or the rows of a few keys (SELECT only).
const PathVerify = "/v1/verify"

// Limits of one verify request.
const (
	// MaxVerifyBudget is the most rows one hash request reads.
	MaxVerifyBudget = 200_000
	// MaxVerifyKeys is the most rows one request for rows asks for.
	MaxVerifyKeys = 1000
	// MaxVerifySalt is the longest salt.
	MaxVerifySalt = 64
)

// VerifyRequest asks for the hashes of the ranges of Per rows of Table's
// rows after Lo up to Hi (gapsync.KeyRange), reading at most Budget rows,
// or, when Keys is set, for the rows with those keys. The table must be
// enabled for Direction in the intranet's sync_config; only Columns are
// read and hashed.
type VerifyRequest struct {
	Table     string            `json:"table"`
	Direction gapsync.Direction `json:"direction"`
	Columns   []string          `json:"columns"`
	// Lo and Hi are one key each (EncodeKeys), empty for none.
	Lo     []byte `json:"lo,omitempty"`
	Hi     []byte `json:"hi,omitempty"`
	Per    int    `json:"per,omitempty"`
	Budget int    `json:"budget,omitempty"`
	Salt   []byte `json:"salt,omitempty"`
	// Keys (EncodeKeys) asks for rows instead of hashes.
	Keys []byte `json:"keys,omitempty"`
	// Sum, when set, asks for the ranges' checksums computed by the
	// database server with this algorithm (storage.DB.SumRanges), not
	// the hashes of the rows read out. The answer says which it holds
	// (EncodeSums), so that a gateway from before, which does not know
	// the field, is not taken at its word.
	Sum string `json:"sum,omitempty"`
}

// MaxSumName is the longest name of a checksum algorithm.
const MaxSumName = 64

// ErrNoSum reports a gateway that did not checksum ranges on its server
// as asked (one from before, or a database that cannot): ask for the
// hashes of the rows instead.
var ErrNoSum = errors.New("the gateway did not checksum the ranges on the server")

// Check refuses a request over the limits.
func (r *VerifyRequest) Check() error {
	switch {
	case len(r.Salt) > MaxVerifySalt:
		return fmt.Errorf("%w: verify salt of %d bytes, at most %d", gapsync.ErrTooLarge, len(r.Salt), MaxVerifySalt)
	case r.Per < 0 || r.Per > MaxVerifyBudget || r.Budget < 0 || r.Budget > MaxVerifyBudget:
		return fmt.Errorf("%w: verify budget %d rows, at most %d", gapsync.ErrTooLarge, r.Budget, MaxVerifyBudget)
	case len(r.Sum) > MaxSumName:
		return fmt.Errorf("%w: verify checksum name of %d bytes, at most %d", gapsync.ErrTooLarge, len(r.Sum), MaxSumName)
	case r.Sum != "" && len(r.Keys) > 0:
		return fmt.Errorf("%w: a verify request asks for rows and for checksums", gapsync.ErrMalformed)
	case r.Direction != gapsync.Push && r.Direction != gapsync.Pull:
		return fmt.Errorf("%w: verify direction %q", gapsync.ErrMalformed, r.Direction)
	}
	return nil
}

// EncodeKeys writes key values (one []any per key, in the order of
// names) as a batch, every value in its wire form.
func EncodeKeys(names []string, keys [][]any) ([]byte, error) {
	b := &batch.Batch{ID: "keys", Table: "keys"}
	for _, n := range names {
		b.Columns = append(b.Columns, batch.Column{Name: n, Key: true})
	}
	for _, k := range keys {
		b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: k})
	}
	return b.MarshalBinary()
}

// DecodeKeys reads what EncodeKeys wrote: at most max keys of n values.
func DecodeKeys(data []byte, n, max int) ([][]any, error) {
	b, err := batch.Decode(data, &batch.Limits{MaxColumns: 64, MaxRows: max, MaxValue: 1 << 16})
	if err != nil {
		return nil, fmt.Errorf("%w: verify keys: %v", gapsync.ErrMalformed, err)
	}
	if len(b.Columns) != n {
		return nil, fmt.Errorf("%w: verify keys have %d columns, the key %d", gapsync.ErrMalformed, len(b.Columns), n)
	}
	out := make([][]any, len(b.Rows))
	for i, r := range b.Rows {
		out[i] = r.Values
	}
	return out, nil
}

// oneKey is EncodeKeys of a single key, nil for none.
func oneKey(names []string, k []any) ([]byte, error) {
	if k == nil {
		return nil, nil
	}
	return EncodeKeys(names, [][]any{k})
}

// DecodeRange reads a request's Lo and Hi.
func (r *VerifyRequest) DecodeRange(key []string) (gapsync.KeyRange, error) {
	var kr gapsync.KeyRange
	for _, p := range []struct {
		data []byte
		dst  *[]any
	}{{r.Lo, &kr.Lo}, {r.Hi, &kr.Hi}} {
		if len(p.data) == 0 {
			continue
		}
		ks, err := DecodeKeys(p.data, len(key), 1)
		if err != nil {
			return kr, err
		}
		if len(ks) != 1 {
			return kr, fmt.Errorf("%w: a verify bound holds %d keys", gapsync.ErrMalformed, len(ks))
		}
		*p.dst = ks[0]
	}
	return kr, nil
}

// EncodeRanges frames range hashes as a page: one row per range, the key
// of its last row then its row count and hash.
func EncodeRanges(key []string, rs []gapsync.RangeHash, more bool) ([]byte, error) {
	return encodeRanges("ranges", key, rs, more)
}

// EncodeSums is EncodeRanges for checksums the server computed with
// algorithm algo (VerifyRequest.Sum), which the answer names.
func EncodeSums(algo string, key []string, rs []gapsync.RangeHash, more bool) ([]byte, error) {
	return encodeRanges(sumsTable(algo), key, rs, more)
}

func sumsTable(algo string) string { return "sums:" + algo }

func encodeRanges(table string, key []string, rs []gapsync.RangeHash, more bool) ([]byte, error) {
	b := &batch.Batch{ID: "ranges", Table: table}
	for _, k := range key {
		b.Columns = append(b.Columns, batch.Column{Name: k, Key: true})
	}
	b.Columns = append(b.Columns, batch.Column{Name: "rows"}, batch.Column{Name: "hash"})
	for _, r := range rs {
		b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: append(append([]any{}, r.Last...), r.Rows, r.Hash)})
	}
	return (&PullPage{Batch: b, More: more}).MarshalBinary()
}

// decodeRanges reads EncodeRanges (sum "") or EncodeSums.
func decodeRanges(data []byte, nkey int, sum string) ([]gapsync.RangeHash, bool, error) {
	p, err := DecodePullPage(data, nil)
	if err != nil {
		return nil, false, err
	}
	if sum != "" && p.Batch.Table != sumsTable(sum) {
		return nil, false, ErrNoSum
	}
	if len(p.Batch.Columns) != nkey+2 {
		return nil, false, fmt.Errorf("%w: range hashes have %d columns", gapsync.ErrMalformed, len(p.Batch.Columns))
	}
	out := make([]gapsync.RangeHash, len(p.Batch.Rows))
	for i, r := range p.Batch.Rows {
		n, ok1 := r.Values[nkey].(int64)
		h, ok2 := r.Values[nkey+1].([]byte)
		if !ok1 || !ok2 {
			return nil, false, fmt.Errorf("%w: range hash row %d", gapsync.ErrMalformed, i)
		}
		out[i] = gapsync.RangeHash{Last: r.Values[:nkey], Rows: n, Hash: h}
	}
	return out, p.More, nil
}

// EncodeRows frames the rows of a request for rows: one per key asked
// for, in order, the values in cols, or a deletion carrying only the key
// when there is no such row.
func EncodeRows(cols, key []string, keys, rows [][]any) ([]byte, error) {
	b := &batch.Batch{ID: "rows", Table: "rows"}
	for _, c := range cols {
		isKey := false
		for _, k := range key {
			isKey = isKey || k == c
		}
		b.Columns = append(b.Columns, batch.Column{Name: c, Key: isKey})
	}
	for i, r := range rows {
		if r != nil {
			b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: r})
			continue
		}
		vals := make([]any, len(cols))
		for j, k := range key {
			for ci, c := range cols {
				if c == k {
					vals[ci] = keys[i][j]
				}
			}
		}
		b.Rows = append(b.Rows, batch.Row{Op: batch.OpDelete, Values: vals})
	}
	return b.MarshalBinary()
}

// HashRanges asks the gateway for the intranet's range hashes of t (see
// storage.DB.HashRanges). Retrying is safe: it reads only.
func (c *Client) HashRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte) ([]gapsync.RangeHash, bool, error) {
	return c.ranges(ctx, t, cols, r, per, budget, salt, "")
}

// SumRanges asks the gateway for the intranet's checksums of t's ranges
// computed by its database server with algorithm algo (see
// storage.DB.SumRanges); ErrNoSum when the answer holds something else.
func (c *Client) SumRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte, algo string) ([]gapsync.RangeHash, bool, error) {
	if algo == "" {
		return nil, false, fmt.Errorf("%w: a checksum with no algorithm", gapsync.ErrMalformed)
	}
	return c.ranges(ctx, t, cols, r, per, budget, salt, algo)
}

func (c *Client) ranges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte, sum string) ([]gapsync.RangeHash, bool, error) {
	req := VerifyRequest{Table: t.Name, Direction: verifyDirection(t), Columns: cols, Per: per, Budget: min(budget, MaxVerifyBudget), Salt: salt, Sum: sum}
	var err error
	if req.Lo, err = oneKey(t.Key, r.Lo); err != nil {
		return nil, false, err
	}
	if req.Hi, err = oneKey(t.Key, r.Hi); err != nil {
		return nil, false, err
	}
	out, err := c.verify(ctx, req)
	if err != nil {
		return nil, false, err
	}
	rs, more, err := decodeRanges(out, len(t.Key), sum)
	if errors.Is(err, ErrNoSum) {
		return nil, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("verify %s: %w", t.Name, err)
	}
	return rs, more, nil
}

// RowsByKey asks the gateway for the intranet's rows of t with keys (see
// storage.DB.RowsByKey), MaxVerifyKeys a request.
func (c *Client) RowsByKey(ctx context.Context, t gapsync.Table, cols []string, keys [][]any) ([][]any, error) {
	out := make([][]any, 0, len(keys))
	for start := 0; start < len(keys); start += MaxVerifyKeys {
		part := keys[start:min(start+MaxVerifyKeys, len(keys))]
		enc, err := EncodeKeys(t.Key, part)
		if err != nil {
			return nil, err
		}
		body, err := c.verify(ctx, VerifyRequest{Table: t.Name, Direction: verifyDirection(t), Columns: cols, Keys: enc})
		if err != nil {
			return nil, err
		}
		b, err := batch.Decode(body, nil)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", t.Name, err)
		}
		if len(b.Rows) != len(part) || len(b.Columns) != len(cols) {
			return nil, fmt.Errorf("verify %s: %w: %d rows for %d keys", t.Name, gapsync.ErrMalformed, len(b.Rows), len(part))
		}
		for _, r := range b.Rows {
			if r.Op == batch.OpUpsert {
				out = append(out, r.Values)
			} else {
				out = append(out, nil)
			}
		}
	}
	return out, nil
}

func (c *Client) verify(ctx context.Context, r VerifyRequest) ([]byte, error) {
	req, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out, err := c.Call(ctx, PathVerify, req)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", r.Table, err)
	}
	return out, nil
}

// verifyDirection is the direction a table is looked up by on the far
// side: push unless it travels only the other way.
func verifyDirection(t gapsync.Table) gapsync.Direction {
	if t.Direction == gapsync.Pull {
		return gapsync.Pull
	}
	return gapsync.Push
}
