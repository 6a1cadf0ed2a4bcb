package service

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
)

var (
	lagDesc = prometheus.NewDesc("gapsync_table_lag_seconds",
		"How far the last good window of a table in a direction is behind the database clock (estimated: its age plus the window lag).",
		[]string{"table", "direction"}, nil)
	pendingDesc = prometheus.NewDesc("gapsync_table_rows_pending",
		"Rows of a table changed at or after its last good window (estimated; counted in this database, so push only).",
		[]string{"table", "direction"}, nil)
	filesPendingDesc = prometheus.NewDesc("gapsync_files_pending",
		"File records of an origin not yet published, by the step they wait in (extracted, failed, stored, incoming, partial).",
		[]string{"origin", "status"}, nil)
)

// pendingSteps are the file statuses that are not an end.
var pendingSteps = []string{gapsync.FileExtracted, gapsync.FileFailed, gapsync.FileStored, gapsync.FileIncoming, gapsync.FilePartial}

// ExportStatus adds to rec's registry (when rec came from Observe with a
// metrics address; otherwise it does nothing) the per-table state that
// db.Status reads: gapsync_table_lag_seconds, gapsync_table_rows_pending
// and gapsync_files_pending. It is read at scrape time, at most every
// 15 s (later scrapes get the same figures), each read bounded by 10 s; a
// read that fails is logged and its series left out of that scrape. lag
// is the window lag (-lag) added to a window's age.
func ExportStatus(rec syncer.Recorder, db *storage.DB, lag time.Duration, log *slog.Logger) {
	r, ok := rec.(interface {
		Register(prometheus.Collector) error
	})
	if !ok {
		return
	}
	c := &statusCollector{read: db.Status, lag: lag, log: log}
	if err := r.Register(c); err != nil && log != nil {
		log.Warn("per-table metrics not exported", "err", err)
	}
}

type statusCollector struct {
	read func(context.Context) (*storage.Status, error)
	lag  time.Duration
	log  *slog.Logger

	mu   sync.Mutex
	last *storage.Status
	at   time.Time
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- pendingDesc
	ch <- filesPendingDesc
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	if st == nil {
		return
	}
	for _, t := range st.Tables {
		if t.AgeSeconds >= 0 {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, t.AgeSeconds+c.lag.Seconds(), t.Table, t.Direction)
		}
		if t.Pending >= 0 {
			ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(t.Pending), t.Table, t.Direction)
		}
	}
	n := map[[2]string]int64{}
	for _, f := range st.Files {
		n[[2]string{f.Origin, f.Status}] += f.Count
	}
	for _, origin := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
		for _, s := range pendingSteps {
			ch <- prometheus.MustNewConstMetric(filesPendingDesc, prometheus.GaugeValue, float64(n[[2]string{string(origin), s}]), string(origin), s)
		}
	}
}

// status returns the last read when it is recent, or reads again.
func (c *statusCollector) status() *storage.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && time.Since(c.at) < 15*time.Second {
		return c.last
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.read(ctx)
	if err != nil {
		if c.log != nil {
			c.log.Warn("per-table metrics not read", "err", err)
		}
		return nil
	}
	c.last, c.at = st, time.Now()
	return st
}
