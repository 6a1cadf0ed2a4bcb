package transport

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// explainConn adds to an error from connecting to the gateway at base
// what to do about it, when it is one a setting can mend: a certificate
// the client cannot verify, one the gateway refused or did not get, or a
// gateway that speaks plain HTTP to an https:// URL. Other errors come back
// as they are.
func explainConn(base string, err error) error {
	if hint := connHint(base, err); hint != "" {
		return fmt.Errorf("%w; %s", err, hint)
	}
	return err
}

func connHint(base string, err error) string {
	var (
		ua   x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &ua):
		return "the gateway's certificate is signed by an authority this host does not trust: give the internet main -ca FILE with that authority's certificate (PEM)"
	case errors.As(err, &host):
		return fmt.Sprintf("the gateway's certificate does not name the host in %s: use a name the certificate carries in -gateway, or reissue it with this one", base)
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return fmt.Sprintf("the gateway's certificate is expired or not yet valid (this host's clock says %s): renew it, or check the clocks", time.Now().UTC().Format(time.RFC3339))
	case errors.As(err, &inv):
		return "the gateway's certificate is not valid for a TLS server: reissue it with the server-authentication usage"
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("the gateway at %s speaks plain HTTP: use http:// in -gateway, or give the external main -tls-cert and -tls-key", base)
	case strings.Contains(msg, "tls: certificate required"):
		return "the gateway requires a client certificate (mutual TLS): give the internet main -cert and -key for one signed by the gateway's -client-ca"
	case strings.Contains(msg, "tls: bad certificate"), strings.Contains(msg, "tls: unknown certificate authority"),
		strings.Contains(msg, "tls: unknown certificate"):
		return "the gateway refused this host's client certificate, or its lack of one (mutual TLS): give the internet main -cert and -key for one signed by the authority in the gateway's -client-ca, with the client-authentication usage"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Sprintf("the gateway at %s does not speak TLS there: use the gateway's HTTPS port, or http:// if it serves plain HTTP", base)
	}
	return ""
}
