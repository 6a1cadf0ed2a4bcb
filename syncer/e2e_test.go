package syncer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/sqltest"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

const itemsDDL = `CREATE TABLE items (
	id BIGINT NOT NULL PRIMARY KEY,
	name VARCHAR(200) NULL,
	qty BIGINT NULL,
	updated_at DATETIME(6) NULL)`

var items = gapsync.Table{Name: "items", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}

func (z *zones) insertItems(from, to int) {
	z.t.Helper()
	for i := from; i < to; i++ {
		mustExec(z.t, z.src(), "INSERT INTO items (id, name, qty, updated_at) VALUES (?, ?, ?, "+z.now+")", i, fmt.Sprintf("item %d 物品", i), i)
	}
}

func (z *zones) assertSame(table, order string) {
	z.t.Helper()
	a, n := sqltest.RowHash(z.t, z.src(), table, order)
	b, m := sqltest.RowHash(z.t, z.dst(), table, order)
	if n != m || a != b {
		z.t.Fatalf("%s differs: internet has %d rows (%s), intranet %d (%s)", table, n, a[:12], m, b[:12])
	}
}

func logRows(t *testing.T, db *storage.DB, table string) []storage.LogRow {
	t.Helper()
	rows, err := db.Log(context.Background(), table, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// Must-show 1: every type, through every zone, byte-exact.
func TestPushEveryTypeExact(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newZones(t, kind, zoneOpts{page: gapsync.Page{Rows: 2}})
		tt := z.typesTable
		z.both(tt.Config, tt.DDL...)
		for _, q := range tt.Insert {
			mustExec(t, z.src(), q)
		}
		var n int64 // an INSERT may hold several rows
		is.NoErr(z.src().QueryRow("SELECT COUNT(*) FROM " + tt.Config.Name).Scan(&n))
		r, err := z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), n)
		z.assertSame(tt.Config.Name, strings.Join(tt.Config.Key, ","))
		if kind == "mysql" {
			var name string
			var a, b int64
			is.NoErr(z.src().QueryRow("CHECKSUM TABLE types_demo").Scan(&name, &a))
			is.NoErr(z.dst().QueryRow("CHECKSUM TABLE types_demo").Scan(&name, &b))
			is.Equal(a, b)
		}
	})
}

// Must-show 2: only rows changed in the window travel; a quiet cycle sends
// nothing; windows are contiguous in the sync log.
func TestIncrementalCycles(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newZones(t, kind, zoneOpts{page: gapsync.Page{Rows: 30}})
		z.both(items, itemsDDL)
		z.insertItems(0, 100)
		z.waitLag()
		r, err := z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(100))
		mustExec(t, z.src(), "UPDATE items SET qty = qty + 1, updated_at = "+z.now+" WHERE id < 5")
		z.waitLag()
		r, err = z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(5)) // only the changed rows
		z.assertSame("items", "id")
		for i := 0; i < 3; i++ {
			r, err = z.runOnce()
			is.NoErr(err)
			is.Equal(r.Rows(gapsync.Push), int64(0)) // nothing changed, nothing sent
		}
		logs := logRows(t, z.inet, "items")
		is.Equal(len(logs), 5)
		for i := 0; i+1 < len(logs); i++ { // newest first
			is.Equal(logs[i].Status, storage.StatusOK)
			is.Equal(logs[i].WindowFrom, logs[i+1].WindowTo) // no gap, no overlap
		}
		is.Equal(logs[len(logs)-1].WindowFrom, "") // the initial load
	})
}

// Must-show 4: 500s, a connection cut after the apply, and a gateway
// restart; afterwards the target equals the source, with no duplicates,
// no gaps, and the failures in the sync log.
func TestFaultsRecover(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		// One batch at a time, so that which batch a fault hits is
		// known (TestLostAnswerRetriedOnce covers batches in flight).
		z := newZones(t, kind, zoneOpts{page: gapsync.Page{Rows: 20}, inFlight: 1})
		z.both(items, itemsDDL)
		z.insertItems(0, 50)
		z.waitLag()

		z.faults.fail500 = 1
		_, err := z.runOnce()
		if !errors.Is(err, gapsync.ErrRemote) {
			t.Fatalf("cycle against a failing gateway: %v, want ErrRemote", err)
		}
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM items"), 0) // nothing landed, the window did not move

		z.faults.dropLate = 1 // the first batch lands, its answer is lost
		_, err = z.runOnce()
		is.True(err != nil)
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM items"), 20)

		// More changes arrive while the far side is unhappy.
		z.insertItems(50, 70)
		mustExec(t, z.src(), "UPDATE items SET name = 'changed', updated_at = "+z.now+" WHERE id IN (1, 30)")
		z.restartGateway()
		z.waitLag()
		r, err := z.runOnce()
		is.NoErr(err)
		is.Equal(r.Rows(gapsync.Push), int64(70)) // the window never advanced past the failures
		z.assertSame("items", "id")
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM items"), 70)

		logs := logRows(t, z.inet, "items")
		is.Equal(len(logs), 3)
		is.Equal(logs[0].Status, storage.StatusOK)
		is.Equal(logs[1].Status, storage.StatusFailed)
		is.Equal(logs[2].Status, storage.StatusFailed)
		is.True(strings.Contains(logs[2].Error, "remote side failed"))
		is.Equal(logs[0].WindowFrom, "") // both failed runs left the window where it was
	})
}

