package metrics_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/throttle"
)

var allNames = []string{
	"gapsync_bytes_total",
	"gapsync_conflicts_total",
	"gapsync_cycle_duration_seconds",
	"gapsync_cycles_total",
	"gapsync_database_probe_latency_seconds",
	"gapsync_database_running_statements",
	"gapsync_files_total",
	"gapsync_gateway_request_duration_seconds",
	"gapsync_gateway_requests_total",
	"gapsync_last_success_timestamp_seconds",
	"gapsync_rows_total",
	"gapsync_table_last_success_timestamp_seconds",
	"gapsync_table_missing_column",
	"gapsync_table_parked",
	"gapsync_throttle_busy",
	"gapsync_throttled_seconds_total",
	"gapsync_verify_differ_rows",
	"gapsync_verify_last_timestamp_seconds",
	"gapsync_verify_paced_seconds_total",
	"gapsync_verify_read_rows_total",
	"gapsync_verify_rows",
}

// scrape fetches h over HTTP and parses the text exposition.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: HTTP %d: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("scrape: Content-Type %q, want the text exposition format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape: parse: %v", err)
	}
	return mfs
}

// find returns the series of mf whose labels are exactly want, or nil.
func find(mf *dto.MetricFamily, want map[string]string) *dto.Metric {
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// counter returns the value of the counter series name{labels}, failing the
// test if it is missing.
func counter(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("%s: not exposed", name)
	}
	if mf.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("%s: type %v, want COUNTER", name, mf.GetType())
	}
	m := find(mf, labels)
	if m == nil {
		t.Fatalf("%s%v: no such series", name, labels)
	}
	return m.GetCounter().GetValue()
}

