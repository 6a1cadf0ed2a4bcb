package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/transport"
)

// seen is a replay guard in memory; a gateway uses its database's
// (storage.DB), which survives restarts.
type seen struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *seen) Remember(_ context.Context, id string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[id] {
		return gapsync.ErrReplayed
	}
	s.ids[id] = true
	return nil
}

// The client seals each request for its endpoint and opens the sealed
// answer; a client whose keyring the server does not hold is refused
// before any handler runs. syncer.Gateway registers the protocol's
// endpoints on such a server; a host project may add its own.
func ExampleNewClient() {
	key, _ := crypto.GenerateKey("k2026")
	keys, _ := crypto.NewKeyring(key)
	srv, err := transport.NewServer(keys, &seen{ids: map[string]bool{}}, nil)
	if err != nil {
		panic(err)
	}
	srv.Handle("/v1/upper", func(_ context.Context, body []byte) ([]byte, error) {
		return []byte(strings.ToUpper(string(body))), nil
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()

	client, err := transport.NewClient(hs.URL, keys, &transport.ClientOptions{RetryMax: -1})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	out, err := client.Call(context.Background(), "/v1/upper", []byte("sealed both ways"))
	fmt.Println(string(out), err)

	other, _ := crypto.GenerateKey("k-other")
	otherKeys, _ := crypto.NewKeyring(other)
	stranger, _ := transport.NewClient(hs.URL, otherKeys, &transport.ClientOptions{RetryMax: -1})
	_, err = stranger.Call(context.Background(), "/v1/upper", []byte("let me in"))
	fmt.Println(errors.Is(err, gapsync.ErrUnknownKey))
	// Output:
	// SEALED BOTH WAYS <nil>
	// true
}
