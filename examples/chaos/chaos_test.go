package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// echoServer answers every byte it reads with the same byte and records
// what it received.
func echoServer(t *testing.T) (addr string, got chan []byte) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan []byte, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var all bytes.Buffer
				io.Copy(io.MultiWriter(c, &all), c)
				got <- all.Bytes()
			}()
		}
	}()
	return ln.Addr().String(), got
}

func TestProxyFaults(t *testing.T) {
	is := is.New(t)
	addr, got := echoServer(t)
	p, err := NewProxy("test", addr)
	is.NoErr(err)
	defer p.Close()
	msg := bytes.Repeat([]byte("0123456789"), 100)

	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		is.NoErr(err)
		t.Cleanup(func() { c.Close() })
		return c
	}

	// Pass: every byte comes back.
	c := dial()
	_, err = c.Write(msg)
	is.NoErr(err)
	back := make([]byte, len(msg))
	_, err = io.ReadFull(c, back)
	is.NoErr(err)
	is.Equal(back, msg)
	c.Close()
	<-got

	// Cut the response after 7 bytes: the client reads 7, then the connection fails.
	p.SetFault(Fault{Kind: CutResponse, K: 7, Until: time.Now().Add(time.Minute)})
	c = dial()
	c.Write(msg)
	all, err := io.ReadAll(c)
	is.True(err != nil || len(all) == 7) // reset, or closed, after exactly k bytes
	is.Equal(len(all), 7)
	<-got

	// Cut the request after 13 bytes: the server sees 13.
	p.SetFault(Fault{Kind: CutRequest, K: 13, Until: time.Now().Add(time.Minute)})
	c = dial()
	c.Write(msg)
	is.Equal(len(<-got), 13)

	// Stall: nothing arrives while stalled, everything after.
	p.SetFault(Fault{})
	c = dial()
	p.SetFault(Fault{Kind: Stall, Until: time.Now().Add(400 * time.Millisecond)})
	start := time.Now()
	c.Write(msg[:10])
	_, err = io.ReadFull(c, back[:10])
	is.NoErr(err)
	is.True(time.Since(start) >= 350*time.Millisecond)
	c.Close()
	<-got

	// Reset: an open connection fails at once.
	p.SetFault(Fault{})
	c = dial()
	c.Write(msg[:1])
	io.ReadFull(c, back[:1])
	p.SetFault(Fault{Kind: Reset, Until: time.Now().Add(time.Second)})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(back)
	is.True(err != nil)
	var ne net.Error
	is.True(!errors.As(err, &ne) || !ne.Timeout()) // reset, not a timeout
}

