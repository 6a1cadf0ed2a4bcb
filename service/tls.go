package service

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// TLSFiles are the certificate files of one side of the gateway link, read
// again when they change. On the gateway, Cert and Key are its server
// certificate and CA (-client-ca) is the authority whose client
// certificates it requires (mutual TLS; empty: none asked). On the
// coordinator, Cert and Key are its client certificate (empty: none sent)
// and CA (-ca) the authority that signed the gateway's certificate (empty:
// the system's roots).
//
// Load reads them once; Watch reads them again on SIGHUP and when a file's
// modification time or size changes. A failed reload is logged and the
// certificates already loaded stay in use, so a half-copied file never
// takes the link down. Connections already open keep the certificate they
// were made with.
type TLSFiles struct {
	Cert, Key, CA string
	// CAFlag, CertFlag and KeyFlag name the settings in error messages.
	// Defaults "-ca", "-cert" and "-key".
	CAFlag, CertFlag, KeyFlag string
	// Log receives reloads and refused clients. Default: discard.
	Log *slog.Logger

	cur   atomic.Pointer[tlsState]
	mu    sync.Mutex // serialises loads
	stamp string     // sizes and times of the files last loaded
}

type tlsState struct {
	cert *tls.Certificate // nil: none
	pool *x509.CertPool   // nil: none (system roots on a client)
}

// Enabled reports whether any file is set.
func (t *TLSFiles) Enabled() bool { return t.Cert != "" || t.Key != "" || t.CA != "" }

func (t *TLSFiles) flag(set, def string) string {
	if set != "" {
		return set
	}
	return def
}

func (t *TLSFiles) log() *slog.Logger {
	if t.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Log
}

// Load reads the files. The error names the setting and what it wants.
func (t *TLSFiles) Load() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.load()
}

func (t *TLSFiles) load() error {
	certFlag, keyFlag, caFlag := t.flag(t.CertFlag, "-cert"), t.flag(t.KeyFlag, "-key"), t.flag(t.CAFlag, "-ca")
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("%s and %s go together: give both the certificate file and its private key file (PEM)", certFlag, keyFlag)
	}
	stamp := t.stampNow()
	var st tlsState
	if t.Cert != "" {
		c, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return fmt.Errorf("%s %s with %s %s: want a PEM certificate (chain) and its PEM private key: %v", certFlag, t.Cert, keyFlag, t.Key, err)
		}
		st.cert = &c
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return fmt.Errorf("%s: %v", caFlag, err)
		}
		st.pool = x509.NewCertPool()
		if !st.pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s %s: no PEM certificate in it; want the certificate authority's certificate, -----BEGIN CERTIFICATE-----", caFlag, t.CA)
		}
	}
	t.cur.Store(&st)
	t.stamp = stamp
	return nil
}

// stampNow describes the files' sizes and modification times.
func (t *TLSFiles) stampNow() string {
	s := ""
	for _, p := range []string{t.Cert, t.Key, t.CA} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
		} else {
			s += p + ":missing;"
		}
	}
	return s
}

// Reload reads the files again if they changed since the last load (or
// always, with force). On error the loaded certificates stay in use.
func (t *TLSFiles) Reload(force bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !force && t.stampNow() == t.stamp {
		return nil
	}
	if err := t.load(); err != nil {
		t.log().Error("certificates not reloaded; the ones loaded before stay in use", "err", err)
		return err
	}
	t.log().Info("certificates reloaded", "cert", t.Cert, "ca", t.CA)
	return nil
}

// Watch reloads the files on SIGHUP, and when they change (checked every
// interval; 0 means 10 s), until ctx ends. Call it after Load, in its own
// goroutine or not: it returns when ctx ends.
func (t *TLSFiles) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			t.Reload(true)
		case <-tick.C:
			t.Reload(false)
		}
	}
}

func (t *TLSFiles) state() *tlsState {
	if s := t.cur.Load(); s != nil {
		return s
	}
	return &tlsState{}
}

