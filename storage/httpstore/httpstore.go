// Package httpstore is a read-only syncer.FileStore over HTTP(S): the source
// for rows whose file columns hold URLs rather than paths.
//
// Keys are absolute http or https URLs. Because a URL in a row is input
// that someone else wrote, the store defends against server-side request
// forgery (SSRF) at three points:
//
//   - Before any request, the URL must parse, use http or https, carry no
//     userinfo, and name a host in Options.AllowHosts (exactly, or
//     host:port). An empty allowlist refuses every URL.
//   - Every connection goes through a dialer that checks the address
//     actually dialled, after DNS resolution, so a name that resolves (or
//     is rebound) to an internal address is refused: loopback, private
//     (RFC 1918, fc00::/7), link-local (169.254.0.0/16 with the cloud
//     metadata address 169.254.169.254, fe80::/10), unspecified and
//     0.0.0.0/8, multicast and broadcast, CGNAT 100.64.0.0/10, other
//     reserved IPv4 ranges, and IPv6 forms that embed an IPv4 address
//     (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16),
//     judged by the address they embed. Options.AllowAddrs lets chosen
//     prefixes through (an intranet file server at 10.1.2.3, say).
//   - Every redirect is checked like the first URL, and there are at most
//     Options.MaxRedirects of them.
//
// Refusals wrap gapsync.ErrForbiddenURL; a key that is not a URL at all (no
// scheme, or unparsable) wraps gapsync.ErrBadPath. No proxy is taken from
// the environment.
//
// Stat sends HEAD (or, where HEAD is refused with 405 or 501, a GET of the
// first byte) and reads the size from Content-Length or Content-Range;
// files over Options.MaxSize wrap gapsync.ErrTooLarge. OpenRange sends a
// GET with a Range header and accepts 206 from the asked offset, or 200
// only for a range that starts at 0. Put returns gapsync.ErrReadOnly.
//
// A server that stalls, or trickles bytes, cannot hold a reader: a body
// that yields no byte for Options.IdleTimeout fails with an error wrapping
// iox.ErrIdle (the caller's context bounds the whole transfer).
//
// The store is a syncer.VersionedStore. A file's version is its ETag, or
// without one its Last-Modified time (no version when the server sends
// neither). OpenRangeAt sends If-Match (a strong ETag) or
// If-Unmodified-Since, and compares the validator of every answer itself,
// for servers that ignore the condition on ranges: a file changed since
// its Stat fails with gapsync.ErrChanged instead of crossing as a mix of
// two versions.
package httpstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/internal/iox"
	"github.com/gapsync/gapsync/syncer"
)

// Options configure a Store. AllowHosts is required in practice: without
// it every URL is refused.
type Options struct {
	// AllowHosts lists the hosts URLs may name: "files.example.com"
	// (any port) or "files.example.com:8443" (that port only; a URL
	// without a port has its scheme's default). IPv6 literals as
	// "[::1]:8080" or "::1". Compared case-insensitively.
	AllowHosts []string
	// AllowAddrs lists address prefixes that may be dialled although they
	// are loopback, private or otherwise internal (an intranet file
	// server). Public addresses need no entry.
	AllowAddrs []netip.Prefix
	// MaxSize is the largest file accepted (default 1 GiB).
	MaxSize int64
	// Timeout bounds connecting, the TLS handshake and the wait for
	// response headers of each request (default 30 s). Reading a body is
	// bounded by the caller's context.
	Timeout time.Duration
	// IdleTimeout fails a response body that yields no byte for this long
	// (default 30 s; negative: no limit), so that a server that trickles
	// bytes cannot keep a reader waiting indefinitely.
	IdleTimeout time.Duration
	// MaxRedirects is how many redirects one request follows (default 5;
	// negative: none).
	MaxRedirects int
	// Logger receives refusals (Warn) and requests (Debug); default none.
	Logger *slog.Logger
}

// DefaultMaxSize is Options.MaxSize when unset.
const DefaultMaxSize = 1 << 30

// Store reads files from allowlisted HTTP(S) servers. It is safe for
// concurrent use.
type Store struct {
	opts      Options
	hosts     map[string]bool // normalized AllowHosts entries
	client    *http.Client
	transport *http.Transport
	log       *slog.Logger
}