// TestCheckClassifies gives the checker two sides that disagree in every
// way it knows and expects each to be named.
func TestCheckClassifies(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	var sides [2]side
	for i, name := range []string{"internet", "intranet"} {
		dsn := testdb.MySQL(t)
		sdb, err := storage.Open(dsn, nil)
		is.NoErr(err)
		is.NoErr(sdb.Migrate(ctx))
		sdb.Close()
		db, err := sql.Open("mysql", dsn)
		is.NoErr(err)
		t.Cleanup(func() { db.Close() })
		for _, q := range schema {
			_, err := db.ExecContext(ctx, q)
			is.NoErr(err)
		}
		sides[i] = side{name: name, db: db, store: t.TempDir()}
	}
	inet, intra := sides[0], sides[1]
	exec := func(s side, q string, args ...any) {
		t.Helper()
		_, err := s.db.ExecContext(ctx, q, args...)
		is.NoErr(err)
	}
	j := newJournal()
	both := func(q string, args ...any) { exec(inet, q, args...); exec(intra, q, args...) }
	const at = "2026-01-01 00:00:00"

	// Agreeing rows: an item, and a doc whose file reached the intranet
	// under a rewritten reference.
	both("INSERT INTO item VALUES (1, 'same 同', 5, ?)", at)
	j.set("item", "1", "same 同\x1f5", true)
	ref := "uploads/internet/报告 final 1 (3).bin"
	os.MkdirAll(filepath.Join(inet.store, "uploads/internet"), 0o755)
	is.NoErr(os.WriteFile(filepath.Join(inet.store, ref), []byte("abc"), 0o644))
	os.MkdirAll(filepath.Join(intra.store, "from-internet/uploads/internet"), 0o755)
	is.NoErr(os.WriteFile(filepath.Join(intra.store, "from-internet", ref), []byte("abc"), 0o644))
	j.files[ref] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // sha256("abc")
	exec(inet, "INSERT INTO doc VALUES (2, 'd', ?, ?)", ref, at)
	exec(intra, "INSERT INTO doc VALUES (2, 'd', ?, ?)", "from-internet/"+ref, at)
	exec(intra, "INSERT INTO path_mapping (foreign_hash, local_hash, foreign_ref, local_ref) VALUES ('h1', 'h2', ?, ?)", ref, "from-internet/"+ref)
	j.set("doc", "2", "d\x1f"+ref, true)
	v, err := Check(ctx, inet, intra, j)
	is.NoErr(err)
	is.True(v.Clean()) // references compared as the origin's
	is.Equal(v.Files, 1)

	// Lost: a committed row missing on the intranet.
	exec(inet, "INSERT INTO item VALUES (3, 'only here', 1, ?)", at)
	j.set("item", "3", "only here\x1f1", true)
	// Lost update: both sides hold a value older than the last commit.
	both("INSERT INTO item VALUES (4, 'old', 1, ?)", at)
	j.set("item", "4", "old\x1f1", true)
	j.set("item", "4", "new\x1f2", true)
	// Doubled: a deleted row back on one side.
	exec(intra, "INSERT INTO line VALUES (5, 1, 'gone', 0, ?)", at)
	j.set("line", "5\x1f1", "gone\x1f0", true)
	j.set("line", "5\x1f1", absent, true)
	// Uncertain to the writer: its origin holds it, so it committed, and
	// the far side must have it too.
	exec(inet, "INSERT INTO item VALUES (6, 'maybe', 1, ?)", at)
	j.set("item", "6", "maybe\x1f1", false)
	// A file whose far copy has other bytes.
	ref2 := "uploads/internet/b.bin"
	is.NoErr(os.WriteFile(filepath.Join(inet.store, ref2), []byte("abc"), 0o644))
	is.NoErr(os.WriteFile(filepath.Join(intra.store, "from-internet", ref2), []byte("abd"), 0o644))
	j.files[ref2] = j.files[ref]
	exec(inet, "INSERT INTO doc VALUES (7, 'e', ?, ?)", ref2, at)
	exec(intra, "INSERT INTO doc VALUES (7, 'e', ?, ?)", "from-internet/"+ref2, at)
	exec(intra, "INSERT INTO path_mapping (foreign_hash, local_hash, foreign_ref, local_ref) VALUES ('h3', 'h4', ?, ?)", ref2, "from-internet/"+ref2)
	j.set("doc", "7", "e\x1f"+ref2, true)
	// A file record that never finished.
	exec(intra, "INSERT INTO file_record (id, origin, ref, size, md5, sha256, sm3, chunk_size, chunks, status, error, attempts, local_key, acked, updated_at) "+
		"VALUES ('f1', 'internet', 'x', 1, '', '', '', 1, 1, 'failed', 'boom', 5, '', 0, NOW())")

	v, err = Check(ctx, inet, intra, j)
	is.NoErr(err)
	t.Log(strings.Join(v.Notes, "\n"))
	is.Equal(v.Lost, 3)     // item 3 missing, item 4's last update, item 6 (committed at its origin after all)
	is.Equal(v.Doubled, 1)  // line (5,1)
	is.Equal(v.Differ, 3)   // items 3 and 6 and line (5,1) are on one side only
	is.Equal(v.FilesBad, 1) // doc 7
	is.Equal(v.Stuck, 1)
	is.True(!v.Clean())
	// Item 6 on both sides, but with another cursor: no longer lost, still a difference.
	exec(intra, "INSERT INTO item VALUES (6, 'maybe', 1, '2026-01-01 00:00:01')")
	v, err = Check(ctx, inet, intra, j)
	is.NoErr(err)
	is.Equal(v.Differ, 3)
	is.Equal(v.Lost, 2)
}

// TestScheduleReplays: a seed always draws the same faults.
func TestScheduleReplays(t *testing.T) {
	is := is.New(t)
	a, b := schedule(42, time.Minute, true), schedule(42, time.Minute, true)
	is.Equal(len(a), len(b))
	for i := range a {
		is.Equal(a[i].String(), b[i].String())
	}
	is.True(len(a) > 10)
	c := schedule(43, time.Minute, true)
	is.True(len(c) != len(a) || c[0].String() != a[0].String() || c[len(c)-1].String() != a[len(a)-1].String())
}

// TestQuickTrial runs one short trial end to end when GAPSYNC_TEST_CHAOS=1
// (the CI runs the suite through go run instead).
func TestQuickTrial(t *testing.T) {
	if os.Getenv("GAPSYNC_TEST_CHAOS") != "1" {
		t.Skip("set GAPSYNC_TEST_CHAOS=1 to run a chaos trial (needs mariadbd)")
	}
	var out bytes.Buffer
	sum, err := Run(context.Background(), Config{Trials: 1, Seed: 7, Quick: true, Port: 3393, Out: &out, Verbose: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	if sum.Converged != 1 {
		t.Fatalf("%s\n%s", sum, out.String())
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// TestDSNsNameTheServer: every DSN the suite hands out points at its own
// server (or proxy), never at a default address such as the shared 3306.
func TestDSNsNameTheServer(t *testing.T) {
	is := is.New(t)
	s := &Server{Addr: "127.0.0.1:3399", base: mysql.NewConfig(), private: true}
	s.base.User = "root"
	for _, dsn := range []string{s.DSN("a"), s.AppDSN("a"), s.DSN("")} {
		is.True(strings.Contains(dsn, "tcp(127.0.0.1:3399)/")) // dsn
	}
	is.True(strings.Contains(s.DSNVia("127.0.0.1:4000", "b"), "tcp(127.0.0.1:4000)/b"))
	is.True(strings.Contains(s.AppDSN("a"), "interpolateParams=true"))
}