func names(mfs map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range mfs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestHandlerServesExactValues(t *testing.T) {
	is := is.New(t)
	m := metrics.New()

	m.Cycle("coordinator", 30*time.Millisecond, nil)
	m.Cycle("coordinator", 2*time.Second, errors.New("gateway down"))
	m.Cycle("coordinator", 90*time.Minute, nil) // beyond the last bucket
	m.Cycle("worker", 200*time.Millisecond, nil)

	m.Rows("demo", "push", 204)
	m.Rows("demo", "push", 8)
	m.Rows("demo", "pull", 5)
	m.Rows("attachments", "push", 3)
	m.Rows("ignored", "push", 0)
	m.Rows("ignored", "pull", -4)

	m.Bytes("rows", 1<<20)
	m.Bytes("rows", 10)
	m.Bytes("files", 65536)
	m.Bytes("ignored", 0)
	m.Bytes("ignored", -1)

	m.Conflicts("demo", 2)
	m.Conflicts("demo", 1)
	m.Conflicts("ignored", 0)

	m.Files("push", "staged", 3)
	m.Files("push", "sent", 3)
	m.Files("push", "published", 2)
	m.Files("push", "failed", 1)
	m.Files("pull", "published", 1)
	m.Files("pull", "ignored", 0)

	m.Request("/v1/apply", "ok")
	m.Request("/v1/apply", "ok")
	m.Request("/v1/apply", "tampered")
	m.Request("/v1/pull", "replayed")
	m.Request("/v1/apply", "unknown_table")
	m.RequestDuration("/v1/apply", 20*time.Millisecond)

	m.TableSynced("demo", "push")
	m.TableParked("demo", "pull", true)
	m.MissingColumn("demo", "push", "note", true)
	m.MissingColumn("demo", "push", "gone", true)
	m.MissingColumn("demo", "push", "gone", false) // arrived: the series goes

	m.TableVerified("demo", 3001, 4, time.Unix(1_700_000_000, 500_000_000))
	m.VerifyRead("intranet", 3000)
	m.VerifyRead("internet", 3001)
	m.VerifyRead("internet", 0)
	m.VerifyPaced(1500 * time.Millisecond)
	m.VerifyPaced(-time.Second)

	m.Throttled("demo", throttle.ReasonRows, 1500*time.Millisecond)
	m.Throttled("demo", throttle.ReasonRows, 500*time.Millisecond)
	m.Throttled("", throttle.ReasonFiles, 3*time.Second)
	m.Throttled("ignored", throttle.ReasonBytes, 0)
	m.Busy("intranet", true)
	m.Probed("intranet", throttle.Load{Running: 31, Latency: 250 * time.Millisecond})

	mfs := scrape(t, m.Handler())
	is.Equal(names(mfs), allNames) // every metric, and nothing else (no Go runtime metrics)

	c := func(name string, kv ...string) float64 {
		t.Helper()
		labels := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			labels[kv[i]] = kv[i+1]
		}
		return counter(t, mfs, name, labels)
	}

	is.Equal(c("gapsync_cycles_total", "role", "coordinator", "result", "ok"), 2.0)
	is.Equal(c("gapsync_cycles_total", "role", "coordinator", "result", "error"), 1.0)
	is.Equal(c("gapsync_cycles_total", "role", "worker", "result", "ok"), 1.0)
	is.Equal(c("gapsync_cycles_total", "role", "worker", "result", "error"), 0.0) // created at zero
	is.Equal(len(mfs["gapsync_cycles_total"].GetMetric()), 4)

	is.Equal(c("gapsync_rows_total", "table", "demo", "direction", "push"), 212.0)
	is.Equal(c("gapsync_rows_total", "table", "demo", "direction", "pull"), 5.0)
	is.Equal(c("gapsync_rows_total", "table", "attachments", "direction", "push"), 3.0)
	is.Equal(len(mfs["gapsync_rows_total"].GetMetric()), 3) // n <= 0 made no series

	is.Equal(c("gapsync_throttled_seconds_total", "table", "demo", "reason", "rows"), 2.0)
	is.Equal(c("gapsync_throttled_seconds_total", "table", "", "reason", "file_bandwidth"), 3.0)
	is.Equal(len(mfs["gapsync_throttled_seconds_total"].GetMetric()), 2) // d <= 0 made no series
	is.Equal(find(mfs["gapsync_throttle_busy"], map[string]string{"database": "intranet"}).GetGauge().GetValue(), 1.0)
	is.Equal(find(mfs["gapsync_database_running_statements"], map[string]string{"database": "intranet"}).GetGauge().GetValue(), 31.0)
	is.Equal(find(mfs["gapsync_database_probe_latency_seconds"], map[string]string{"database": "intranet"}).GetGauge().GetValue(), 0.25)

	is.Equal(c("gapsync_bytes_total", "kind", "rows"), float64(1<<20+10))
	is.Equal(c("gapsync_bytes_total", "kind", "files"), 65536.0)
	is.Equal(len(mfs["gapsync_bytes_total"].GetMetric()), 2)

	is.Equal(c("gapsync_conflicts_total", "table", "demo"), 3.0)
	is.Equal(mfs["gapsync_table_missing_column"].GetMetric()[0].GetGauge().GetValue(), 1.0)
	is.Equal(len(mfs["gapsync_table_missing_column"].GetMetric()), 1) // "gone" arrived
	is.Equal(len(mfs["gapsync_conflicts_total"].GetMetric()), 1)

	is.Equal(c("gapsync_files_total", "direction", "push", "outcome", "staged"), 3.0)
	is.Equal(c("gapsync_files_total", "direction", "push", "outcome", "sent"), 3.0)
	is.Equal(c("gapsync_files_total", "direction", "push", "outcome", "published"), 2.0)
	is.Equal(c("gapsync_files_total", "direction", "push", "outcome", "failed"), 1.0)
	is.Equal(c("gapsync_files_total", "direction", "pull", "outcome", "published"), 1.0)
	is.Equal(len(mfs["gapsync_files_total"].GetMetric()), 5)

	is.Equal(c("gapsync_gateway_requests_total", "path", "/v1/apply", "result", "ok"), 2.0)
	is.Equal(c("gapsync_gateway_requests_total", "path", "/v1/apply", "result", "tampered"), 1.0)
	is.Equal(c("gapsync_gateway_requests_total", "path", "/v1/apply", "result", "unknown_table"), 1.0)
	is.Equal(c("gapsync_gateway_requests_total", "path", "/v1/pull", "result", "replayed"), 1.0)
	is.Equal(len(mfs["gapsync_gateway_requests_total"].GetMetric()), 4)

	g := func(name, table string) float64 {
		t.Helper()
		m := find(mfs[name], map[string]string{"table": table})
		is.True(m != nil)
		return m.GetGauge().GetValue()
	}
	is.Equal(g("gapsync_verify_rows", "demo"), 3001.0)
	is.Equal(g("gapsync_verify_differ_rows", "demo"), 4.0)
	is.Equal(g("gapsync_verify_last_timestamp_seconds", "demo"), 1_700_000_000.5)
	is.Equal(c("gapsync_verify_read_rows_total", "side", "intranet"), 3000.0)
	is.Equal(c("gapsync_verify_read_rows_total", "side", "internet"), 3001.0)
	is.Equal(c("gapsync_verify_paced_seconds_total"), 1.5)

	// The histogram: one series per role, exact counts and sums, and the
	// buckets run from 10 ms to one hour.
	hf := mfs["gapsync_cycle_duration_seconds"]
	is.Equal(hf.GetType(), dto.MetricType_HISTOGRAM)
	is.Equal(len(hf.GetMetric()), 2)
	coord := find(hf, map[string]string{"role": "coordinator"}).GetHistogram()
	is.True(coord != nil)
	is.Equal(coord.GetSampleCount(), uint64(3))
	is.Equal(coord.GetSampleSum(), 0.03+2+90*60)
	var bounds []float64
	cum := map[float64]uint64{}
	for _, b := range coord.GetBucket() {
		cum[b.GetUpperBound()] = b.GetCumulativeCount()
		if !math.IsInf(b.GetUpperBound(), +1) { // the text format lists +Inf too
			bounds = append(bounds, b.GetUpperBound())
		}
	}
	is.Equal(bounds, metrics.DurationBuckets)
	is.Equal(bounds[0], 0.01)
	is.Equal(bounds[len(bounds)-1], 3600.0)
	is.Equal(cum[0.025], uint64(0))  // 30 ms is above 25 ms
	is.Equal(cum[0.05], uint64(1))   // 30 ms
	is.Equal(cum[2.5], uint64(2))    // and 2 s
	is.Equal(cum[3600.0], uint64(2)) // 90 min falls only in +Inf
	is.Equal(cum[math.Inf(+1)], uint64(3))
	worker := find(hf, map[string]string{"role": "worker"}).GetHistogram()
	is.True(worker != nil)
	is.Equal(worker.GetSampleCount(), uint64(1))
	is.Equal(worker.GetSampleSum(), 0.2)

	// Help strings are present and short.
	for _, n := range allNames {
		h := mfs[n].GetHelp()
		is.True(h != "")
		is.True(len(h) <= 100)
	}
}

