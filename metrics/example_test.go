package metrics_test

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gapsync/gapsync/metrics"
)

// A host without a registry of its own mounts Handler on its mux, next to
// whatever else it serves, and hands m to the roles it runs.
func ExampleMetrics_Handler() {
	m := metrics.New()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(mux) // in a real host: http.ListenAndServe(addr, mux)
	defer srv.Close()

	// What a coordinator records for one cycle.
	m.Rows("demo", "push", 212)
	m.Bytes("rows", 4096)
	m.Cycle("coordinator", 1500*time.Millisecond, nil)

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "gapsync_rows_total") ||
			strings.HasPrefix(line, "gapsync_bytes_total") ||
			strings.HasPrefix(line, "gapsync_cycles_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// gapsync_bytes_total{kind="rows"} 4096
	// gapsync_cycles_total{result="error",role="coordinator"} 0
	// gapsync_cycles_total{result="ok",role="coordinator"} 1
	// gapsync_rows_total{direction="push",table="demo"} 212
}

// A host with a registry of its own registers m into it, beside its other
// collectors, and serves the registry as it already does.
func ExampleMetrics_Describe() {
	m := metrics.New()

	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	reg.MustRegister(collectors.NewGoCollector()) // the host's own collectors

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	// What a gateway records.
	m.Request("/v1/apply", "ok")
	m.Request("/v1/apply", "replayed")

	mfs, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mf := range mfs {
		if mf.GetName() != "gapsync_gateway_requests_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, lp := range s.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			fmt.Println(strings.Join(labels, " "), s.GetCounter().GetValue())
		}
	}

	// A second Metrics in the same registry is refused.
	err = reg.Register(metrics.New())
	var are prometheus.AlreadyRegisteredError
	fmt.Println(errors.As(err, &are))
	// Output:
	// path=/v1/apply result=ok 1
	// path=/v1/apply result=replayed 1
	// true
}
