package syncer

import (
	"errors"
	"time"

	"github.com/gapsync/gapsync"
)

// Recorder receives counts of what a role does, for a host to export
// (DESIGN promise 10). *metrics.Metrics (package metrics, Prometheus) is
// one; a role without one records nothing. Methods are called from
// several goroutines.
type Recorder interface {
	Cycle(role string, took time.Duration, err error)
	Rows(table, direction string, n int)
	Bytes(kind string, n int64)
	Conflicts(table string, n int)
	Files(direction, outcome string, n int)
	Request(path, result string)
}

// RequestTimer is an optional extension of Recorder: the gateway tells
// it how long it took to answer each request to a route it serves (from
// arrival to the end of the answer). *metrics.Metrics is one.
type RequestTimer interface {
	RequestDuration(path string, took time.Duration)
}

type noRecorder struct{}

func (noRecorder) Cycle(string, time.Duration, error) {}
func (noRecorder) Rows(string, string, int)           {}
func (noRecorder) Bytes(string, int64)                {}
func (noRecorder) Conflicts(string, int)              {}
func (noRecorder) Files(string, string, int)          {}
func (noRecorder) Request(string, string)             {}

func orNoRecorder(r Recorder) Recorder {
	if r == nil {
		return noRecorder{}
	}
	return r
}

// recordCycle records a coordinator cycle: rows, bytes and conflicts per
// table and direction, the files moved, and the cycle itself. A cycle
// that did not run because another coordinator holds the lease is not
// one. A nil report (a cycle that ended before it made one) counts as a
// cycle that moved nothing.
func recordCycle(m Recorder, r *Report, took time.Duration, err error) {
	if errors.Is(err, gapsync.ErrLeaseHeld) {
		return
	}
	if r == nil {
		r = &Report{}
	}
	var rowBytes int64
	for _, t := range r.Tables {
		m.Rows(t.Table, string(t.Direction), int(t.Rows))
		m.Conflicts(t.Table, t.Conflicts)
		rowBytes += t.Bytes
	}
	m.Bytes("rows", rowBytes)
	m.Bytes("files", r.Files.Bytes)
	m.Files(string(gapsync.Push), "staged", r.Files.Staged)
	m.Files(string(gapsync.Push), "sent", r.Files.Sent)
	m.Files(string(gapsync.Push), "published", r.Files.Delivered)
	m.Files(string(gapsync.Pull), "published", r.Files.Received)
	m.Files(string(gapsync.Push), "refused", len(r.Refused))
	m.Cycle("coordinator", took, err)
}

// recordRun records an intranet worker run.
func recordRun(m Recorder, r WorkerReport, took time.Duration, err error) {
	m.Files(string(gapsync.Pull), "staged", r.Staged)
	m.Files(string(gapsync.Push), "published", r.Published)
	m.Files(string(gapsync.Push), "failed", r.Failed)
	m.Files(string(gapsync.Pull), "refused", len(r.Refused))
	m.Cycle("worker", took, err)
}

// requestResult is the result label of a gateway request: "ok" or the
// error's wire code.
func requestResult(err error) string {
	if err == nil {
		return "ok"
	}
	return string(gapsync.CodeOf(err))
}
