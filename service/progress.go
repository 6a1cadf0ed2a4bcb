package service

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gapsync/gapsync"
)

// Progress returns a file-progress callback for a main (the Progress of
// syncer.FileOptions). When w is a terminal it redraws one line per step
// (stage, send, receive, publish): bytes done of the total, the rate, the
// time left and the file, at most five times a second, ending the line
// when the step's bytes are all done. When w is not a terminal (a log
// file, a journal) it draws nothing and logs instead, at Info, a line
// every interval for each transfer still under way and one when such a
// transfer ends: no carriage returns in a log. Transfers that end within
// one interval are not logged here (the file flow logs each file).
func Progress(w *os.File, log *slog.Logger, zone string, interval time.Duration) func(gapsync.Progress) {
	p := newProgress(w, isTerminal(w), log, zone, interval, time.Now)
	return p.report
}

// isTerminal reports whether f is a character device (a terminal), not
// a file or a pipe.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type progress struct {
	w        io.Writer
	tty      bool
	log      *slog.Logger
	zone     string
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	steps map[string]*transfer
	drawn time.Time
}

// transfer is one step's transfer under way: one file, or (for send) the
// chunks of a cycle.
type transfer struct {
	file   string
	total  int64
	start  time.Time
	last   time.Time // of the latest report
	done   int64
	logged time.Time // zero until a progress line was logged for it
}

func newProgress(w io.Writer, tty bool, log *slog.Logger, zone string, interval time.Duration, now func() time.Time) *progress {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &progress{w: w, tty: tty, log: log, zone: zone, interval: interval, now: now, steps: map[string]*transfer{}}
}

func (p *progress) report(e gapsync.Progress) {
	if e.BytesTotal <= 0 {
		return // nothing to measure against
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	t := p.steps[e.Step]
	if t == nil || e.BytesTotal != t.total || (e.Step != "send" && e.File != t.file) || now.Sub(t.last) > time.Minute {
		t = &transfer{file: e.File, total: e.BytesTotal, start: now}
		p.steps[e.Step] = t
	}
	if e.BytesDone < t.done {
		return // a late report of a part sent alongside a later one
	}
	t.file, t.done, t.last = e.File, e.BytesDone, now
	finished := e.BytesDone >= e.BytesTotal
	rate, left := figures(now.Sub(t.start), e.BytesDone, e.BytesTotal)
	if p.tty {
		if finished || now.Sub(p.drawn) >= 200*time.Millisecond {
			p.drawn = now
			p.draw(e, rate, left, finished)
		}
	} else {
		switch {
		case finished && !t.logged.IsZero():
			p.log.Info("transfer done", p.attrs(e, rate, -1, now.Sub(t.start))...)
		case !finished && now.Sub(t.start) >= p.interval && now.Sub(t.logged) >= p.interval:
			t.logged = now
			p.log.Info("transfer progress", p.attrs(e, rate, left, now.Sub(t.start))...)
		}
	}
	if finished {
		delete(p.steps, e.Step)
	}
}

// figures returns the rate in bytes a second and the time left (-1 when
// unknown) of a transfer that moved done of total bytes in took.
func figures(took time.Duration, done, total int64) (float64, time.Duration) {
	if took <= 0 || done <= 0 {
		return 0, -1
	}
	rate := float64(done) / took.Seconds()
	return rate, time.Duration(float64(total-done) / rate * float64(time.Second))
}

func (p *progress) attrs(e gapsync.Progress, rate float64, left, took time.Duration) []any {
	a := []any{"step", e.Step, "file", e.File, "bytes", e.BytesDone, "total", e.BytesTotal,
		"percent", 100 * e.BytesDone / e.BytesTotal, "rate", humanBytes(int64(rate)) + "/s", "took", took.Round(time.Second)}
	if left >= 0 {
		a = append(a, "eta", left.Round(time.Second))
	}
	if e.FilesTotal > 0 {
		a = append(a, "files_done", e.FilesDone, "files", e.FilesTotal)
	}
	return a
}

// draw redraws the terminal line of e's step.
func (p *progress) draw(e gapsync.Progress, rate float64, left time.Duration, finished bool) {
	const width = 24
	n := int(width * e.BytesDone / e.BytesTotal)
	eta := "--"
	if left >= 0 {
		eta = left.Round(time.Second).String()
	}
	files := ""
	if e.FilesTotal > 0 {
		files = fmt.Sprintf(" %d/%d files", e.FilesDone, e.FilesTotal)
	}
	name := e.File
	if r := []rune(name); len(r) > 40 {
		name = "…" + string(r[len(r)-39:])
	}
	fmt.Fprintf(p.w, "\r%s %-7s [%s%s] %3d%% %s/%s %s/s ETA %s%s %s\x1b[K", p.zone, e.Step,
		strings.Repeat("#", n), strings.Repeat(".", width-n), 100*e.BytesDone/e.BytesTotal,
		humanBytes(e.BytesDone), humanBytes(e.BytesTotal), humanBytes(int64(rate)), eta, files, name)
	if finished {
		fmt.Fprintln(p.w)
	}
}

// humanBytes writes n in binary units rounded to one decimal ("117.7MiB"),
// for reading, where FormatBytes is exact.
func humanBytes(n int64) string {
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%dB", n)
	}
	v, i := float64(n)/1024, 0
	for ; (v >= 1024 || v <= -1024) && i < 5; i++ {
		v /= 1024
	}
	return fmt.Sprintf("%.1f%ciB", v, "KMGTPE"[i])
}