var _ syncer.VersionedStore = (*Store)(nil)

// New returns a store with the given options (nil: defaults, which refuse
// every URL). Close releases its idle connections.
func New(o *Options) (*Store, error) {
	var opts Options
	if o != nil {
		opts = *o
		opts.AllowHosts = append([]string(nil), o.AllowHosts...)
		opts.AllowAddrs = append([]netip.Prefix(nil), o.AllowAddrs...)
	}
	if opts.MaxSize < 0 {
		return nil, fmt.Errorf("httpstore: negative MaxSize %d", opts.MaxSize)
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("httpstore: negative Timeout %v", opts.Timeout)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	if opts.MaxRedirects == 0 {
		opts.MaxRedirects = 5
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{opts: opts, hosts: map[string]bool{}, log: opts.Logger}
	for _, h := range opts.AllowHosts {
		n, err := normalizeHost(h)
		if err != nil {
			return nil, fmt.Errorf("httpstore: AllowHosts entry %q: %w", h, err)
		}
		s.hosts[n] = true
	}
	for i, p := range opts.AllowAddrs {
		if !p.IsValid() {
			return nil, fmt.Errorf("httpstore: AllowAddrs entry %d is not a valid prefix", i)
		}
		opts.AllowAddrs[i] = p.Masked()
	}
	dialer := &net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second, Control: s.control}
	s.transport = &http.Transport{
		Proxy:                  nil, // never from the environment
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           32,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true, // ranges are of the stored bytes, not of a decoded stream
		MaxResponseHeaderBytes: 64 << 10,
	}
	s.client = &http.Client{Transport: s.transport, CheckRedirect: s.checkRedirect}
	return s, nil
}

// Close releases idle connections.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// normalizeHost lowercases an allowlist entry or URL host and strips the
// brackets of a port-less IPv6 literal: "Example.COM" → "example.com",
// "[::1]" → "::1", "[::1]:80" stays "[::1]:80".
func normalizeHost(h string) (string, error) {
	h = strings.ToLower(strings.TrimSpace(h))
	if h == "" || strings.ContainsAny(h, "/@?#\\ ") {
		return "", errors.New("not a host or host:port")
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if host == "" {
			return "", errors.New("no host")
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return "", fmt.Errorf("bad port %q", port)
		}
		return net.JoinHostPort(host, port), nil
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.Contains(h, ":") {
		if _, err := netip.ParseAddr(h); err != nil {
			return "", errors.New("not a host or host:port")
		}
	}
	return h, nil
}

// checkURL parses key and applies the pre-request rules.
func (s *Store) checkURL(key string) (*url.URL, error) {
	if key == "" || strings.ContainsAny(key, "\x00\\") {
		return nil, fmt.Errorf("%w: %q is not a URL", gapsync.ErrBadPath, key)
	}
	u, err := url.Parse(key)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %q is not an absolute URL", gapsync.ErrBadPath, key)
	}
	if err := s.checkParsed(u); err != nil {
		return nil, err
	}
	return u, nil
}

// checkParsed applies the URL rules to u (also to every redirect).
func (s *Store) checkParsed(u *url.URL) error {
	switch u.Scheme {
	case "http", "https":
	default:
		return s.refuse(u, "scheme is not http or https")
	}
	if u.User != nil {
		return s.refuse(u, "URL carries userinfo")
	}
	host := u.Hostname()
	if host == "" {
		return s.refuse(u, "URL has no host")
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	h, err := normalizeHost(host)
	if err != nil {
		return s.refuse(u, "host is not valid")
	}
	if !s.hosts[h] && !s.hosts[net.JoinHostPort(h, port)] {
		return s.refuse(u, "host is not in AllowHosts")
	}
	// A literal address is judged now, without a dial.
	if a, err := netip.ParseAddr(h); err == nil {
		if why := s.addrRefused(a); why != "" {
			return s.refuse(u, "address is "+why)
		}
	}
	return nil
}

func (s *Store) refuse(u *url.URL, why string) error {
	shown := u.Redacted()
	s.log.Warn("httpstore: URL refused", "url", shown, "reason", why)
	return &refusal{fmt.Errorf("%w: %s", gapsync.ErrForbiddenURL, why)}
}

// refusal marks the store's own refusals, so that one made inside the HTTP
// client (a redirect, a dial) comes back without the client's wrapping.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// control runs before every connect with the address being dialled.
func (s *Store) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &refusal{fmt.Errorf("%w: cannot check dial address %q", gapsync.ErrForbiddenURL, address)}
	}
	if why := s.addrRefused(ap.Addr()); why != "" {
		s.log.Warn("httpstore: dial refused", "addr", address, "reason", why)
		return &refusal{fmt.Errorf("%w: dial %s: address is %s", gapsync.ErrForbiddenURL, address, why)}
	}
	return nil
}

