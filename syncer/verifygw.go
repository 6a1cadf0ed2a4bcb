package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/transport"
)

// RangeHasher is one side of a verification: the hashes of a table's key
// ranges, and the rows of a few keys. storage's *DB is one (SELECT only);
// *transport.Client is the intranet's, through the gateway.
type RangeHasher interface {
	HashRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte) ([]gapsync.RangeHash, bool, error)
	RowsByKey(ctx context.Context, t gapsync.Table, cols []string, keys [][]any) ([][]any, error)
}

// RangeSummer checksums key ranges on the database server, so that no
// row leaves it (storage's *DB on MySQL, MariaDB and PostgreSQL 14 and
// later; *transport.Client asks the gateway). Its sums compare only with
// the same algorithm's on a table of the same column types; see
// storage.DB.SumRanges.
type RangeSummer interface {
	SumRanges(ctx context.Context, t gapsync.Table, cols []string, r gapsync.KeyRange, per, budget int, salt []byte, algo string) ([]gapsync.RangeHash, bool, error)
}

// verify is the gateway's answer to transport.PathVerify: the intranet's
// range hashes of a table enabled for the asked direction, or the rows of
// a few of its keys. It reads only, and the columns it reads of a push
// table keep to the gateway's column allowlist.
func (g *Gateway) verify(ctx context.Context, body []byte) ([]byte, error) {
	rh, ok := g.db.(RangeHasher)
	if !ok {
		return nil, errors.New("syncer: the intranet database cannot hash ranges")
	}
	var r transport.VerifyRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: verify request: %v", gapsync.ErrMalformed, err)
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	t, err := g.db.Table(ctx, r.Table, r.Direction)
	if err != nil {
		return nil, err
	}
	h := &batch.Batch{Table: t.Name}
	for _, c := range r.Columns {
		h.Columns = append(h.Columns, batch.Column{Name: c})
	}
	if err := g.allowed(h); err != nil {
		return nil, err
	}
	if len(r.Keys) > 0 {
		keys, err := transport.DecodeKeys(r.Keys, len(t.Key), transport.MaxVerifyKeys)
		if err != nil {
			return nil, err
		}
		rows, err := rh.RowsByKey(ctx, t, r.Columns, keys)
		if err != nil {
			return nil, err
		}
		g.opts.Logger.Info("served verify rows", "table", t.Name, "keys", len(keys))
		return transport.EncodeRows(r.Columns, t.Key, keys, rows)
	}
	kr, err := r.DecodeRange(t.Key)
	if err != nil {
		return nil, err
	}
	budget := r.Budget
	if budget <= 0 {
		budget = transport.MaxVerifyBudget
	}
	if r.Sum != "" {
		_, ok := g.db.(RangeSummer)
		if sa, ok2 := g.db.(interface{ SumAlgorithm() string }); ok2 && sa.SumAlgorithm() != r.Sum {
			ok = false
		}
		if !ok {
			// This database cannot (SQLite, PostgreSQL before 14, another
			// engine): the row hashes, which the client tells apart
			// (transport.ErrNoSum) and asks for from then on.
			g.opts.Logger.Debug("verify sums asked for, none here: rows hashed", "table", t.Name, "sum", r.Sum)
			r.Sum = ""
		}
	}
	if r.Sum != "" {
		sums, more, err := g.db.(RangeSummer).SumRanges(ctx, t, r.Columns, kr, r.Per, budget, r.Salt, r.Sum)
		if err != nil {
			return nil, err
		}
		g.opts.Logger.Debug("served verify sums", "table", t.Name, "ranges", len(sums), "more", more)
		return transport.EncodeSums(r.Sum, t.Key, sums, more)
	}
	rs, more, err := rh.HashRanges(ctx, t, r.Columns, kr, r.Per, budget, r.Salt)
	if err != nil {
		return nil, err
	}
	g.opts.Logger.Debug("served verify ranges", "table", t.Name, "ranges", len(rs), "more", more)
	return transport.EncodeRanges(t.Key, rs, more)
}
