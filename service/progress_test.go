package service

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// clock is a test clock that moves when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// feed reports a 100 MiB file staged at 1 MiB a second for its first
// 30 s, then the rest at once, and a small file done at once.
func feed(p *progress, c *clock) {
	const mib = 1 << 20
	for s := 0; s <= 30; s++ {
		p.report(gapsync.Progress{Step: "stage", File: "big.bin", BytesDone: int64(s) * mib, BytesTotal: 100 * mib, FilesDone: 0, FilesTotal: 2})
		if s == 15 { // a chunk stored alongside reports late: no restart
			p.report(gapsync.Progress{Step: "stage", File: "big.bin", BytesDone: 14 * mib, BytesTotal: 100 * mib, FilesDone: 0, FilesTotal: 2})
		}
		c.t = c.t.Add(time.Second)
	}
	p.report(gapsync.Progress{Step: "stage", File: "big.bin", BytesDone: 100 * mib, BytesTotal: 100 * mib, FilesDone: 1, FilesTotal: 2})
	p.report(gapsync.Progress{Step: "stage", File: "small.bin", BytesDone: 10, BytesTotal: 10, FilesDone: 2, FilesTotal: 2})
	p.report(gapsync.Progress{Step: "send", BytesDone: 5, BytesTotal: 0}) // no total: nothing to draw
}

func TestProgressLogsWhenNotATerminal(t *testing.T) {
	is := is.New(t)
	var logs, screen bytes.Buffer
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	p := newProgress(&screen, false, slog.New(slog.NewTextHandler(&logs, nil)), "internet", 10*time.Second, c.now)
	feed(p, c)
	out := logs.String()
	t.Log("\n" + out)
	is.Equal(screen.Len(), 0) // nothing drawn
	is.True(!strings.Contains(out, "\r"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	is.Equal(len(lines), 4) // at 10 s, 20 s and 30 s, then done; the small file not at all
	is.True(strings.Contains(lines[0], `msg="transfer progress" step=stage file=big.bin bytes=10485760 total=104857600 percent=10 rate=1.0MiB/s took=10s eta=1m30s files_done=0 files=2`))
	is.True(strings.Contains(lines[1], "percent=20 rate=1.0MiB/s took=20s"))
	is.True(strings.Contains(lines[2], "percent=30"))
	is.True(strings.Contains(lines[3], `msg="transfer done" step=stage file=big.bin`))
	is.True(!strings.Contains(out, "small.bin"))
}

func TestProgressDrawsOnATerminal(t *testing.T) {
	is := is.New(t)
	var logs, screen bytes.Buffer
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	p := newProgress(&screen, true, slog.New(slog.NewTextHandler(&logs, nil)), "internet", 10*time.Second, c.now)
	feed(p, c)
	out := screen.String()
	is.Equal(logs.Len(), 0) // a terminal gets the bar, not log lines
	frames := strings.Split(out, "\r")
	is.True(len(frames) > 30)
	is.True(strings.Contains(out, "internet stage   [##......................]  10% 10.0MiB/100.0MiB 1.0MiB/s ETA 1m30s 0/2 files big.bin"))
	is.True(strings.Contains(out, " 100% 100.0MiB/100.0MiB"))
	is.Equal(strings.Count(out, "\n"), 2) // each finished transfer ends its line
}

func TestHumanBytes(t *testing.T) {
	is := is.New(t)
	is.Equal(humanBytes(0), "0B")
	is.Equal(humanBytes(1023), "1023B")
	is.Equal(humanBytes(1536), "1.5KiB")
	is.Equal(humanBytes(123456789), "117.7MiB")
	is.Equal(humanBytes(5<<40), "5.0TiB")
}
