// Package metrics counts what the three roles do, for a host to export to Prometheus.
//
// A host makes one *Metrics per process with New, hands it to the roles it
// runs, and either registers it into its own registry (it is a
// prometheus.Collector) or mounts Handler on its mux. Every method is a no-op
// on a nil *Metrics, so a role calls them unconditionally and a host that
// wants no metrics passes nil.
//
// The metrics, all counters unless stated:
//
//	gapsync_cycles_total{role,result}             finished cycles; result is "ok" or "error"
//	gapsync_cycle_duration_seconds{role}          histogram of cycle durations, 10 ms to 1 h
//	gapsync_last_success_timestamp_seconds{role}  gauge: unix time of the last ok cycle
//	gapsync_table_last_success_timestamp_seconds{table,direction}  gauge: unix time of the table's last ok run
//	gapsync_table_parked{table,direction}         gauge: 1 while the table is parked, else 0
//	gapsync_table_missing_column{table,direction,column}  gauge: 1 while the receiving side lacks a column the sending side has (schema drift)
//	gapsync_rows_total{table,direction}           rows moved; direction is "push" or "pull"
//	gapsync_bytes_total{kind}                     payload bytes moved; kind is "rows" or "files"
//	gapsync_conflicts_total{table}                rows changed on both sides, settled by the policy
//	gapsync_files_total{direction,outcome}        files by direction and outcome
//	gapsync_gateway_requests_total{path,result}   gateway requests; result is "ok" or the refusal's code
//	gapsync_gateway_request_duration_seconds{path}  histogram of the time the gateway took to answer, 1 ms to 2 min
//	gapsync_verify_rows{table}                    gauge: rows the table's last finished verification compared
//	gapsync_verify_differ_rows{table}             gauge: rows it found differing between the zones
//	gapsync_verify_last_timestamp_seconds{table}  gauge: unix time it finished
//	gapsync_verify_read_rows_total{side}          rows verifications read, by side ("internet", "intranet"): the pace
//	gapsync_verify_paced_seconds_total            time verifications waited to keep their rows-per-second limit
//	gapsync_throttled_seconds_total{table,reason}  time copiers were held back by a throttle; table "" is files
//	gapsync_throttle_busy{database}                gauge: 1 while the database is over a busy limit (copying paused), else 0
//	gapsync_database_running_statements{database}  gauge: statements running on the database at the last probe
//	gapsync_database_probe_latency_seconds{database}  gauge: how long the last probe of the database took
//
// A host adds collectors of its own with Register; the internet main adds
// the per-table state it reads from its database (service.ExportStatus):
//
//	gapsync_table_lag_seconds{table,direction}      gauge: how far the last good window is behind the database clock (estimated)
//	gapsync_table_rows_pending{table,direction}     gauge: rows changed since the last good window (estimated; push only)
//	gapsync_files_pending{origin,status}            gauge: file records not yet published, by step
//
// "push" is internet→intranet, "pull" is intranet→internet. A series appears
// when it is first counted; the first Cycle of a role also creates its "ok"
// and "error" series at zero, so increase() and rate() see the first error.
//
// Label values come from the caller. They should be few and stable: role
// names, table names, route paths (not raw request paths), and error codes.
// Values that are not valid UTF-8 are repaired rather than refused, so a call
// never panics.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gapsync/gapsync/throttle"
)

// Results of a cycle, as the result label of gapsync_cycles_total.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// RequestBuckets are the upper bounds, in seconds, of
// gapsync_gateway_request_duration_seconds: from 1 ms to two minutes.
var RequestBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120,
}

// DurationBuckets are the upper bounds, in seconds, of
// gapsync_cycle_duration_seconds: from 10 ms to one hour.
var DurationBuckets = []float64{
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30,
	60, 120, 300, 600, 1800, 3600,
}

// Metrics holds the counters of one process. It is safe for concurrent use, and every
// method is a no-op on a nil *Metrics, so a role calls them unconditionally.
type Metrics struct {
	cycles      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	tableOK     *prometheus.GaugeVec
	parked      *prometheus.GaugeVec
	missingCol  *prometheus.GaugeVec
	rows        *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	conflicts   *prometheus.CounterVec
	files       *prometheus.CounterVec
	requests    *prometheus.CounterVec
	reqTime     *prometheus.HistogramVec
	verify      verifyMetrics
	throttled   *prometheus.CounterVec
	busy        *prometheus.GaugeVec
	running     *prometheus.GaugeVec
	latency     *prometheus.GaugeVec

	handler http.Handler
	mux     *http.ServeMux // what Serve serves: /metrics and what Handle adds
	reg     *prometheus.Registry
}

