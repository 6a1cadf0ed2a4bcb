package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// verifyMetrics are the verification's series (see the package comment).
type verifyMetrics struct {
	rows, differ, last *prometheus.GaugeVec
	read               *prometheus.CounterVec
	paced              prometheus.Counter
}

func newVerifyMetrics() verifyMetrics {
	return verifyMetrics{
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_verify_rows",
			Help: "Rows the last finished verification of a table compared.",
		}, []string{"table"}),
		differ: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_verify_differ_rows",
			Help: "Rows the last finished verification of a table found differing between the zones.",
		}, []string{"table"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gapsync_verify_last_timestamp_seconds",
			Help: "Unix time the last verification of a table finished.",
		}, []string{"table"}),
		read: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gapsync_verify_read_rows_total",
			Help: "Rows verifications read, by side (internet or intranet); its rate is the pace kept.",
		}, []string{"side"}),
		paced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gapsync_verify_paced_seconds_total",
			Help: "Time verifications waited to keep their rows-per-second limit.",
		}),
	}
}

func (v verifyMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{v.rows, v.differ, v.last, v.read, v.paced}
}

// TableVerified records a verification of table compared to its end:
// the rows it compared, the rows that differ, and when it finished.
func (m *Metrics) TableVerified(table string, rows int64, differ int, at time.Time) {
	if m == nil {
		return
	}
	table = label(table)
	m.verify.rows.WithLabelValues(table).Set(float64(rows))
	m.verify.differ.WithLabelValues(table).Set(float64(differ))
	m.verify.last.WithLabelValues(table).Set(float64(at.UnixNano()) / 1e9)
}

// VerifyRead counts rows a verification read on side ("internet" or
// "intranet").
func (m *Metrics) VerifyRead(side string, rows int64) {
	if m == nil || rows <= 0 {
		return
	}
	m.verify.read.WithLabelValues(label(side)).Add(float64(rows))
}

// VerifyPaced counts time a verification waited to keep its pace.
func (m *Metrics) VerifyPaced(d time.Duration) {
	if m == nil || d <= 0 {
		return
	}
	m.verify.paced.Add(d.Seconds())
}