func TestCycleSetsLastSuccessOnlyWhenOK(t *testing.T) {
	is := is.New(t)
	m := metrics.New()

	m.Cycle("worker", time.Second, errors.New("boom"))
	mfs := scrape(t, m.Handler())
	is.Equal(find(mfs["gapsync_last_success_timestamp_seconds"], map[string]string{"role": "worker"}), nil) // no success yet
	is.Equal(counter(t, mfs, "gapsync_cycles_total", map[string]string{"role": "worker", "result": "ok"}), 0.0)
	is.Equal(counter(t, mfs, "gapsync_cycles_total", map[string]string{"role": "worker", "result": "error"}), 1.0)

	before := float64(time.Now().Unix())
	m.Cycle("worker", time.Second, nil)
	after := float64(time.Now().Unix() + 1)
	mfs = scrape(t, m.Handler())
	g := mfs["gapsync_last_success_timestamp_seconds"]
	is.Equal(g.GetType(), dto.MetricType_GAUGE)
	s := find(g, map[string]string{"role": "worker"})
	is.True(s != nil)
	first := s.GetGauge().GetValue()
	is.True(first >= before && first <= after) // unix seconds of the ok cycle

	// A later failure leaves the last success where it was.
	m.Cycle("worker", time.Second, errors.New("boom"))
	mfs = scrape(t, m.Handler())
	is.Equal(find(mfs["gapsync_last_success_timestamp_seconds"], map[string]string{"role": "worker"}).GetGauge().GetValue(), first)

	// A negative duration is recorded as zero, not subtracted.
	m.Cycle("coordinator", -time.Second, nil)
	mfs = scrape(t, m.Handler())
	h := find(mfs["gapsync_cycle_duration_seconds"], map[string]string{"role": "coordinator"}).GetHistogram()
	is.Equal(h.GetSampleCount(), uint64(1))
	is.Equal(h.GetSampleSum(), 0.0)
}

func TestNilMetricsIsNoOp(t *testing.T) {
	is := is.New(t)
	var m *metrics.Metrics

	m.Cycle("coordinator", time.Second, nil)
	m.Cycle("coordinator", time.Second, errors.New("x"))
	m.Rows("demo", "push", 1)
	m.Bytes("rows", 1)
	m.Conflicts("demo", 1)
	m.Files("push", "sent", 1)
	m.Request("/v1/apply", "ok")
	m.RequestDuration("/v1/apply", time.Second)
	m.Throttled("demo", "rows", time.Second)
	m.Busy("internet", true)
	m.Probed("internet", throttle.Load{})
	is.NoErr(m.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "x", Help: "x"})))

	descs := make(chan *prometheus.Desc, 16)
	m.Describe(descs)
	close(descs)
	is.Equal(len(descs), 0)
	ms := make(chan prometheus.Metric, 16)
	m.Collect(ms)
	close(ms)
	is.Equal(len(ms), 0)

	is.Equal(len(scrape(t, m.Handler())), 0) // serves an empty exposition
}