// New returns a Metrics with every counter at zero and no series yet.
func New() *Metrics {
	m := &Metrics{
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gapsync_cycles_total",
			Help: "Finished sync cycles by role and result (ok or error).",
		}, []string{"role", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gapsync_cycle_duration_seconds",
			Help:    "Duration of finished sync cycles by role.",
			Buckets: DurationBuckets,
		}, []string{"role"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_last_success_timestamp_seconds",
			Help: "Unix time of the last successful cycle by role.",
		}, []string{"role"}),
		tableOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_table_last_success_timestamp_seconds",
			Help: "Unix time of the last successful run of a table in a direction.",
		}, []string{"table", "direction"}),
		parked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_table_parked",
			Help: "1 while a table is parked in a direction (its rows were refused for good), else 0.",
		}, []string{"table", "direction"}),
		missingCol: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_table_missing_column",
			Help: "1 while the receiving side of a table lacks a column the sending side has (its values wait).",
		}, []string{"table", "direction", "column"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gapsync_rows_total",
			Help: "Rows moved by table and direction (push: internet to intranet, pull: intranet to internet).",
		}, []string{"table", "direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gapsync_bytes_total",
			Help: "Payload bytes moved by kind (rows or files).",
		}, []string{"kind"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gapsync_conflicts_total",
			Help: "Rows changed on both sides and settled by the conflict policy, by table.",
		}, []string{"table"}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gapsync_files_total",
			Help: "Files by direction (push or pull) and outcome (staged, sent, published, failed).",
		}, []string{"direction", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gapsync_gateway_requests_total",
			Help: "Gateway requests by path and result (ok or the refusal's code).",
		}, []string{"path", "result"}),
		reqTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gapsync_gateway_request_duration_seconds",
			Help:    "Time the gateway took to answer a request, from its arrival to the end of the answer, by path.",
			Buckets: RequestBuckets,
		}, []string{"path"}),
		verify: newVerifyMetrics(),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gapsync_throttled_seconds_total",
			Help: "Time copiers were held back by the throttle, by table (empty: files) and reason.",
		}, []string{"table", "reason"}),
		busy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_throttle_busy",
			Help: "1 while the database is over a busy limit of the throttle and copying is paused, else 0.",
		}, []string{"database"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_database_running_statements",
			Help: "Statements running on the database at the throttle's last probe (-1: the engine cannot tell).",
		}, []string{"database"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_database_probe_latency_seconds",
			Help: "How long the throttle's last probe of the database took.",
		}, []string{"database"}),
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	m.reg = reg
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	m.mux = http.NewServeMux()
	m.mux.Handle("GET /metrics", m.handler)
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{
		m.cycles, m.duration, m.lastSuccess, m.tableOK, m.parked, m.missingCol, m.rows,
		m.bytes, m.conflicts, m.files, m.requests, m.reqTime,
		m.throttled, m.busy, m.running, m.latency,
	}, m.verify.collectors()...)
}

// Describe and Collect make *Metrics a prometheus.Collector, so a host registers it in its own registry: reg.MustRegister(m).
//
// Registering two *Metrics into one registry fails with a
// prometheus.AlreadyRegisteredError, since both describe the same metrics.
// One *Metrics may be registered into several registries.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	if m == nil {
		return
	}
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect sends the current value of every series; see Describe.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if m == nil {
		return
	}
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// Handler serves the counters (and nothing else) in the Prometheus exposition format, for hosts without a registry of their own.
//
// On a nil *Metrics it serves an empty exposition.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{})
	}
	return m.handler
}