// A lost answer retried by the client is applied once: the ledger answers
// the retry with the first result.
func TestLostAnswerRetriedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := newZones(t, kind, zoneOpts{retries: 3, page: gapsync.Page{Rows: 10}})
		z.both(items, itemsDDL)
		z.insertItems(0, 25)
		z.waitLag()
		z.faults.dropLate = 1
		r, err := z.runOnce()
		is.NoErr(err)
		is.Equal(r.Tables[0].Duplicates, 1)
		is.Equal(r.Tables[0].Batches, 3)
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM sync_applied"), 3)
		z.assertSame("items", "id")
		logs := logRows(t, z.inet, "items")
		is.Equal(logs[0].Duplicates, 1)
	})
}

type raw struct {
	status int
	code   string
}

// post sends body to the gateway as is and returns the status and the
// error code of a refusal.
func (z *zones) post(path string, body []byte) raw {
	z.t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Post("http://"+z.addr+path, "application/octet-stream", bytes.NewReader(body))
	for try := 1; err != nil && try < 3; try++ {
		// A body refused before it was read leaves unread bytes behind
		// when the server closes; on a loaded machine the client may
		// see that close as a reset before it reads the answer. Such a
		// request was never applied, so sending it again is safe.
		time.Sleep(100 * time.Millisecond)
		resp, err = c.Post("http://"+z.addr+path, "application/octet-stream", bytes.NewReader(body))
	}
	if err != nil {
		z.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// Errors after authentication come back sealed.
	if _, plain, err := z.keys.Open(nil, b, &crypto.OpenOptions{Endpoint: "RESP " + path, Sender: transport.ZoneExternal}); err == nil {
		b = plain
	}
	var eb struct {
		Code string `json:"code"`
	}
	json.Unmarshal(b, &eb)
	return raw{resp.StatusCode, eb.Code}
}

func sealWith(t *testing.T, keys *crypto.Keyring, h crypto.Header, plain []byte) []byte {
	t.Helper()
	if h.Sender == "" {
		h.Sender = transport.ZoneInternet
	}
	if h.Endpoint == "" {
		h.Endpoint = "POST " + transport.PathApply
	}
	env, _, err := keys.Seal(nil, h, plain)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func itemBatch(id string, table string, vals ...[]any) *batch.Batch {
	b := &batch.Batch{ID: id, Table: table, Direction: "push", Columns: []batch.Column{
		{Name: "id", Key: true}, {Name: "name"}, {Name: "qty"}, {Name: "updated_at"}}}
	for _, v := range vals {
		b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: v})
	}
	return b
}

