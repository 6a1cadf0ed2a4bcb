package syncer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// TestGatewayColumnAllowlist: with GatewayOptions.Columns naming a table,
// a batch that names any other column of it is refused with
// ErrUnknownColumn and nothing is written, whatever the letter case; the
// listed columns still apply.
func TestGatewayColumnAllowlist(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		z := newZones(t, kind, zoneOpts{gw: &syncer.GatewayOptions{
			Columns: map[string][]string{"Items": {"id", "NAME", "updated_at"}}}})
		z.both(items, itemsDDL)
		row := []any{int64(1), []byte("x"), int64(7), []byte("2020-01-01 00:00:00.000000")}
		for _, table := range []string{"items", "ITEMS"} {
			got := z.post(transport.PathApply, sealWith(t, z.keys, crypto.Header{}, encode(t, itemBatch("a-"+table, table, row))))
			if got.status != 422 || got.code != "unknown_column" {
				t.Fatalf("qty is not allowed (table %s): got %+v", table, got)
			}
		}
		_, err := z.client.Apply(context.Background(), itemBatch("a-2", "items", row))
		if !errors.Is(err, gapsync.ErrUnknownColumn) {
			t.Fatalf("client: %v, want ErrUnknownColumn", err)
		}
		for _, tb := range []string{"items", "sync_applied"} {
			if n := count(t, z.dst(), "SELECT COUNT(*) FROM "+tb); n != 0 {
				t.Fatalf("%s has %d rows after refusals", tb, n)
			}
		}
		ok := &batch.Batch{ID: "a-3", Table: "items", Direction: "push", Columns: []batch.Column{
			{Name: "id", Key: true}, {Name: "name"}, {Name: "updated_at"}},
			Rows: []batch.Row{{Op: batch.OpUpsert, Values: []any{int64(1), []byte("x"), []byte("2020-01-01 00:00:00.000000")}}}}
		if _, err := z.client.Apply(context.Background(), ok); err != nil {
			t.Fatalf("allowed columns: %v", err)
		}
		if n := count(t, z.dst(), "SELECT COUNT(*) FROM items WHERE qty IS NULL"); n != 1 {
			t.Fatalf("the allowed batch wrote %d rows", n)
		}
	})
}

// TestGatewayColumnAllowlistConfig: an allowlist that cannot be right is
// refused at construction.
func TestGatewayColumnAllowlistConfig(t *testing.T) {
	db := openDB(t, "sqlite")
	k, _ := crypto.GenerateKey("k")
	keys, _ := crypto.NewKeyring(k)
	for name, cols := range map[string]map[string][]string{
		"no column":      {"items": {}},
		"bad table name": {"it`ems": {"id"}},
		"bad column":     {"items": {"id", "a b"}},
		"twice":          {"items": {"id"}, "ITEMS": {"id"}},
	} {
		if _, err := syncer.NewGateway(db, keys, &syncer.GatewayOptions{Columns: cols}); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
}