func TestRegisterIntoOwnRegistry(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	reg := prometheus.NewRegistry()
	is.NoErr(reg.Register(m))

	m.Rows("demo", "pull", 7)
	m.Request("/v1/apply", "ok")

	n, err := testutil.GatherAndCount(reg, "gapsync_rows_total", "gapsync_gateway_requests_total")
	is.NoErr(err)
	is.Equal(n, 2)
	is.NoErr(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP gapsync_rows_total Rows moved by table and direction (push: internet to intranet, pull: intranet to internet).
# TYPE gapsync_rows_total counter
gapsync_rows_total{direction="pull",table="demo"} 7
`), "gapsync_rows_total"))

	// The same *Metrics may be registered into a second registry too.
	is.NoErr(prometheus.NewRegistry().Register(m))

	// A second *Metrics in the same registry is refused: both describe the
	// same metrics.
	other := metrics.New()
	err = reg.Register(other)
	var are prometheus.AlreadyRegisteredError
	is.True(errors.As(err, &are))
	is.Equal(are.ExistingCollector, prometheus.Collector(m))
	is.Equal(are.NewCollector, prometheus.Collector(other))
	is.True(strings.Contains(err.Error(), "duplicate metrics collector registration"))

	// And registering next to the standard Go collectors works.
	full := prometheus.NewPedanticRegistry()
	full.MustRegister(m, collectors.NewGoCollector())
	mfs, err := full.Gather()
	is.NoErr(err)
	var got []string
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "gapsync_") {
			got = append(got, mf.GetName())
		}
	}
	is.True(slices.Contains(got, "gapsync_rows_total"))
}

func TestDescribeListsEveryMetric(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	ch := make(chan *prometheus.Desc, 32)
	m.Describe(ch)
	close(ch)
	var got []string
	for d := range ch {
		s := d.String()
		i := strings.Index(s, `fqName: "`)
		is.True(i >= 0)
		s = s[i+len(`fqName: "`):]
		got = append(got, s[:strings.Index(s, `"`)])
	}
	sort.Strings(got)
	is.Equal(got, allNames)
}

func TestConcurrentIncrementsSum(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	const workers, each = 16, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.Rows("demo", "push", 2)
				m.Bytes("rows", 3)
				m.Conflicts("demo", 1)
				m.Files("pull", "published", 1)
				m.Request("/v1/apply", "ok")
				var err error
				if i%5 == 0 {
					err = errors.New("x")
				}
				m.Cycle("worker", time.Duration(w)*time.Millisecond, err)
				if i%100 == 0 {
					// Scrapes run alongside the increments.
					testutil.CollectAndCount(m)
				}
			}
		}()
	}
	wg.Wait()

	mfs := scrape(t, m.Handler())
	total := float64(workers * each)
	is.Equal(counter(t, mfs, "gapsync_rows_total", map[string]string{"table": "demo", "direction": "push"}), 2*total)
	is.Equal(counter(t, mfs, "gapsync_bytes_total", map[string]string{"kind": "rows"}), 3*total)
	is.Equal(counter(t, mfs, "gapsync_conflicts_total", map[string]string{"table": "demo"}), total)
	is.Equal(counter(t, mfs, "gapsync_files_total", map[string]string{"direction": "pull", "outcome": "published"}), total)
	is.Equal(counter(t, mfs, "gapsync_gateway_requests_total", map[string]string{"path": "/v1/apply", "result": "ok"}), total)
	is.Equal(counter(t, mfs, "gapsync_cycles_total", map[string]string{"role": "worker", "result": "error"}), total/5)
	is.Equal(counter(t, mfs, "gapsync_cycles_total", map[string]string{"role": "worker", "result": "ok"}), total*4/5)
	h := find(mfs["gapsync_cycle_duration_seconds"], map[string]string{"role": "worker"}).GetHistogram()
	is.Equal(h.GetSampleCount(), uint64(workers*each))
}

func TestInvalidUTF8LabelIsRepaired(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	m.Rows("bad\xfftable", "push", 1) // would panic in the client library if passed through
	m.Request("/v1/\xc3", "ok")
	mfs := scrape(t, m.Handler())
	is.Equal(counter(t, mfs, "gapsync_rows_total", map[string]string{"table": "bad\uFFFDtable", "direction": "push"}), 1.0)
	is.Equal(counter(t, mfs, "gapsync_gateway_requests_total", map[string]string{"path": "/v1/\uFFFD", "result": "ok"}), 1.0)
}

