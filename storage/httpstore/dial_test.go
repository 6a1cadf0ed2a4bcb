package httpstore

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// The dialer's check, which catches names that resolve to internal
// addresses, refuses what the URL check would, and AllowAddrs opens it.
func TestDialControl(t *testing.T) {
	is := is.New(t)
	st, err := New(&Options{AllowAddrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}})
	is.NoErr(err)
	for _, addr := range []string{"169.254.169.254:80", "127.0.0.1:443", "[::1]:80", "[::ffff:169.254.169.254]:80", "10.8.0.1:80", "[fe80::1%eth0]:80", "0.0.0.0:80"} {
		err := st.control("tcp", addr, nil)
		if !errors.Is(err, gapsync.ErrForbiddenURL) {
			t.Errorf("control(%s) = %v, want gapsync.ErrForbiddenURL", addr, err)
		}
	}
	for _, addr := range []string{"8.8.8.8:443", "10.9.1.2:80", "[::ffff:10.9.1.2]:80", "[2606:4700:4700::1111]:443"} {
		is.NoErr(st.control("tcp", addr, nil))
	}
	is.True(errors.Is(st.control("tcp", "not an address", nil), gapsync.ErrForbiddenURL))
}

// No proxy is ever taken from the environment.
func TestNoProxy(t *testing.T) {
	is := is.New(t)
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	st, err := New(&Options{AllowHosts: []string{"example.com"}})
	is.NoErr(err)
	is.True(st.transport.Proxy == nil)
	is.True(st.transport.DialContext != nil)
}
