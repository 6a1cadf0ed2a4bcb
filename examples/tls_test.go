package examples_test

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testcert"
	"github.com/gapsync/gapsync/internal/testdb"
)

// TestMainsMutualTLS runs the gateway with -client-ca and a coordinator
// -check against it: refused without a client certificate, with an error
// that names the flags to give, and through with one.
func TestMainsMutualTLS(t *testing.T) {
	is := is.New(t)
	inetDSN, intraDSN := testdb.MySQL(t), testdb.MySQL(t)
	bin := buildMains(t, "internet", "external")
	key, err := crypto.GenerateKey("tls1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())

	dir := t.TempDir()
	serverCA, clientCA := testcert.New(t, "server authority"), testcert.New(t, "client authority")
	ca := serverCA.WriteCA(t, filepath.Join(dir, "ca.pem"))
	clientCAFile := clientCA.WriteCA(t, filepath.Join(dir, "client-ca.pem"))
	serverCA.Issue(t, dir, "gateway", "gateway", x509.ExtKeyUsageServerAuth)
	clientCA.Issue(t, dir, "coordinator", "coordinator", x509.ExtKeyUsageClientAuth)

	addr := freeAddr(t)
	startExternal(t, bin, env, addr, intraDSN, "-tls-cert", filepath.Join(dir, "gateway.crt"),
		"-tls-key", filepath.Join(dir, "gateway.key"), "-client-ca", clientCAFile)

	check := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "internet"), append([]string{"-check", "-db", inetDSN, "-gateway", "https://" + addr}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := check("-ca", ca)
	is.True(err != nil)
	t.Log(out)
	is.True(strings.Contains(out, "give the internet main -cert and -key"))

	out, err = check("-ca", ca, "-cert", filepath.Join(dir, "coordinator.crt"), "-key", filepath.Join(dir, "coordinator.key"))
	if err != nil {
		t.Fatalf("with a client certificate: %v\n%s", err, out)
	}
	is.True(strings.Contains(out, "setup check clean"))

	// Without -ca the private authority is not trusted; the error says so.
	out, err = check("-cert", filepath.Join(dir, "coordinator.crt"), "-key", filepath.Join(dir, "coordinator.key"))
	is.True(err != nil)
	is.True(strings.Contains(out, "-ca FILE"))
}
