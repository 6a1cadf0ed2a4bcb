package transport_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/transport"
)

// A gateway from before the server checksums ignores VerifyRequest.Sum
// and answers with the hashes of rows: the client does not take those
// for sums (ErrNoSum), so that a verification hashes rows on both sides
// instead of comparing two kinds of hash. A gateway that sums answers in
// kind, and the client reads it.
func TestSumRangesTellsOldGatewayApart(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	key, err := crypto.GenerateKey("t1")
	is.NoErr(err)
	keys, err := crypto.NewKeyring(key)
	is.NoErr(err)
	srv, err := transport.NewServer(keys, &memGuard{seen: map[string]bool{}}, nil)
	is.NoErr(err)
	sums := false // how the gateway answers
	got := ""
	srv.Handle(transport.PathVerify, func(_ context.Context, body []byte) ([]byte, error) {
		var r transport.VerifyRequest
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, err
		}
		got = r.Sum
		rs := []gapsync.RangeHash{{Last: []any{int64(10)}, Rows: 10, Hash: make([]byte, 16)}}
		if sums {
			return transport.EncodeSums(r.Sum, []string{"id"}, rs, false)
		}
		return transport.EncodeRanges([]string{"id"}, rs, false)
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c, err := transport.NewClient(hs.URL, keys, &transport.ClientOptions{RetryMax: -1})
	is.NoErr(err)
	t.Cleanup(func() { c.Close() })
	tbl := gapsync.Table{Name: "orders", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at"}

	_, _, err = c.SumRanges(ctx, tbl, []string{"id"}, gapsync.KeyRange{}, 10, 100, nil, "mysql-md5-xor")
	is.True(errors.Is(err, transport.ErrNoSum))
	is.Equal(got, "mysql-md5-xor")
	rs, _, err := c.HashRanges(ctx, tbl, []string{"id"}, gapsync.KeyRange{}, 10, 100, nil)
	is.NoErr(err)
	is.Equal(rs[0].Rows, int64(10))

	sums = true
	rs, more, err := c.SumRanges(ctx, tbl, []string{"id"}, gapsync.KeyRange{}, 10, 100, nil, "mysql-md5-xor")
	is.NoErr(err)
	is.True(!more)
	is.Equal(rs[0].Rows, int64(10))
	_, _, err = c.SumRanges(ctx, tbl, []string{"id"}, gapsync.KeyRange{}, 10, 100, nil, "")
	is.True(errors.Is(err, gapsync.ErrMalformed))
}
