package service_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testcert"
	"github.com/gapsync/gapsync/service"
	"github.com/gapsync/gapsync/transport"
)

type memGuard struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (g *memGuard) Remember(_ context.Context, id string, _ time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen[id] {
		return gapsync.ErrReplayed
	}
	g.seen[id] = true
	return nil
}

// gateway serves a transport.Server with one echo endpoint over TLS with
// srvFiles, and returns its https:// URL and the keyring.
func gateway(t *testing.T, srvFiles *service.TLSFiles) (string, *crypto.Keyring) {
	t.Helper()
	k, err := crypto.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := transport.NewServer(keys, &memGuard{seen: map[string]bool{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("/v1/echo", func(_ context.Context, body []byte) ([]byte, error) { return body, nil })
	if err := srvFiles.Load(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := transport.NewHTTPServer("", srv, nil)
	go srvFiles.ServeTLSOn(hs, ln)
	t.Cleanup(func() { hs.Close() })
	return "https://" + ln.Addr().String(), keys
}

func call(t *testing.T, url string, keys *crypto.Keyring, files *service.TLSFiles) error {
	t.Helper()
	if err := files.Load(); err != nil {
		t.Fatal(err)
	}
	c, err := transport.NewClient(url, keys, &transport.ClientOptions{HTTPClient: files.HTTPClient(), RetryMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.Call(context.Background(), "/v1/echo", []byte("hello"))
	if err == nil && string(out) != "hello" {
		t.Fatalf("echo answered %q", out)
	}
	return err
}

func TestMutualTLS(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	serverCA, clientCA := testcert.New(t, "server authority"), testcert.New(t, "client authority")
	testcert.Write(t, filepath.Join(dir, "server-ca.pem"), serverCA.PEM)
	testcert.Write(t, filepath.Join(dir, "client-ca.pem"), clientCA.PEM)
	serverCA.Issue(t, dir, "gateway", "gateway", x509.ExtKeyUsageServerAuth)
	clientCA.Issue(t, dir, "coordinator", "coordinator", x509.ExtKeyUsageClientAuth)
	serverCA.Issue(t, dir, "stranger", "stranger", x509.ExtKeyUsageClientAuth) // signed by the wrong authority

	url, keys := gateway(t, &service.TLSFiles{Cert: filepath.Join(dir, "gateway.crt"), Key: filepath.Join(dir, "gateway.key"),
		CA: filepath.Join(dir, "client-ca.pem"), CAFlag: "-client-ca"})
	ca := filepath.Join(dir, "server-ca.pem")

	// A coordinator with the gateway's authority and its client certificate
	// gets through.
	err := call(t, url, keys, &service.TLSFiles{CA: ca, Cert: filepath.Join(dir, "coordinator.crt"), Key: filepath.Join(dir, "coordinator.key")})
	is.NoErr(err)

	// Without a client certificate it is refused, and told what to give.
	err = call(t, url, keys, &service.TLSFiles{CA: ca})
	is.True(err != nil)
	t.Log(err)
	is.True(strings.Contains(err.Error(), "-cert and -key"))

	// With one from another authority it is refused too.
	err = call(t, url, keys, &service.TLSFiles{CA: ca, Cert: filepath.Join(dir, "stranger.crt"), Key: filepath.Join(dir, "stranger.key")})
	is.True(err != nil)
	t.Log(err)
	is.True(strings.Contains(err.Error(), "-client-ca"))

	// Without -ca the gateway's private authority is not trusted; the
	// error says to give -ca.
	err = call(t, url, keys, &service.TLSFiles{Cert: filepath.Join(dir, "coordinator.crt"), Key: filepath.Join(dir, "coordinator.key")})
	is.True(err != nil)
	t.Log(err)
	is.True(strings.Contains(err.Error(), "-ca FILE"))
}

func TestPlainHTTPToTLSPort(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	ca := testcert.New(t, "authority")
	ca.Issue(t, dir, "gateway", "gateway", x509.ExtKeyUsageServerAuth)
	url, keys := gateway(t, &service.TLSFiles{Cert: filepath.Join(dir, "gateway.crt"), Key: filepath.Join(dir, "gateway.key")})
	plain := "http://" + strings.TrimPrefix(url, "https://")

	resp, err := http.Get(plain + "/v1/echo")
	is.NoErr(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	is.Equal(resp.StatusCode, http.StatusBadRequest)
	is.Equal(string(body), service.PlainHTTPAnswer)

	// The coordinator with an http:// URL reports the hint.
	c, err := transport.NewClient(plain, keys, &transport.ClientOptions{RetryMax: -1})
	is.NoErr(err)
	_, err = c.Call(context.Background(), "/v1/echo", nil)
	is.True(err != nil)
	t.Log(err)
	is.True(strings.Contains(err.Error(), "use https://"))
}

func TestHTTPSToPlainGateway(t *testing.T) {
	is := is.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	hs := &http.Server{Handler: http.NotFoundHandler()}
	go hs.Serve(ln)
	defer hs.Close()
	k, _ := crypto.GenerateKey("k1")
	keys, _ := crypto.NewKeyring(k)
	c, err := transport.NewClient("https://"+ln.Addr().String(), keys, &transport.ClientOptions{RetryMax: -1})
	is.NoErr(err)
	_, err = c.Call(context.Background(), "/v1/echo", nil)
	is.True(err != nil)
	t.Log(err)
	is.True(strings.Contains(err.Error(), "use http:// in -gateway"))
}

// served returns the serial number of the certificate served at addr.
func served(t *testing.T, addr string) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestCertificateReload(t *testing.T) {
	for _, how := range []string{"sighup", "file change"} {
		t.Run(how, func(t *testing.T) {
			is := is.New(t)
			dir := t.TempDir()
			ca := testcert.New(t, "authority")
			first := ca.Issue(t, dir, "gateway", "gateway", x509.ExtKeyUsageServerAuth)
			files := &service.TLSFiles{Cert: filepath.Join(dir, "gateway.crt"), Key: filepath.Join(dir, "gateway.key")}
			url, _ := gateway(t, files)
			addr := strings.TrimPrefix(url, "https://")
			is.Equal(served(t, addr), first)

			interval := time.Hour // only the signal reloads
			if how == "file change" {
				interval = 20 * time.Millisecond
			}
			var hup chan os.Signal
			if how == "sighup" {
				// Caught here too, so that a signal sent before Watch
				// listens cannot end the test process.
				hup = make(chan os.Signal, 1)
				signal.Notify(hup, syscall.SIGHUP)
				defer signal.Stop(hup)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go files.Watch(ctx, interval)

			// A half-written pair (new certificate, old key) is not taken.
			second := ca.Issue(t, dir, "next", "gateway", x509.ExtKeyUsageServerAuth)
			next, _ := os.ReadFile(filepath.Join(dir, "next.crt"))
			testcert.Write(t, filepath.Join(dir, "gateway.crt"), next)
			if hup != nil {
				syscall.Kill(os.Getpid(), syscall.SIGHUP)
			}
			time.Sleep(200 * time.Millisecond)
			is.Equal(served(t, addr), first) // the old pair stays in use

			nextKey, _ := os.ReadFile(filepath.Join(dir, "next.key"))
			testcert.Write(t, filepath.Join(dir, "gateway.key"), nextKey)
			deadline := time.Now().Add(10 * time.Second)
			for served(t, addr) != second {
				if time.Now().After(deadline) {
					t.Fatal("the new certificate was not served")
				}
				if hup != nil {
					syscall.Kill(os.Getpid(), syscall.SIGHUP)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
