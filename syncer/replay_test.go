package syncer_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// TestReplayAfterPurgeClockStepBack: a request is accepted, a later one
// makes the gateway purge the first one's id, then the gateway's clock
// steps back so that the first envelope is inside the skew window again.
// Its replay must be refused, although its id is gone. The guard is the
// same under either cipher.
func TestReplayAfterPurgeClockStepBack(t *testing.T) {
	for _, c := range crypto.Ciphers {
		t.Run(c.String(), func(t *testing.T) { testReplayAfterPurgeClockStepBack(t, c) })
	}
}

func testReplayAfterPurgeClockStepBack(t *testing.T, c crypto.Cipher) {
	eachBackend(t, func(t *testing.T, kind string) {
		var clock atomic.Int64
		real := time.Now()
		set := func(t time.Time) { clock.Store(t.UnixNano()) }
		set(real.Add(-3 * time.Hour))
		z := newZones(t, kind, zoneOpts{cipher: c, gw: &syncer.GatewayOptions{Now: func() time.Time { return time.Unix(0, clock.Load()) }}})
		z.both(items, itemsDDL)
		row := []any{int64(1), []byte("x"), int64(1), []byte("2020-01-01 00:00:00.000000")}

		first := sealWith(t, z.keys, crypto.Header{Time: real.Add(-3 * time.Hour)}, encode(t, itemBatch("replay-1", "items", row)))
		if got := z.post(transport.PathApply, first); got.status != 200 {
			t.Fatalf("first request: %+v", got)
		}
		set(real.Add(-time.Hour))
		second := sealWith(t, z.keys, crypto.Header{Time: real.Add(-time.Hour)}, encode(t, itemBatch("replay-2", "items", row)))
		if got := z.post(transport.PathApply, second); got.status != 200 {
			t.Fatalf("second request: %+v", got)
		}
		h, _ := crypto.PeekHeader(first)
		if n := count(t, z.dst(), "SELECT COUNT(*) FROM sync_message WHERE message_id = '"+h.MessageID+"'"); n != 0 {
			t.Fatalf("the first id was not purged (%d rows)", n)
		}
		// The clock steps back: the first envelope is fresh again.
		set(real.Add(-3*time.Hour + time.Second))
		if got := z.post(transport.PathApply, first); got.status != 401 || got.code != "stale" {
			t.Fatalf("replay after purge and clock step back: got %d %q, want 401 stale", got.status, got.code)
		}
		set(real.Add(-time.Hour))
		if got := z.post(transport.PathApply, second); got.status != 409 || got.code != "replayed" {
			t.Fatalf("plain replay: got %d %q, want 409 replayed", got.status, got.code)
		}
		// The refusal holds in a restarted gateway too: the watermark is in
		// the intranet database.
		z.restartGateway()
		set(real.Add(-3*time.Hour + time.Second))
		if got := z.post(transport.PathApply, first); got.status != 401 || got.code != "stale" {
			t.Fatalf("replay after a restart: got %d %q, want 401 stale", got.status, got.code)
		}
	})
}

// TestNewGatewayChecksReplayHorizon: a replay guard that forgets ids
// sooner than twice the skew is refused at construction, with the fix.
func TestNewGatewayChecksReplayHorizon(t *testing.T) {
	k, _ := crypto.GenerateKey("k")
	keys, _ := crypto.NewKeyring(k)
	open := func(h time.Duration) *storage.DB {
		db, err := storage.OpenSQLite(testdb.SQLite(t), &storage.Options{ReplayHorizon: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	cases := []struct {
		horizon, skew time.Duration
		ok            bool
	}{
		{5 * time.Minute, 0, false}, // default skew 5 min
		{9 * time.Minute, 5 * time.Minute, false},
		{10 * time.Minute, 5 * time.Minute, true},
		{time.Hour, 45 * time.Minute, false},
		{time.Hour, 0, true}, // both defaults
		{5 * time.Minute, time.Minute, true},
	}
	for _, c := range cases {
		_, err := syncer.NewGateway(open(c.horizon), keys, &syncer.GatewayOptions{MaxSkew: c.skew})
		if c.ok != (err == nil) {
			t.Fatalf("horizon %v skew %v: err %v, want ok=%v", c.horizon, c.skew, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "storage.Options.ReplayHorizon to at least") {
			t.Fatalf("the error does not say how to fix it: %v", err)
		}
	}
}

// TestCoordinatorBatchesCarryTime: the coordinator's batch ids carry their
// time, so the intranet ledger can be purged.
func TestCoordinatorBatchesCarryTime(t *testing.T) {
	z := newZones(t, "sqlite", zoneOpts{})
	z.both(items, itemsDDL)
	z.insertItems(1, 5)
	z.waitLag()
	if _, err := z.runOnce(); err != nil {
		t.Fatal(err)
	}
	rows, err := z.dst().Query("SELECT batch_id FROM sync_applied")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		rows.Scan(&id)
		made, ok, err := gapsync.BatchTime(id)
		if err != nil || !ok || time.Since(made) > time.Minute {
			t.Fatalf("batch id %q: time %v ok %v err %v", id, made, ok, err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no batch applied")
	}
}
