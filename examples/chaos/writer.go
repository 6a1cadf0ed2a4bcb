package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gapsync/gapsync/chunker"
)

// The tables the writer works on. Each kind of schema the suite cares
// about has one: item (DATETIME(6) cursor the application sets, hard
// deletes through tombstones), doc (TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
// cursor, a file column, hard deletes) and line (composite key, utf8mb4
// TEXT, soft deletes).
var schema = []string{
	`CREATE TABLE item (id BIGINT PRIMARY KEY, title VARCHAR(200) NOT NULL, qty INT NOT NULL,
		updated_at DATETIME(6) NOT NULL, INDEX ix_item_updated (updated_at)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
	`CREATE TABLE doc (id BIGINT PRIMARY KEY, name VARCHAR(300) NOT NULL, path VARCHAR(600) NULL,
		updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
		INDEX ix_doc_updated (updated_at), INDEX ix_doc_path (path)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
	`CREATE TABLE line (order_id BIGINT NOT NULL, line_no INT NOT NULL, note TEXT NOT NULL, deleted TINYINT NOT NULL DEFAULT 0,
		updated_at DATETIME(6) NOT NULL, PRIMARY KEY (order_id, line_no), INDEX ix_line_updated (updated_at)) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
}

// tableSpecs is how the mains' -table flag enables item and doc; line is
// configured through the library, since it needs a soft-delete column.
var tableSpecs = []string{"item:id:updated_at:both", "doc:id:updated_at:both:path"}

// appCols are the columns the writer sets, per table, in the order the
// journal records them; keyCols the key columns.
var (
	keyCols = map[string][]string{"item": {"id"}, "doc": {"id"}, "line": {"order_id", "line_no"}}
	appCols = map[string][]string{"item": {"title", "qty"}, "doc": {"name", "path"}, "line": {"note", "deleted"}}
	tables  = []string{"item", "doc", "line"}
)

const absent = "\x00absent"

// Journal is the writer's own record of what it did: for every key, the
// values the key may hold now. A write whose outcome is unknown (the
// connection died around its commit) leaves both the old and the new
// value acceptable, and the writer never touches that key again.
type Journal struct {
	mu     sync.Mutex
	rows   map[string]map[string]bool // "table\x1fkey" → acceptable values (absent for no row)
	files  map[string]string          // origin reference → SHA-256 of the bytes written
	ops    map[string]int             // counts by kind, for the trial line
	uncert int
}

func newJournal() *Journal {
	return &Journal{rows: map[string]map[string]bool{}, files: map[string]string{}, ops: map[string]int{}}
}

func jkey(table, key string) string { return table + "\x1f" + key }

func (j *Journal) set(table, key, val string, certain bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	k := jkey(table, key)
	if certain || j.rows[k] == nil {
		j.rows[k] = map[string]bool{val: true}
		if !certain {
			j.rows[k][absent] = true
			j.uncert++
		}
		return
	}
	j.rows[k][val] = true
	j.uncert++
}

// Accepts reports whether val (or absent) is a state the journal allows
// for the key; known reports whether the writer ever wrote the key.
func (j *Journal) Accepts(table, key, val string) (ok, known bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.rows[jkey(table, key)]
	if s == nil {
		return val == absent, false
	}
	return s[val], true
}

// Expected lists the keys of table the journal knows, with whether a row
// must exist (no acceptable absent state).
func (j *Journal) Keys(table string) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for k := range j.rows {
		if t, key, _ := strings.Cut(k, "\x1f"); t == table {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

func (j *Journal) count(kind string) {
	j.mu.Lock()
	j.ops[kind]++
	j.mu.Unlock()
}

// Summary is the writer's operation counts, e.g. "ins=40 upd=21 …".
func (j *Journal) Summary() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var kinds []string
	for k := range j.ops {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s=%d ", k, j.ops[k])
	}
	fmt.Fprintf(&b, "uncertain=%d", j.uncert)
	return b.String()
}

// Writer plays one side's application: inserts, updates, hard and soft
// deletes, long open transactions that commit late, and uploads.
type Writer struct {
	Side    string                           // "internet" or "intranet"
	Table   string                           // the table this writer works on: item, doc or line
	Base    int64                            // keys are Base+1, Base+2, … (plus 1,000,000 on the intranet)
	Log     func(format string, args ...any) // statements that waited long (nil: quiet)
	DB      *sql.DB
	Store   string // directory of this side's file store
	Rand    *rand.Rand
	Journal *Journal
	Quick   bool
	base    int64 // keys of this side: base+1, base+2, …

	next      int64
	items     []int64 // live keys this writer may still touch
	docs      []int64
	lines     [][2]int64
	contents  [][]byte // earlier file contents, to upload again under new names
	fileBytes int64
	nfiles    int
}

// writerSlots are the writers of one side: a table and the first key of
// its own range. Intranet keys are above 1,000,000 (the checker tells a
// row's origin by it); long transactions take keys 50,000 above their
// writer's. Four write item, which has the tombstone triggers and the long
// transactions, as an application has several connections: when one
// statement waits for a lock, the others wait too.
var writerSlots = []struct {
	table string
	base  int64
}{{"item", 0}, {"item", 100_000}, {"item", 200_000}, {"item", 300_000}, {"doc", 400_000}, {"line", 500_000}}

func (w *Writer) init() {
	w.base = w.Base
	if w.Side == "intranet" {
		w.base += 1_000_000
	}
}

// Run writes to its table until ctx ends, one operation every 20 to 100
// ms. Each table has a writer of its own, as an application has
// connections of its own: a statement that waits for a lock holds up its
// own table only.
func (w *Writer) Run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	w.init()
	var txs sync.WaitGroup
	var running atomic.Bool
	for ctx.Err() == nil {
		p := w.Rand.IntN(100)
		switch w.Table {
		case "item":
			switch {
			case p < 4 && !running.Load():
				running.Store(true)
				txs.Add(1)
				seed, first := w.Rand.Uint64(), w.base+50_000+(w.next*10)%49_990
				go func() {
					defer txs.Done()
					defer running.Store(false)
					w.longTx(ctx, rand.New(rand.NewPCG(seed, 1)), first)
				}()
			case p < 45:
				w.insertItem(ctx)
			case p < 72:
				w.updateItem(ctx)
			default:
				w.deleteItem(ctx)
			}
		case "doc":
			switch {
			case p < 40:
				w.insertDoc(ctx)
			case p < 65:
				w.renameDoc(ctx)
			case p < 80:
				w.repointDoc(ctx)
			default:
				w.deleteDoc(ctx)
			}
		case "line":
			switch {
			case p < 40:
				w.insertLine(ctx)
			case p < 75:
				w.updateLine(ctx)
			default:
				w.softDeleteLine(ctx)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(20+w.Rand.IntN(80)) * time.Millisecond):
		}
	}
	txs.Wait()
}

func (w *Writer) key() int64 { w.next++; return w.base + w.next }

// title mixes ASCII, Chinese, emoji and odd spacing.
func (w *Writer) title() string { return title(w.Rand) }

func title(r *rand.Rand) string {
	words := []string{"订单", "报告 final", "Größe", "😀", "  spaced  ", "年度", "ok", "数据🚀同步", "'quote'", `back\slash`}
	var b strings.Builder
	for i, n := 0, 1+r.IntN(4); i < n; i++ {
		b.WriteString(words[r.IntN(len(words))])
	}
	fmt.Fprintf(&b, " #%d", r.IntN(1_000_000))
	return b.String()
}

// exec runs one autocommit statement and records the outcome: certain on
// success (an update that found no row changed nothing), uncertain on any
// error, since the statement may have committed before the connection died.
func (w *Writer) exec(ctx context.Context, table, key, val string, q string, args ...any) (ok bool) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	res, err := w.DB.ExecContext(cctx, q, args...)
	if d := time.Since(start); d > 500*time.Millisecond && w.Log != nil {
		w.Log("%s writer: %s %s waited %s (err %v): %.40s", w.Side, table, show(key), d.Round(time.Millisecond), err, q)
	}
	if err != nil {
		w.Journal.set(table, key, val, false)
		return false
	}
	if n, _ := res.RowsAffected(); n == 0 && val != absent {
		return false
	}
	w.Journal.set(table, key, val, true)
	return true
}

// longTx opens a transaction, inserts and updates rows of its own keys
// with cursors taken now, holds it open for seconds and commits late: the
// rows become visible with cursor values older than the commit.
func (w *Writer) longTx(ctx context.Context, r *rand.Rand, first int64) {
	w.Journal.count("longtx")
	tx, err := w.DB.BeginTx(ctx, nil)
	if err != nil {
		return
	}
	type op struct{ key, val string }
	var ops []op
	for i, n := int64(0), int64(1+r.IntN(5)); i < n; i++ {
		id := first + i
		t, qty := title(r), r.IntN(1000)
		if _, err := tx.ExecContext(ctx, "INSERT INTO item (id, title, qty, updated_at) VALUES (?, ?, ?, NOW(6))", id, t, qty); err != nil {
			tx.Rollback() // nothing of it was committed
			return
		}
		ops = append(ops, op{fmt.Sprint(id), t + "\x1f" + fmt.Sprint(qty)})
		if r.IntN(2) == 0 {
			t = title(r)
			if _, err := tx.ExecContext(ctx, "UPDATE item SET title = ?, updated_at = NOW(6) WHERE id = ?", t, id); err != nil {
				tx.Rollback()
				return
			}
			ops[len(ops)-1].val = t + "\x1f" + fmt.Sprint(qty)
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(2000+r.IntN(6000)) * time.Millisecond):
	}
	err = tx.Commit()
	for _, o := range ops {
		w.Journal.set("item", o.key, o.val, err == nil)
	}
}

func (w *Writer) forget(table, key string) {
	drop := func(ids []int64) []int64 {
		out := ids[:0]
		for _, id := range ids {
			if fmt.Sprint(id) != key {
				out = append(out, id)
			}
		}
		return out
	}
	switch table {
	case "item":
		w.items = drop(w.items)
	case "doc":
		w.docs = drop(w.docs)
	}
}

func pick[T any](r *rand.Rand, s []T) (T, int, bool) {
	var zero T
	if len(s) == 0 {
		return zero, -1, false
	}
	i := r.IntN(len(s))
	return s[i], i, true
}

func remove[T any](s []T, i int) []T { return append(s[:i], s[i+1:]...) }

func (w *Writer) insertItem(ctx context.Context) {
	id := w.key()
	k, title, qty := fmt.Sprint(id), w.title(), w.Rand.IntN(10_000)-5000
	val := title + "\x1f" + fmt.Sprint(qty)
	w.Journal.count("insert")
	if w.exec(ctx, "item", k, val, "INSERT INTO item (id, title, qty, updated_at) VALUES (?, ?, ?, NOW(6))", id, title, qty) {
		w.items = append(w.items, id)
	}
}

func (w *Writer) updateItem(ctx context.Context) {
	id, _, ok := pick(w.Rand, w.items)
	k := fmt.Sprint(id)
	if !ok {
		return
	}
	title, qty := w.title(), w.Rand.IntN(10_000)
	val := title + "\x1f" + fmt.Sprint(qty)
	w.Journal.count("update")
	if !w.exec(ctx, "item", k, val, "UPDATE item SET title = ?, qty = ?, updated_at = NOW(6) WHERE id = ?", title, qty, id) {
		w.forget("item", k)
	}
}

func (w *Writer) deleteItem(ctx context.Context) {
	id, i, ok := pick(w.Rand, w.items)
	k := fmt.Sprint(id)
	if !ok {
		return
	}
	w.items = remove(w.items, i)
	w.Journal.count("delete")
	w.exec(ctx, "item", k, absent, "DELETE FROM item WHERE id = ?", id)
}

// fileSizes are the sizes uploads take: empty, tiny, and around chunk
// boundaries; the full run adds files of several chunks (tens of MiB).
func (w *Writer) fileSize() int64 {
	const c = chunker.DefaultChunkSize
	small := []int64{0, 1, 2, 1000, 64 << 10, 1 << 20}
	edges := []int64{c - 1, c, c + 1}
	big := []int64{2*c + 1, 3*c - 1, 5*c + 1}
	budget := int64(16 << 20)
	if !w.Quick {
		budget = 120 << 20
	}
	p := w.Rand.IntN(100)
	switch {
	case p < 10 && !w.Quick && w.fileBytes+5*c+1 <= budget:
		return big[w.Rand.IntN(len(big))]
	case p < 25 && w.fileBytes+c+1 <= budget:
		return edges[w.Rand.IntN(len(edges))]
	}
	return small[w.Rand.IntN(len(small))]
}

// upload writes a new file into this side's store and returns its
// reference; some carry the content of an earlier file under a new name.
func (w *Writer) upload() (string, error) {
	var data []byte
	if len(w.contents) > 0 && w.Rand.IntN(100) < 15 {
		data = w.contents[w.Rand.IntN(len(w.contents))]
	} else {
		data = make([]byte, w.fileSize())
		for i := 0; i < len(data); i += 8 {
			v := w.Rand.Uint64()
			for j := 0; j < 8 && i+j < len(data); j++ {
				data[i+j] = byte(v >> (8 * j))
			}
		}
		w.fileBytes += int64(len(data))
		if len(data) <= 8<<20 {
			w.contents = append(w.contents, data)
		}
	}
	w.nfiles++
	names := []string{"报告 final", "scan copy", "年度 预算", "photo", "合同（草稿）", "a  b"}
	ref := fmt.Sprintf("uploads/%s/%s %d (%d).bin", w.Side, names[w.Rand.IntN(len(names))], w.nfiles, len(data))
	full := filepath.Join(w.Store, filepath.FromSlash(ref))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return "", err
	}
	tmp := full + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, full); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	w.Journal.mu.Lock()
	w.Journal.files[ref] = hex.EncodeToString(sum[:])
	w.Journal.mu.Unlock()
	w.Journal.count("file")
	return ref, nil
}

func (w *Writer) insertDoc(ctx context.Context) {
	ref, err := w.upload()
	if err != nil {
		return
	}
	id, name := w.key(), w.title()
	w.Journal.count("insert")
	if w.exec(ctx, "doc", fmt.Sprint(id), name+"\x1f"+ref, "INSERT INTO doc (id, name, path) VALUES (?, ?, ?)", id, name, ref) {
		w.docs = append(w.docs, id)
	}
}

// docVal reads the row's current journal value to keep the path when
// only the name changes.
func (w *Writer) docPath(id int64) (string, bool) {
	w.Journal.mu.Lock()
	defer w.Journal.mu.Unlock()
	s := w.Journal.rows[jkey("doc", fmt.Sprint(id))]
	if len(s) != 1 {
		return "", false
	}
	for v := range s {
		_, p, ok := strings.Cut(v, "\x1f")
		return p, ok
	}
	return "", false
}

// renameDoc changes a column other than the reference; the ON UPDATE
// cursor moves with it.
func (w *Writer) renameDoc(ctx context.Context) {
	id, _, ok := pick(w.Rand, w.docs)
	if !ok {
		return
	}
	path, ok := w.docPath(id)
	if !ok {
		return
	}
	name := w.title()
	w.Journal.count("update")
	if !w.exec(ctx, "doc", fmt.Sprint(id), name+"\x1f"+path, "UPDATE doc SET name = ? WHERE id = ?", name, id) {
		w.forget("doc", fmt.Sprint(id))
	}
}

// repointDoc makes a row reference a newly uploaded file.
func (w *Writer) repointDoc(ctx context.Context) {
	id, _, ok := pick(w.Rand, w.docs)
	if !ok {
		return
	}
	name, ok := w.docName(id)
	if !ok {
		return
	}
	ref, err := w.upload()
	if err != nil {
		return
	}
	w.Journal.count("update")
	if !w.exec(ctx, "doc", fmt.Sprint(id), name+"\x1f"+ref, "UPDATE doc SET path = ? WHERE id = ?", ref, id) {
		w.forget("doc", fmt.Sprint(id))
	}
}

func (w *Writer) docName(id int64) (string, bool) {
	w.Journal.mu.Lock()
	defer w.Journal.mu.Unlock()
	s := w.Journal.rows[jkey("doc", fmt.Sprint(id))]
	if len(s) != 1 {
		return "", false
	}
	for v := range s {
		n, _, ok := strings.Cut(v, "\x1f")
		return n, ok
	}
	return "", false
}

func (w *Writer) deleteDoc(ctx context.Context) {
	id, i, ok := pick(w.Rand, w.docs)
	if !ok {
		return
	}
	w.docs = remove(w.docs, i)
	w.Journal.count("delete")
	w.exec(ctx, "doc", fmt.Sprint(id), absent, "DELETE FROM doc WHERE id = ?", id)
}

func lineKey(l [2]int64) string { return fmt.Sprintf("%d\x1f%d", l[0], l[1]) }

func (w *Writer) insertLine(ctx context.Context) {
	var l [2]int64
	if prev, _, ok := pick(w.Rand, w.lines); ok && w.Rand.IntN(2) == 0 {
		l = [2]int64{prev[0], w.key()}
	} else {
		l = [2]int64{w.key(), 1}
	}
	note := strings.Repeat(w.title()+"\n", 1+w.Rand.IntN(20))
	w.Journal.count("insert")
	if w.exec(ctx, "line", lineKey(l), note+"\x1f0", "INSERT INTO line (order_id, line_no, note, updated_at) VALUES (?, ?, ?, NOW(6))", l[0], l[1], note) {
		w.lines = append(w.lines, l)
	}
}

func (w *Writer) updateLine(ctx context.Context) {
	l, i, ok := pick(w.Rand, w.lines)
	if !ok {
		return
	}
	note := w.title()
	w.Journal.count("update")
	if !w.exec(ctx, "line", lineKey(l), note+"\x1f0", "UPDATE line SET note = ?, deleted = 0, updated_at = NOW(6) WHERE order_id = ? AND line_no = ?", note, l[0], l[1]) {
		w.lines = remove(w.lines, i)
	}
}

// softDeleteLine marks a line deleted; the row stays on both sides with
// the flag set (soft deletes travel as data by default).
func (w *Writer) softDeleteLine(ctx context.Context) {
	l, i, ok := pick(w.Rand, w.lines)
	if !ok {
		return
	}
	note, ok := w.lineNote(l)
	if !ok {
		return
	}
	w.Journal.count("softdelete")
	if !w.exec(ctx, "line", lineKey(l), note+"\x1f1", "UPDATE line SET deleted = 1, updated_at = NOW(6) WHERE order_id = ? AND line_no = ?", l[0], l[1]) {
		w.lines = remove(w.lines, i)
	}
}

func (w *Writer) lineNote(l [2]int64) (string, bool) {
	w.Journal.mu.Lock()
	defer w.Journal.mu.Unlock()
	s := w.Journal.rows[jkey("line", lineKey(l))]
	if len(s) != 1 {
		return "", false
	}
	for v := range s {
		n, _, ok := strings.Cut(v, "\x1f")
		return n, ok
	}
	return "", false
}
