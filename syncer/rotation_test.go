package syncer_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// TestRotationGatewayFirst: mid-rotation, the gateway already seals with
// the new key and the coordinator holds only the old one. Requests and answers
// still open both ways, because the gateway answers under the key the
// request came with.
func TestRotationGatewayFirst(t *testing.T) {
	oldK, _ := crypto.GenerateKey("k-old")
	newK, _ := crypto.GenerateKey("k-new")
	onlyOld, _ := crypto.NewKeyring(oldK)
	rotated, _ := crypto.NewKeyring(newK, oldK)
	for _, c := range []struct {
		name        string
		gw, coordin *crypto.Keyring
	}{
		{"gateway first", rotated, onlyOld},
		{"coordinator first", onlyOld, rotated},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := openDB(t, "sqlite")
			mustExec(t, db.Bun().DB, itemsDDL)
			pull := items
			pull.Direction = "both"
			if err := db.Configure(context.Background(), pull); err != nil {
				t.Fatal(err)
			}
			gw, err := syncer.NewGateway(db, c.gw, nil)
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(gw)
			defer hs.Close()
			cl, err := transport.NewClient(hs.URL, c.coordin, &transport.ClientOptions{RetryMax: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			_, err = cl.Bound(context.Background(), "items")
			if c.name == "coordinator first" {
				// The gateway cannot open a request under a key it lacks:
				// this order is the one rotation must not take.
				if err == nil {
					t.Fatal("a request under a key the gateway lacks was accepted")
				}
				return
			}
			if err != nil {
				t.Fatalf("bound mid-rotation: %v", err)
			}
			row := []any{int64(1), []byte("x"), int64(1), []byte("2020-01-01 00:00:00.000000")}
			if _, err := cl.Apply(context.Background(), itemBatch("rot-1", "items", row)); err != nil {
				t.Fatalf("apply mid-rotation: %v", err)
			}
		})
	}
}
