package syncer_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// Promise 10: the roles count what they do in counters a host exports,
// refusals included.
func TestMetricsCountWhatRolesDo(t *testing.T) {
	is := is.New(t)
	const cs = 16 << 10
	z := newFileZones(t, "sqlite", "local", cs)
	m := metrics.New()
	z.gwOpts = &syncer.GatewayOptions{Metrics: m}
	z.restartGateway()
	var err error
	z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Metrics: m,
		Files: &syncer.FileOptions{Store: z.inetStore, ChunkSize: cs, Retention: -1}})
	is.NoErr(err)
	z.worker, err = syncer.NewIntranetWorker(z.intra, &syncer.WorkerOptions{Metrics: m,
		Files: syncer.FileOptions{Store: z.intraStore, ChunkSize: cs, Retention: -1}})
	is.NoErr(err)
	data := randBytes(31, 3*cs)
	put(t, z.inetStore, "m.bin", data)
	z.doc(gapsync.Internet, 1, "m.bin")
	z.doc(gapsync.Intranet, 2, "")
	r, w := z.round()
	is.NoErr(r.Err())
	is.Equal(w.Published, 1)
	// A replayed request and one sealed with another key of the same id
	// (a forgery) are refused, and counted.
	env := sealWith(t, z.keys, crypto_h(transport.PathFileRecords), []byte(`{"limit":1}`))
	is.Equal(z.post(transport.PathFileRecords, env).status, 200)
	is.Equal(z.post(transport.PathFileRecords, env).status, 409)
	is.Equal(z.post(transport.PathFileRecords, sealWith(t, otherKeyring(t), crypto_h(transport.PathFileRecords), []byte(`{}`))).status, 401)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got := rec.Body.String()
	for _, line := range []string{
		`gapsync_rows_total{direction="push",table="docs"} 1`,
		`gapsync_rows_total{direction="pull",table="docs"} 1`,
		`gapsync_files_total{direction="push",outcome="staged"} 1`,
		`gapsync_files_total{direction="push",outcome="sent"} 1`,
		`gapsync_files_total{direction="push",outcome="published"} 1`,
		`gapsync_bytes_total{kind="files"} 49152`,
		`gapsync_cycles_total{result="ok",role="coordinator"} 1`,
		`gapsync_cycles_total{result="ok",role="worker"} 1`,
		`gapsync_gateway_requests_total{path="/v1/files/records",result="ok"} 2`,
		`gapsync_gateway_requests_total{path="/v1/files/records",result="replayed"} 1`,
		`gapsync_gateway_requests_total{path="/v1/files/records",result="tampered"} 1`,
	} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, got)
		}
	}
	is.True(strings.Contains(got, `gapsync_gateway_requests_total{path="/v1/apply",result="ok"}`))
}