// Serve serves Handler at /metrics on addr until ctx is done, for a main
// that has no HTTP server of its own to mount it on. It returns once the
// listener is closed: nil after ctx is done, or the error that stopped it
// (an address in use, say).
func (m *Metrics) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	srv := &http.Server{Handler: m.mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Handle serves h at pattern (a net/http ServeMux pattern) beside
// /metrics on the address Serve and Start listen on: a main mounts its
// /healthz and /readyz there. It is safe to call while serving.
func (m *Metrics) Handle(pattern string, h http.Handler) {
	if m != nil {
		m.mux.Handle(pattern, h)
	}
}

// Start is what a main calls: with addr set it returns new Metrics served
// at http://addr/metrics, with the Go runtime's and the process's
// collectors and gapsync_build_info beside them, until ctx is done (a failure to serve is logged,
// not fatal); with addr empty it returns nil, which counts nothing.
func Start(ctx context.Context, addr string, log *slog.Logger) *Metrics {
	if addr == "" {
		return nil
	}
	m := New()
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	go func() {
		if err := m.Serve(ctx, addr); err != nil && log != nil {
			log.Error("metrics not served", "err", err)
		}
	}()
	return m
}

// Cycle records one finished cycle of a role ("coordinator", "worker"): its duration, and success or failure.
//
// A nil err counts as "ok" and sets the role's last-success time to now; any
// other err counts as "error". A negative duration is recorded as zero.
func (m *Metrics) Cycle(role string, took time.Duration, err error) {
	if m == nil {
		return
	}
	role = label(role)
	ok := m.cycles.WithLabelValues(role, ResultOK)
	bad := m.cycles.WithLabelValues(role, ResultError)
	if err == nil {
		ok.Inc()
	} else {
		bad.Inc()
	}
	m.duration.WithLabelValues(role).Observe(max(took, 0).Seconds())
	if err == nil {
		m.lastSuccess.WithLabelValues(role).SetToCurrentTime()
	}
}

// TableSynced records a successful run of a table in a direction: its last-success time becomes now.
//
// Success is per table, so one failing table does not stop another's clock.
func (m *Metrics) TableSynced(table, direction string) {
	if m == nil {
		return
	}
	m.tableOK.WithLabelValues(label(table), label(direction)).SetToCurrentTime()
}

// TableParked sets whether a table is parked in a direction.
func (m *Metrics) TableParked(table, direction string, parked bool) {
	if m == nil {
		return
	}
	v := 0.0
	if parked {
		v = 1
	}
	m.parked.WithLabelValues(label(table), label(direction)).Set(v)
}

// MissingColumn sets whether the receiving side of a table in a direction
// lacks column; a column that arrived loses its series.
func (m *Metrics) MissingColumn(table, direction, column string, missing bool) {
	if m == nil {
		return
	}
	if !missing {
		m.missingCol.DeleteLabelValues(label(table), label(direction), label(column))
		return
	}
	m.missingCol.WithLabelValues(label(table), label(direction), label(column)).Set(1)
}

// Throttled adds the time a copier of table ("" for files) was held back
// for reason; it makes *Metrics a throttle.Recorder.
func (m *Metrics) Throttled(table, reason string, d time.Duration) {
	if m == nil || d <= 0 {
		return
	}
	m.throttled.WithLabelValues(label(table), label(reason)).Add(d.Seconds())
}

// Busy sets whether database is over a busy limit of the throttle.
func (m *Metrics) Busy(database string, busy bool) {
	if m == nil {
		return
	}
	v := 0.0
	if busy {
		v = 1
	}
	m.busy.WithLabelValues(label(database)).Set(v)
}

// Probed keeps the throttle's last reading of database.
func (m *Metrics) Probed(database string, l throttle.Load) {
	if m == nil {
		return
	}
	m.running.WithLabelValues(label(database)).Set(float64(l.Running))
	m.latency.WithLabelValues(label(database)).Set(l.Latency.Seconds())
}

// Rows counts rows moved for a table in a direction ("push" = internet→intranet, "pull" = intranet→internet).
func (m *Metrics) Rows(table, direction string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.rows.WithLabelValues(label(table), label(direction)).Add(float64(n))
}

// Bytes counts payload bytes moved; kind is "rows" or "files".
func (m *Metrics) Bytes(kind string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.bytes.WithLabelValues(label(kind)).Add(float64(n))
}

// Conflicts counts rows changed on both sides and settled by the policy.
func (m *Metrics) Conflicts(table string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.conflicts.WithLabelValues(label(table)).Add(float64(n))
}

// Files counts files by direction ("push"/"pull") and outcome ("staged", "sent", "published", "failed").
func (m *Metrics) Files(direction, outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.files.WithLabelValues(label(direction), label(outcome)).Add(float64(n))
}

// Request counts gateway requests by path and result: "ok", or the refusal's short code (e.g. "tampered", "replayed", "unknown_table").
//
// path should be the route the gateway serves (such as "/v1/apply"), not the
// raw request path, so that a caller cannot create series at will.
func (m *Metrics) Request(path, result string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(label(path), label(result)).Inc()
}

// RequestDuration records how long the gateway took to answer a request to path (a route it serves, as for Request).
func (m *Metrics) RequestDuration(path string, took time.Duration) {
	if m == nil {
		return
	}
	m.reqTime.WithLabelValues(label(path)).Observe(max(took, 0).Seconds())
}

// Register adds c to the registry that Serve and Start serve, beside the
// counters: a host's own collectors, or ones that read state at scrape
// time. It fails as the registry's Register does (a metric already there).
func (m *Metrics) Register(c prometheus.Collector) error {
	if m == nil {
		return nil
	}
	return m.reg.Register(c)
}

// label returns s as a valid label value: invalid UTF-8 would make the
// client library panic, so it is replaced.
func label(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// buildInfo is gapsync_build_info: 1, labelled with the module's version
// as the binary was built and the Go version.
func buildInfo() prometheus.Collector {
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, d := range bi.Deps {
			if d.Path == "github.com/gapsync/gapsync" {
				version = d.Version
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gapsync_build_info",
		Help:        "Always 1; the labels say which gapsync and Go built this binary.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