func encode(t *testing.T, b *batch.Batch) []byte {
	t.Helper()
	p, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Must-show 5: bad input is refused with a clear error and nothing written.
func TestGatewayRefusesBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		z := newZones(t, kind, zoneOpts{gw: &syncer.GatewayOptions{MaxBody: 64 << 10}})
		z.both(items, itemsDDL)
		mustExec(t, z.dst(), "CREATE TABLE secret (id BIGINT PRIMARY KEY, name VARCHAR(200), qty BIGINT, updated_at DATETIME(6))")
		row := []any{int64(1), []byte("x"), int64(1), []byte("2020-01-01 00:00:00.000000")}
		good := encode(t, itemBatch("good-1", "items", row))

		other, _ := crypto.GenerateKey("test1") // same id, other secret
		wrongKey, _ := crypto.NewKeyring(other)
		unknown, _ := crypto.GenerateKey("nobody")
		unknownKey, _ := crypto.NewKeyring(unknown)
		sm4Same, _ := crypto.GenerateCipherKey(crypto.SM4GCM, "test1") // same id, other cipher
		otherCipher, _ := crypto.NewKeyring(sm4Same)
		tampered := sealWith(t, z.keys, crypto.Header{}, good)
		tampered[len(tampered)-20] ^= 0x01

		rawCases := []struct {
			name   string
			body   []byte
			status int
			code   string
		}{
			{"tampered ciphertext", tampered, 401, "tampered"},
			{"wrong key", sealWith(t, wrongKey, crypto.Header{}, good), 401, "tampered"},
			{"unknown key", sealWith(t, unknownKey, crypto.Header{}, good), 401, "unknown_key"},
			{"same key id under another cipher", sealWith(t, otherCipher, crypto.Header{}, good), 401, "tampered"},
			{"stale timestamp", sealWith(t, z.keys, crypto.Header{Time: time.Now().Add(-10 * time.Minute)}, good), 401, "stale"},
			{"future timestamp", sealWith(t, z.keys, crypto.Header{Time: time.Now().Add(10 * time.Minute)}, good), 401, "stale"},
			{"sealed for another endpoint", sealWith(t, z.keys, crypto.Header{Endpoint: "POST /v1/other"}, good), 401, "tampered"},
			{"sealed by the wrong zone", sealWith(t, z.keys, crypto.Header{Sender: transport.ZoneExternal}, good), 401, "tampered"},
			{"not an envelope", []byte("hello"), 400, "bad_envelope"},
			{"malformed batch", sealWith(t, z.keys, crypto.Header{}, []byte("GSB\x01garbage")), 400, "malformed"},
			{"body over the cap", sealWith(t, z.keys, crypto.Header{}, encode(t, itemBatch("big", "items",
				[]any{int64(2), bytes.Repeat([]byte("x"), 100<<10), int64(1), nil}))), 413, "too_large"},
			{"table not in sync_config", sealWith(t, z.keys, crypto.Header{}, encode(t, itemBatch("s1", "secret", row))), 422, "unknown_table"},
			{"backtick in a table name", sealWith(t, z.keys, crypto.Header{}, encode(t, itemBatch("s2", "items`; DROP TABLE items; --", row))), 422, "bad_identifier"},
			// (A non-key column the table lacks is schema drift, not a
			// refusal: the shared columns are written, see sqltest's
			// MissingColumn.)
			{"key column not in the table", sealWith(t, z.keys, crypto.Header{}, encode(t, func() *batch.Batch {
				b := itemBatch("s3", "items", row)
				b.Columns[0] = batch.Column{Name: "password"}
				return b
			}())), 422, "unknown_column"},
			{"pull batch sent to apply", sealWith(t, z.keys, crypto.Header{}, encode(t, func() *batch.Batch {
				b := itemBatch("s4", "items", row)
				b.Direction = "pull"
				return b
			}())), 400, "malformed"},
		}
		for _, c := range rawCases {
			t.Run(c.name, func(t *testing.T) {
				got := z.post(transport.PathApply, c.body)
				if got.status != c.status || got.code != c.code {
					t.Fatalf("got %d %q, want %d %q", got.status, got.code, c.status, c.code)
				}
			})
		}
		// The client turns refusals into sentinels.
		_, err := z.client.Apply(context.Background(), itemBatch("s5", "secret", row))
		if !errors.Is(err, gapsync.ErrUnknownTable) {
			t.Fatalf("client: %v, want ErrUnknownTable", err)
		}
		for _, tb := range []string{"items", "secret", "sync_applied"} {
			if n := count(t, z.dst(), "SELECT COUNT(*) FROM "+tb); n != 0 {
				t.Fatalf("%s has %d rows after refusals", tb, n)
			}
		}

		// A good request is applied once; the same bytes again are a
		// replay, before and after the gateway restarts.
		env := sealWith(t, z.keys, crypto.Header{}, good)
		if got := z.post(transport.PathApply, env); got.status != 200 {
			t.Fatalf("good request: %d %s", got.status, got.code)
		}
		mustExec(t, z.dst(), "UPDATE items SET name = 'changed on the intranet'")
		if got := z.post(transport.PathApply, env); got.status != 409 || got.code != "replayed" {
			t.Fatalf("replay: %d %q", got.status, got.code)
		}
		z.restartGateway()
		if got := z.post(transport.PathApply, env); got.status != 409 || got.code != "replayed" {
			t.Fatalf("replay after restart: %d %q", got.status, got.code)
		}
		var name string
		if err := z.dst().QueryRow("SELECT name FROM items WHERE id = 1").Scan(&name); err != nil || name != "changed on the intranet" {
			t.Fatalf("replay rewrote the row: %q %v", name, err)
		}
		if n := count(t, z.dst(), "SELECT COUNT(*) FROM sync_applied"); n != 1 {
			t.Fatalf("ledger has %d batches, want 1", n)
		}
	})
}