// TestServe: Serve answers scrapes at /metrics until its context ends,
// and reports an address it cannot listen on.
func TestServe(t *testing.T) {
	is := is.New(t)
	m := metrics.New()
	m.Rows("orders", "push", 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, addr) }()
	var body string
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	is.True(strings.Contains(body, `gapsync_rows_total{direction="push",table="orders"} 3`))
	// The address is taken now: a second Serve fails at once.
	is.True(m.Serve(context.Background(), addr) != nil)
	cancel()
	is.NoErr(<-done)
}

// TestStart: no address, no Metrics; an address, Metrics served there.
func TestStart(t *testing.T) {
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	is.True(metrics.Start(ctx, "", nil) == nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	addr := ln.Addr().String()
	ln.Close()
	m := metrics.Start(ctx, addr, nil)
	is.True(m != nil)
	m.Bytes("rows", 7)
	var body string
	for i := 0; i < 100 && body == ""; i++ {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	is.True(strings.Contains(body, `gapsync_bytes_total{kind="rows"} 7`))
}

func TestPerTableHealth(t *testing.T) {
	is := is.New(t)
	var none *metrics.Metrics
	none.TableSynced("demo", "push") // a nil *Metrics counts nothing, and does not panic
	none.TableParked("demo", "push", true)
	none.MissingColumn("demo", "push", "note", true)

	m := metrics.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	get := func(name, table, dir string) (float64, bool) {
		mfs, err := reg.Gather()
		is.NoErr(err)
		for _, mf := range mfs {
			for _, mt := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range mt.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if mf.GetName() == name && l["table"] == table && l["direction"] == dir {
					return mt.GetGauge().GetValue(), true
				}
			}
		}
		return 0, false
	}
	before := float64(time.Now().UnixNano()) / 1e9
	m.TableSynced("demo", "push")
	v, ok := get("gapsync_table_last_success_timestamp_seconds", "demo", "push")
	is.True(ok)
	is.True(v >= before-1 && v <= float64(time.Now().Unix())+1)
	_, ok = get("gapsync_table_last_success_timestamp_seconds", "demo", "pull")
	is.True(!ok) // another direction has its own clock

	m.TableParked("poisoned", "push", true)
	v, _ = get("gapsync_table_parked", "poisoned", "push")
	is.Equal(v, 1.0)
	m.TableParked("poisoned", "push", false)
	v, _ = get("gapsync_table_parked", "poisoned", "push")
	is.Equal(v, 0.0)
}

// TestExpositionLintClean: what Start serves, with every series of the
// package, the runtime's collectors and a registered one, passes the
// checks of promtool check metrics (promlint), and the request timing is
// a histogram per path.
func TestExpositionLintClean(t *testing.T) {
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	is.NoErr(err)
	addr := ln.Addr().String()
	ln.Close()
	m := metrics.Start(ctx, addr, nil)
	m.Cycle("coordinator", time.Second, nil)
	m.Cycle("coordinator", time.Second, errors.New("x"))
	m.Rows("orders", "push", 3)
	m.Bytes("rows", 10)
	m.Conflicts("orders", 1)
	m.Files("push", "sent", 1)
	m.Request("/v1/apply", "ok")
	m.RequestDuration("/v1/apply", 30*time.Millisecond)
	m.RequestDuration("/v1/apply", 3*time.Second)
	m.TableSynced("orders", "push")
	m.TableParked("orders", "pull", true)
	m.Throttled("orders", throttle.ReasonRunning, time.Second)
	m.Busy("internet", false)
	m.Probed("internet", throttle.Load{Running: 3, Latency: time.Millisecond})
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gapsync_table_rows_pending", Help: "Rows pending."}, []string{"table", "direction"})
	g.WithLabelValues("orders", "push").Set(4)
	is.NoErr(m.Register(g))
	is.True(m.Register(g) != nil) // twice is refused, as by any registry
	var body string
	for i := 0; i < 100 && body == ""; i++ {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	is.NoErr(err)
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{
		`gapsync_gateway_request_duration_seconds_bucket{path="/v1/apply",le="0.05"} 1`,
		`gapsync_gateway_request_duration_seconds_count{path="/v1/apply"} 2`,
		`gapsync_table_rows_pending{direction="push",table="orders"} 4`,
		"go_goroutines", "process_cpu_seconds_total", "gapsync_build_info{",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in the exposition", want)
		}
	}
}