// addrRefused says why a is not to be dialled, or "" when it may be.
func (s *Store) addrRefused(a netip.Addr) string {
	a = a.WithZone("")
	for _, p := range s.opts.AllowAddrs {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return ""
		}
	}
	return Internal(a)
}

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	nat64l    = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
	v4compat  = netip.MustParsePrefix("::/96")
	reserved4 = []struct {
		p   netip.Prefix
		why string
	}{
		{netip.MustParsePrefix("0.0.0.0/8"), "this-network (0.0.0.0/8)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"},
		{netip.MustParsePrefix("192.0.2.0/24"), "documentation (TEST-NET-1)"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (198.18.0.0/15)"},
		{netip.MustParsePrefix("198.51.100.0/24"), "documentation (TEST-NET-2)"},
		{netip.MustParsePrefix("203.0.113.0/24"), "documentation (TEST-NET-3)"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4) or broadcast"},
	}
	reserved6 = []struct {
		p   netip.Prefix
		why string
	}{
		{netip.MustParsePrefix("100::/64"), "discard-only (100::/64)"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation (2001:db8::/32)"},
		{netip.MustParsePrefix("fec0::/10"), "site-local (fec0::/10)"},
	}
)

// Internal says why a is an address an allowlisted URL must not reach
// without an AllowAddrs entry (loopback, private, link-local, …), or ""
// for a public unicast address. IPv6 forms that embed an IPv4 address are
// judged by that address.
func Internal(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("")
	if a.Is4In6() {
		if why := Internal(a.Unmap()); why != "" {
			return why + " (IPv4-mapped)"
		}
		return ""
	}
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		if a == netip.AddrFrom4([4]byte{169, 254, 169, 254}) {
			return "link-local (cloud metadata)"
		}
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case cgnat.Contains(a):
		return "shared address space (CGNAT 100.64.0.0/10)"
	}
	if a.Is4() {
		for _, r := range reserved4 {
			if r.p.Contains(a) {
				return r.why
			}
		}
		return ""
	}
	for _, r := range reserved6 {
		if r.p.Contains(a) {
			return r.why
		}
	}
	b := a.As16()
	switch {
	case v4compat.Contains(a), nat64.Contains(a):
		// ::a.b.c.d and 64:ff9b::a.b.c.d carry the IPv4 address last.
		if why := Internal(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
			return why + " (embedded in IPv6)"
		}
	case sixToFour.Contains(a):
		if why := Internal(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
			return why + " (embedded in 6to4)"
		}
	case nat64l.Contains(a):
		return "local-use NAT64 (64:ff9b:1::/48)"
	case teredo.Contains(a):
		return "Teredo (2001::/32)"
	}
	return ""
}

func (s *Store) checkRedirect(req *http.Request, via []*http.Request) error {
	if s.opts.MaxRedirects < 0 || len(via) > s.opts.MaxRedirects {
		return fmt.Errorf("stopped after %d redirects", max(s.opts.MaxRedirects, 0))
	}
	if err := s.checkParsed(req.URL); err != nil {
		return &refusal{fmt.Errorf("redirect to %s: %w", req.URL.Redacted(), err)}
	}
	return nil
}