// ServerConfig is the gateway's TLS configuration: the current server
// certificate and, when CA is set, client certificates required and
// verified against it. Load first.
func (t *TLSFiles) ServerConfig() *tls.Config {
	caFlag := t.flag(t.CAFlag, "-client-ca")
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		st := t.state()
		c := base.Clone()
		c.GetConfigForClient = nil
		if st.cert != nil {
			c.Certificates = []tls.Certificate{*st.cert}
		}
		if st.pool != nil {
			// Asked, then checked here, so that a refusal is logged
			// with what the far side should do.
			c.ClientAuth = tls.RequestClientCert
			pool := st.pool
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				err := verifyClient(cs, pool)
				if err != nil {
					t.log().Warn("refused a client certificate", "err", err,
						"fix", "give the internet main -cert and -key for a client certificate that the "+caFlag+" authority signed")
				}
				return err
			}
		}
		return c, nil
	}
	return base
}

func verifyClient(cs tls.ConnectionState, pool *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the client sent no certificate, and mutual TLS requires one")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("client certificate %q not accepted: %v", cs.PeerCertificates[0].Subject.CommonName, err)
	}
	return nil
}

// ClientConfig is the coordinator's TLS configuration: the current client
// certificate when Cert is set, and the gateway's certificate verified
// against CA when set (else against the system's roots). Load first.
func (t *TLSFiles) ClientConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if st := t.state(); st.cert != nil {
			return st.cert, nil
		}
		return &tls.Certificate{}, nil // none: the gateway decides
	}
	if t.CA != "" {
		// The authority may be reloaded, so the chain is checked here
		// against the current one rather than by a fixed RootCAs; the
		// check is the one crypto/tls makes, host name included.
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the gateway sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, p := range cs.PeerCertificates[1:] {
				inter.AddCert(p)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: t.state().pool, Intermediates: inter})
			if err != nil {
				return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
			}
			return nil
		}
	}
	return c
}

// HTTPClient is an HTTP client for the coordinator's transport.Client
// (ClientOptions.HTTPClient) that uses ClientConfig, pooled, over
// HTTP/1.1, with a 5-minute timeout.
func (t *TLSFiles) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = t.ClientConfig()
	// HTTP/1.1: HTTP/2 would hide the reason a handshake failed ("client
	// conn could not be established"), and one sealed POST at a time per
	// connection is what the protocol does anyway.
	tr.ForceAttemptHTTP2 = false
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}
}

// ServeTLS serves srv over TLS with t's ServerConfig on a listener at
// srv.Addr. A request in plain HTTP to that port gets a 400 whose text says
// to use https://, instead of failing silently in the handshake.
func (t *TLSFiles) ServeTLS(srv *http.Server) error {
	addr := srv.Addr
	if addr == "" {
		addr = ":https"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return t.ServeTLSOn(srv, ln)
}

// ServeTLSOn is ServeTLS on a listener of the caller's.
func (t *TLSFiles) ServeTLSOn(srv *http.Server, ln net.Listener) error {
	srv.TLSConfig = t.ServerConfig()
	return srv.ServeTLS(PlainHTTPHint(ln), "", "")
}

// PlainHTTPHint wraps a listener meant for TLS so that a connection whose
// first bytes are a plain HTTP request, not a TLS handshake, is answered
// with a 400 telling the caller to use https:// and closed.
func PlainHTTPHint(ln net.Listener) net.Listener { return hintListener{ln} }

type hintListener struct{ net.Listener }

func (l hintListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &hintConn{Conn: c, r: bufio.NewReaderSize(c, 1024)}, nil
}

// hintConn peeks at the first byte on the first read, which runs in the
// connection's own goroutine (the handshake), not in Accept.
type hintConn struct {
	net.Conn
	r       *bufio.Reader
	checked bool
}

// PlainHTTPAnswer is the body of the 400 a plain HTTP request to a TLS
// port gets.
const PlainHTTPAnswer = "this port serves HTTPS only: use https:// in the URL (the internet main's -gateway), and -ca if the gateway's certificate is not signed by a public authority\n"

func (c *hintConn) Read(p []byte) (int, error) {
	if !c.checked {
		c.checked = true
		b, err := c.r.Peek(1)                         // under the server's handshake deadline
		if err == nil && b[0] >= 'A' && b[0] <= 'Z' { // GET, POST, …: not a TLS record (0x16)
			fmt.Fprintf(c.Conn, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(PlainHTTPAnswer), PlainHTTPAnswer)
			c.Conn.Close()
			return 0, errors.New("a plain HTTP request on the TLS port; answered with a hint to use https://")
		}
	}
	return c.r.Read(p)
}