// do sends one request to a checked URL. A refusal inside the client
// (redirect, dial) comes back as that refusal alone, without the
// transport's wrapping.
func (s *Store) do(ctx context.Context, method string, u *url.URL, rng, version string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "gapsync-httpstore")
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	if lm, ok := strings.CutPrefix(version, lastModified); ok {
		req.Header.Set("If-Unmodified-Since", lm)
	} else if strings.HasPrefix(version, `"`) {
		req.Header.Set("If-Match", version) // weak ETags never match If-Match
	}
	s.log.Debug("httpstore: request", "method", method, "url", u.Redacted(), "range", rng)
	resp, err := s.client.Do(req)
	if err != nil {
		if r := (*refusal)(nil); errors.As(err, &r) {
			return nil, r
		}
		return nil, err
	}
	return resp, nil
}

// Stat returns the size of the file at the URL key.
func (s *Store) Stat(ctx context.Context, key string) (syncer.FileInfo, error) {
	size, version, err := s.stat(ctx, key)
	if err != nil {
		return syncer.FileInfo{}, fmt.Errorf("httpstore: stat %s: %w", redact(key), err)
	}
	return syncer.FileInfo{Key: key, Size: size, Version: version}, nil
}

// lastModified starts a version that is a Last-Modified time, not an ETag.
const lastModified = "last-modified:"

// versionOf is the version a response names: its ETag, else its
// Last-Modified time, else "".
func versionOf(h http.Header) string {
	if e := h.Get("ETag"); e != "" {
		return e
	}
	if lm := h.Get("Last-Modified"); lm != "" {
		return lastModified + lm
	}
	return ""
}

// sameKind is the validator of h of the kind version is (ETag or
// Last-Modified), "" when h has none.
func sameKind(h http.Header, version string) string {
	if strings.HasPrefix(version, lastModified) {
		if lm := h.Get("Last-Modified"); lm != "" {
			return lastModified + lm
		}
		return ""
	}
	return h.Get("ETag")
}

func (s *Store) stat(ctx context.Context, key string) (int64, string, error) {
	u, err := s.checkURL(key)
	if err != nil {
		return 0, "", err
	}
	resp, err := s.do(ctx, http.MethodHead, u, "", "")
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	var size int64
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength < 0 {
			return s.statByGet(ctx, u)
		}
		size = resp.ContentLength
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return s.statByGet(ctx, u)
	default:
		return 0, "", statusError(resp)
	}
	if size > s.opts.MaxSize {
		return 0, "", fmt.Errorf("%w: %d bytes, over the %d-byte limit", gapsync.ErrTooLarge, size, s.opts.MaxSize)
	}
	return size, versionOf(resp.Header), nil
}

// statByGet learns the size from a GET of the first byte.
func (s *Store) statByGet(ctx context.Context, u *url.URL) (int64, string, error) {
	resp, err := s.do(ctx, http.MethodGet, u, "bytes=0-0", "")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var size int64
	switch resp.StatusCode {
	case http.StatusPartialContent:
		_, _, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return 0, "", err
		}
		if total < 0 {
			return 0, "", errors.New("the server does not say the file's size")
		}
		size = total
	case http.StatusOK:
		if resp.ContentLength < 0 {
			return 0, "", errors.New("the server does not say the file's size")
		}
		size = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		// "bytes */0": an empty file has no first byte.
		if cr := resp.Header.Get("Content-Range"); cr == "bytes */0" {
			return 0, versionOf(resp.Header), nil
		}
		return 0, "", statusError(resp)
	default:
		return 0, "", statusError(resp)
	}
	if size > s.opts.MaxSize {
		return 0, "", fmt.Errorf("%w: %d bytes, over the %d-byte limit", gapsync.ErrTooLarge, size, s.opts.MaxSize)
	}
	return size, versionOf(resp.Header), nil
}

func statusError(resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		return fmt.Errorf("%w (HTTP %d)", fs.ErrNotExist, resp.StatusCode)
	}
	return fmt.Errorf("HTTP %s", resp.Status)
}

// parseContentRange parses "bytes first-last/total" (total -1 for "*").
func parseContentRange(s string) (first, last, total int64, err error) {
	bad := fmt.Errorf("bad Content-Range %q", s)
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if first, err = strconv.ParseInt(a, 10, 64); err != nil || first < 0 {
		return 0, 0, 0, bad
	}
	if last, err = strconv.ParseInt(b, 10, 64); err != nil || last < first {
		return 0, 0, 0, bad
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= last {
			return 0, 0, 0, bad
		}
	}
	return first, last, total, nil
}

// OpenRange returns a reader of n bytes of the file at the URL key from off.
func (s *Store) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	return s.OpenRangeAt(ctx, key, "", off, n)
}

// OpenRangeAt is OpenRange of the file at the version Stat returned: an
// answer of another version (or 412 Precondition Failed) fails with
// gapsync.ErrChanged.
func (s *Store) OpenRangeAt(ctx context.Context, key, version string, off, n int64) (io.ReadCloser, error) {
	rc, err := iox.OpenIdle(ctx, s.opts.IdleTimeout, func(ctx context.Context) (io.ReadCloser, error) {
		return s.openRange(ctx, key, version, off, n)
	})
	if err != nil {
		return nil, fmt.Errorf("httpstore: open %s [%d,+%d): %w", redact(key), off, n, err)
	}
	return rc, nil
}

func (s *Store) openRange(ctx context.Context, key, version string, off, n int64) (io.ReadCloser, error) {
	u, err := s.checkURL(key)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 {
		return nil, errors.New("negative offset or length")
	}
	if off > s.opts.MaxSize || n > s.opts.MaxSize-off {
		return nil, fmt.Errorf("%w: range ends past the %d-byte limit", gapsync.ErrTooLarge, s.opts.MaxSize)
	}
	if n == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	rng := fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	resp, err := s.do(ctx, http.MethodGet, u, rng, version)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (io.ReadCloser, error) {
		resp.Body.Close()
		return nil, err
	}
	if version != "" {
		if resp.StatusCode == http.StatusPreconditionFailed {
			return fail(fmt.Errorf("%w: HTTP 412, the file is no longer the version %s", gapsync.ErrChanged, version))
		}
		// A server may ignore the condition; an answer that names its
		// version must name the one asked for.
		if got := sameKind(resp.Header, version); got != "" && got != version {
			return fail(fmt.Errorf("%w: the server sent version %s, not %s", gapsync.ErrChanged, got, version))
		}
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		first, last, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return fail(err)
		}
		if first != off {
			return fail(fmt.Errorf("asked for %s, got Content-Range %q", rng, resp.Header.Get("Content-Range")))
		}
		if total > s.opts.MaxSize {
			return fail(fmt.Errorf("%w: %d bytes, over the %d-byte limit", gapsync.ErrTooLarge, total, s.opts.MaxSize))
		}
		if last < off+n-1 {
			return fail(fmt.Errorf("range ends past the file's end (got %d of %d bytes): %w", last-first+1, n, io.ErrUnexpectedEOF))
		}
	case http.StatusOK:
		if off != 0 {
			return fail(fmt.Errorf("asked for %s, the server sent the whole file", rng))
		}
		if resp.ContentLength > s.opts.MaxSize {
			return fail(fmt.Errorf("%w: %d bytes, over the %d-byte limit", gapsync.ErrTooLarge, resp.ContentLength, s.opts.MaxSize))
		}
		if resp.ContentLength >= 0 && resp.ContentLength < n {
			return fail(fmt.Errorf("range ends past the file's %d bytes: %w", resp.ContentLength, io.ErrUnexpectedEOF))
		}
	case http.StatusRequestedRangeNotSatisfiable:
		return fail(fmt.Errorf("range %s is past the file's end: %w", rng, io.ErrUnexpectedEOF))
	default:
		return fail(statusError(resp))
	}
	return iox.ExactBody(resp.Body, n), nil
}

// Put always fails: an HTTP source is read-only.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, info syncer.FileInfo) error {
	return fmt.Errorf("httpstore: put %s: %w", redact(key), gapsync.ErrReadOnly)
}

// redact hides the password of a URL for messages.
func redact(key string) string {
	if u, err := url.Parse(key); err == nil {
		return u.Redacted()
	}
	return fmt.Sprintf("%q", key)
}
