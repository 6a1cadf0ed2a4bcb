package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

// raw assembles wire bytes by hand, following the layout in doc.go.
type raw []byte

func (r raw) u(x uint64) raw  { return binary.AppendUvarint(r, x) }
func (r raw) s(x string) raw  { return append(binary.AppendUvarint(r, uint64(len(x))), x...) }
func (r raw) b(x ...byte) raw { return append(r, x...) }

// header is magic, version and a valid header with Seq 0.
func header() raw { return raw("GSB\x01").s("b1").s("t").s("push").s("").s("").u(0).s("").b(0) }

// oneCol is header plus one column "a" and the row count n.
func oneCol(n uint64) raw { return header().u(1).s("a").s("").b(0).u(n) }

// valueEqual compares decoded values strictly: same Go type, floats by
// bits, nil []byte distinct from empty.
func valueEqual(x, y any) bool {
	switch x := x.(type) {
	case nil:
		return y == nil
	case float32:
		y, ok := y.(float32)
		return ok && math.Float32bits(x) == math.Float32bits(y)
	case float64:
		y, ok := y.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y)
	case []byte:
		y, ok := y.([]byte)
		return ok && (x == nil) == (y == nil) && bytes.Equal(x, y)
	case int64, uint64, bool, string:
		return x == y
	}
	return false
}

// batchEqual reports whether a and b are the same batch, and where they
// differ if not.
func batchEqual(a, b *Batch) (bool, string) {
	if a.ID != b.ID || a.Table != b.Table || a.Direction != b.Direction ||
		a.WindowFrom != b.WindowFrom || a.WindowTo != b.WindowTo || a.Seq != b.Seq ||
		a.Since != b.Since || a.Flags != b.Flags {
		return false, "header"
	}
	if len(a.Columns) != len(b.Columns) {
		return false, "column count"
	}
	for i := range a.Columns {
		if a.Columns[i] != b.Columns[i] {
			return false, "column " + a.Columns[i].Name
		}
	}
	if len(a.Rows) != len(b.Rows) {
		return false, "row count"
	}
	for i := range a.Rows {
		ra, rb := a.Rows[i], b.Rows[i]
		if ra.Op != rb.Op || len(ra.Values) != len(rb.Values) {
			return false, "row op or width"
		}
		for j := range ra.Values {
			if !valueEqual(ra.Values[j], rb.Values[j]) {
				return false, "value in column " + a.Columns[j].Name
			}
		}
	}
	return true, ""
}

// sampleBatch has every kind with edge values.
func sampleBatch() *Batch {
	blob := make([]byte, 64<<10)
	for i := range blob {
		blob[i] = byte(i * 7) // includes many NUL bytes
	}
	cols := []Column{
		{Name: "id", Type: "BIGINT", Key: true},
		{Name: "u", Type: "BIGINT UNSIGNED"},
		{Name: "f32", Type: "FLOAT"},
		{Name: "f64", Type: "DOUBLE"},
		{Name: "blob", Type: "BLOB"},
		{Name: "名前", Type: "TEXT"},
		{Name: "flag", Type: ""},
	}
	return &Batch{
		ID:         "b-2024.05_01",
		Table:      "orders",
		Direction:  "push",
		WindowFrom: "2024-05-01 00:00:00",
		WindowTo:   "2024-05-02 00:00:00",
		Seq:        math.MaxUint64,
		Columns:    cols,
		Rows: []Row{
			{Op: OpUpsert, Values: []any{int64(math.MinInt64), uint64(math.MaxUint64), math.Float32frombits(0x7fc00001), math.Float64frombits(1), blob, "中文 😀 emoji", true}},
			{Op: OpUpsert, Values: []any{int64(math.MaxInt64), uint64(0), float32(math.Copysign(0, -1)), math.Copysign(0, -1), []byte{}, "", false}},
			{Op: OpUpsert, Values: []any{int64(-1), uint64(1 << 63), float32(math.Inf(-1)), math.NaN(), []byte{0, 0, 0}, "a\x00b\xff\xfe not utf-8", nil}},
			{Op: OpDelete, Values: []any{int64(0), nil, nil, nil, nil, nil, nil}},
			{Op: OpUpsert, Values: []any{int64(300), uint64(255), float32(1.5), math.Float64frombits(0x800fffffffffffff), []byte("12345.67"), strings.Repeat("x", 200), true}},
		},
	}
}

func mustEncode(t testing.TB, b *Batch) []byte {
	t.Helper()
	enc, err := b.MarshalBinary()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return enc
}

func TestRoundTripEveryKind(t *testing.T) {
	is := is.New(t)
	in := sampleBatch()
	enc := mustEncode(t, in)
	out, err := Decode(enc, nil)
	is.NoErr(err)
	ok, where := batchEqual(in, out)
	is.True(ok) // decoded batch differs from the encoded one
	if !ok {
		t.Logf("differs at %s", where)
	}

	// Exact bits and types, checked one by one.
	r0, r1 := out.Rows[0].Values, out.Rows[1].Values
	is.Equal(r0[0], any(int64(math.MinInt64)))
	is.Equal(r0[1], any(uint64(math.MaxUint64)))
	is.Equal(math.Float32bits(r0[2].(float32)), uint32(0x7fc00001)) // NaN payload kept
	is.Equal(math.Float64bits(r0[3].(float64)), uint64(1))          // smallest subnormal kept
	is.True(bytes.Equal(r0[4].([]byte), in.Rows[0].Values[4].([]byte)))
	is.Equal(r0[5], any("中文 😀 emoji"))
	is.Equal(math.Float32bits(r1[2].(float32)), uint32(0x80000000)) // -0 float32
	is.Equal(math.Float64bits(r1[3].(float64)), uint64(1)<<63)      // -0 float64
	empty, ok := r1[4].([]byte)
	is.True(ok)                              // empty bytes decode as []byte
	is.True(empty != nil && len(empty) == 0) // empty bytes are not NULL
	is.Equal(r1[5], any(""))
	is.True(out.Rows[2].Values[6] == nil) // NULL decodes as untyped nil
	is.Equal(out.Rows[3].Op, OpDelete)
	is.Equal(out.Seq, uint64(math.MaxUint64))
	is.Equal(out.Columns[0], Column{Name: "id", Type: "BIGINT", Key: true})

	// A valid batch has one encoding.
	again := mustEncode(t, out)
	is.True(bytes.Equal(again, enc)) // re-encoding a decoded batch changed the bytes
}

func TestNilBytesIsNull(t *testing.T) {
	is := is.New(t)
	b := &Batch{ID: "x", Table: "t", Columns: []Column{{Name: "a"}, {Name: "b"}},
		Rows: []Row{{Op: OpUpsert, Values: []any{[]byte(nil), []byte{}}}}}
	out, err := Decode(mustEncode(t, b), nil)
	is.NoErr(err)
	is.True(out.Rows[0].Values[0] == nil) // nil []byte travels as NULL
	v, ok := out.Rows[0].Values[1].([]byte)
	is.True(ok && v != nil && len(v) == 0) // empty []byte stays empty, non-nil
}

// TestWireLayout pins the documented layout byte by byte.
func TestWireLayout(t *testing.T) {
	is := is.New(t)
	b := &Batch{
		ID: "b1", Table: "t", Direction: "push", WindowFrom: "1", WindowTo: "2", Seq: 300, Since: "0", Flags: FlagForce,
		Columns: []Column{{Name: "id", Type: "INT", Key: true}, {Name: "v", Type: ""}},
		Rows: []Row{
			{Op: OpUpsert, Values: []any{int64(-3), "hé"}},
			{Op: OpDelete, Values: []any{int64(5), nil}},
			{Op: OpUpsert, Values: []any{uint64(128), []byte{0xAB}}},
			{Op: OpUpsert, Values: []any{float32(1), true}},
			{Op: OpUpsert, Values: []any{float64(1), false}},
		},
	}
	want := []byte{
		'G', 'S', 'B', 1,
		2, 'b', '1', // ID
		1, 't', // Table
		4, 'p', 'u', 's', 'h', // Direction
		1, '1', 1, '2', // WindowFrom, WindowTo
		0xAC, 0x02, // Seq 300
		1, '0', // Since
		1,                                // Flags: force
		2,                                // ncols
		2, 'i', 'd', 3, 'I', 'N', 'T', 1, // id INT key
		1, 'v', 0, 0, // v, no type, flags 0
		5,                              // nrows
		1, 1, 5, 6, 3, 'h', 0xC3, 0xA9, // upsert, int64 -3 (zigzag 5), string "hé"
		2, 1, 10, 0, // delete, int64 5 (zigzag 10), null
		1, 2, 0x80, 0x01, 5, 1, 0xAB, // upsert, uint64 128, bytes {AB}
		1, 3, 0x00, 0x00, 0x80, 0x3F, 7, 1, // upsert, float32 1.0 LE, true
		1, 4, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 7, 0, // upsert, float64 1.0 LE, false
	}
	got := mustEncode(t, b)
	is.True(bytes.Equal(got, want)) // encoding differs from the documented layout
	if !bytes.Equal(got, want) {
		t.Logf("got  %x\nwant %x", got, want)
	}
	out, err := Decode(want, nil)
	is.NoErr(err)
	ok, _ := batchEqual(b, out)
	is.True(ok)
}

func TestTruncationAtEveryOffset(t *testing.T) {
	enc := mustEncode(t, sampleBatch())
	for i := 0; i < len(enc); i++ {
		_, err := Decode(enc[:i], nil)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("prefix of %d/%d bytes: got %v, want ErrMalformed", i, len(enc), err)
		}
	}
}

func TestTrailingBytes(t *testing.T) {
	is := is.New(t)
	enc := mustEncode(t, sampleBatch())
	for _, tail := range [][]byte{{0}, {1}, {0xff, 0xff}, enc[:10]} {
		_, err := Decode(append(enc[:len(enc):len(enc)], tail...), nil)
		is.True(errors.Is(err, ErrMalformed)) // trailing bytes accepted
		is.True(strings.Contains(err.Error(), "trailing bytes"))
		is.True(strings.HasSuffix(err.Error(), " at offset "+strconv.Itoa(len(enc)))) // offset of the first extra byte
	}
}

func TestVersionAndMagic(t *testing.T) {
	is := is.New(t)
	enc := mustEncode(t, sampleBatch())
	for _, v := range []byte{0, 2, 0xff} {
		bad := bytes.Clone(enc)
		bad[3] = v
		_, err := Decode(bad, nil)
		is.True(errors.Is(err, ErrVersion))    // wrong version not reported as ErrVersion
		is.True(!errors.Is(err, ErrMalformed)) // version error is its own sentinel
	}
	_, err := Decode([]byte("GSB\x02garbage"), nil)
	is.True(errors.Is(err, ErrVersion)) // version is checked before the rest
	for _, in := range []string{"", "G", "GS", "GSB", "gSB\x01", "GSX\x01", "XXXXXXXX"} {
		_, err := Decode([]byte(in), nil)
		is.True(errors.Is(err, ErrMalformed)) // bad magic or short input
	}
}

func TestUnsupportedValue(t *testing.T) {
	is := is.New(t)
	for _, c := range []struct {
		v    any
		name string
	}{
		{int32(1), "int32"},
		{time.Unix(0, 0), "time.Time"},
		{1, "int"},
		{[]string{"a"}, "[]string"},
		{new(int64), "*int64"},
	} {
		b := &Batch{ID: "x", Table: "t", Columns: []Column{{Name: "k", Key: true}, {Name: "created_at"}},
			Rows: []Row{{Op: OpUpsert, Values: []any{int64(1), c.v}}}}
		buf := []byte("prefix")
		out, err := b.AppendBinary(buf)
		is.True(errors.Is(err, ErrUnsupportedValue)) // unsupported Go type accepted
		is.True(strings.Contains(err.Error(), `"created_at"`))
		is.True(strings.Contains(err.Error(), c.name)) // message names the Go type
		is.Equal(string(out), "prefix")                // dst given back on error
	}
}

func TestEncodeRejectsInvalidBatch(t *testing.T) {
	good := func() *Batch {
		return &Batch{ID: "x", Table: "t", Columns: []Column{{Name: "a"}, {Name: "b"}},
			Rows: []Row{{Op: OpUpsert, Values: []any{int64(1), nil}}}}
	}
	cases := map[string]func(b *Batch){
		"empty ID":             func(b *Batch) { b.ID = "" },
		"ID with space":        func(b *Batch) { b.ID = "a b" },
		"ID with slash":        func(b *Batch) { b.ID = "a/b" },
		"ID too long":          func(b *Batch) { b.ID = strings.Repeat("a", 65) },
		"empty table":          func(b *Batch) { b.Table = "" },
		"table too long":       func(b *Batch) { b.Table = strings.Repeat("t", 257) },
		"direction too long":   func(b *Batch) { b.Direction = strings.Repeat("d", 17) },
		"window from too long": func(b *Batch) { b.WindowFrom = strings.Repeat("1", 65) },
		"window to too long":   func(b *Batch) { b.WindowTo = strings.Repeat("1", 65) },
		"no columns":           func(b *Batch) { b.Columns = nil; b.Rows = nil },
		"empty column name":    func(b *Batch) { b.Columns[0].Name = "" },
		"column name NUL":      func(b *Batch) { b.Columns[0].Name = "a\x00" },
		"column name not UTF8": func(b *Batch) { b.Columns[0].Name = "\xff" },
		"column name too long": func(b *Batch) { b.Columns[0].Name = strings.Repeat("n", 257) },
		"type too long":        func(b *Batch) { b.Columns[0].Type = strings.Repeat("T", 65) },
		"duplicate columns":    func(b *Batch) { b.Columns[1].Name = "a" },
		"too few values":       func(b *Batch) { b.Rows[0].Values = b.Rows[0].Values[:1] },
		"too many values":      func(b *Batch) { b.Rows[0].Values = append(b.Rows[0].Values, nil) },
		"op 0":                 func(b *Batch) { b.Rows[0].Op = 0 },
		"op 3":                 func(b *Batch) { b.Rows[0].Op = 3 },
	}
	is := is.New(t)
	_, err := good().MarshalBinary()
	is.NoErr(err) // the base batch must be valid
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			b := good()
			mutate(b)
			_, err := b.MarshalBinary()
			is.True(errors.Is(err, ErrMalformed))
		})
	}
	// Limits: edge values that are still fine.
	b := good()
	b.ID = strings.Repeat("aZ9._-", 10) + "abcd"
	b.Table = strings.Repeat("t", 256)
	b.Direction = strings.Repeat("d", 16)
	b.WindowFrom = strings.Repeat("1", 64)
	b.Columns[0].Name = strings.Repeat("é", 128)
	b.Columns[0].Type = strings.Repeat("T", 64)
	out, err := Decode(mustEncode(t, b), nil)
	is.NoErr(err)
	ok, _ := batchEqual(b, out)
	is.True(ok)
}

func TestWideTableDuplicateColumns(t *testing.T) {
	is := is.New(t)
	b := &Batch{ID: "x", Table: "t"}
	for i := 0; i < 100; i++ {
		b.Columns = append(b.Columns, Column{Name: "c" + strconv.Itoa(i)})
	}
	_, err := b.MarshalBinary()
	is.NoErr(err)
	b.Columns[99].Name = "c7"
	_, err = b.MarshalBinary()
	is.True(errors.Is(err, ErrMalformed)) // duplicate in a wide table (map path)
}

func TestDecodeRejects(t *testing.T) {
	ten := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}
	long := func(n int) string { return strings.Repeat("a", n) }
	col := func(r raw) raw { return r.u(1).s("a").s("").b(0) }
	cases := []struct {
		name   string
		in     raw
		lim    *Limits
		reason string
		off    int // -1: don't check
	}{
		{"empty ID", raw("GSB\x01").s("").s("t").s("").s("").s("").u(0), nil, "ID length out of range", 4},
		{"ID too long", raw("GSB\x01").s(long(65)).s("t").s("").s("").s("").u(0), nil, "ID length out of range", 4},
		{"ID charset", col(raw("GSB\x01").s("a b").s("t").s("").s("").s("").u(0)).u(0), nil, "ID has a character", 4},
		{"empty table", raw("GSB\x01").s("x").s("").s("").s("").s("").u(0), nil, "table length out of range", 6},
		{"table too long", raw("GSB\x01").s("x").s(long(257)).s("").s("").s("").u(0), nil, "table length out of range", 6},
		{"direction too long", raw("GSB\x01").s("x").s("t").s(long(17)).s("").s("").u(0), nil, "direction length", 8},
		{"window too long", raw("GSB\x01").s("x").s("t").s("").s(long(65)).s("").u(0), nil, "window start length", 9},
		{"no columns", header().u(0).u(0), nil, "no columns", len(header())},
		{"too many columns", header().u(2).s("a").s("").b(0).s("b").s("").b(0).u(0), &Limits{MaxColumns: 1}, "too many columns", len(header())},
		{"empty column name", header().u(1).s("").s("").b(0).u(0), nil, "column name length", len(header()) + 1},
		{"column name NUL", header().u(1).s("a\x00").s("").b(0).u(0), nil, "column name is not valid", len(header()) + 1},
		{"column name not UTF-8", header().u(1).s("\xc3").s("").b(0).u(0), nil, "column name is not valid", len(header()) + 1},
		{"type too long", header().u(1).s("a").s(long(65)).b(0).u(0), nil, "column type length", len(header()) + 3},
		{"bad flags", header().u(1).s("a").s("").b(2).u(0), nil, "bad column flags", len(header()) + 4},
		{"duplicate column", header().u(3).s("a").s("").b(0).s("b").s("").b(0).s("a").s("T").b(1).u(0), nil, "duplicate column name", len(header()) + 9},
		{"too many rows", oneCol(2).b(1, 0, 1, 0), &Limits{MaxRows: 1}, "too many rows", len(header()) + 5},
		{"op 0", oneCol(1).b(0, 0), nil, "bad row op", len(oneCol(1))},
		{"op 3", oneCol(1).b(3, 0), nil, "bad row op", len(oneCol(1))},
		{"unknown kind", oneCol(1).b(1, 8), nil, "unknown value kind", len(oneCol(1)) + 1},
		{"bool 2", oneCol(1).b(1, 7, 2), nil, "bad bool value", len(oneCol(1)) + 1},
		{"non-minimal varint", oneCol(1).b(1, 1, 0x80, 0x00), nil, "non-minimal varint", len(oneCol(1)) + 1},
		{"non-minimal length", oneCol(1).b(1, 5, 0x81, 0x00, 'x'), nil, "non-minimal varint", len(oneCol(1)) + 1},
		{"varint overflow", oneCol(1).b(1, 2).b(ten...), nil, "varint overflow", len(oneCol(1)) + 1},
		{"value over limit", oneCol(1).b(1, 6, 4).b([]byte("abcd")...), &Limits{MaxValue: 3}, "value larger than limit", len(oneCol(1)) + 1},
		{"trailing", oneCol(1).b(1, 0, 0), nil, "trailing bytes", len(oneCol(1)) + 2},
		{"short float32", oneCol(1).b(1, 3, 0, 0, 0), nil, "truncated float32", len(oneCol(1)) + 1},
		{"short float64", oneCol(1).b(1, 4, 0, 0, 0, 0, 0, 0, 0), nil, "truncated float64", len(oneCol(1)) + 1},
		{"rows beyond input", oneCol(3).b(1, 0, 1, 0), nil, "truncated rows", len(header()) + 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			_, err := Decode(c.in, c.lim)
			is.True(errors.Is(err, ErrMalformed)) // input accepted
			msg := err.Error()
			is.True(strings.Contains(msg, c.reason)) // unexpected reason
			if c.off >= 0 {
				is.True(strings.HasSuffix(msg, " at offset "+strconv.Itoa(c.off))) // unexpected offset
			}
			if t.Failed() {
				t.Logf("error: %v", err)
			}
		})
	}
	// The limits used above do accept input at the limit.
	_, err := Decode(oneCol(1).b(1, 6, 3).b([]byte("abc")...), &Limits{MaxValue: 3})
	if err != nil {
		t.Fatalf("value at limit: %v", err)
	}
	_, err = Decode(oneCol(1).b(1, 0), &Limits{MaxRows: 1, MaxColumns: 1})
	if err != nil {
		t.Fatalf("rows and columns at limit: %v", err)
	}
}

// allocated returns the heap bytes and objects that f allocates, averaged
// over runs.
func allocated(runs int, f func()) (bytesPer, objsPer uint64) {
	f() // warm up
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&m1)
	return (m1.TotalAlloc - m0.TotalAlloc) / uint64(runs), (m1.Mallocs - m0.Mallocs) / uint64(runs)
}

func TestHugeLengthsAllocateNothing(t *testing.T) {
	const huge = 1 << 40
	big := &Limits{MaxColumns: 1 << 62, MaxRows: 1 << 62, MaxValue: 1 << 62}
	cases := []struct {
		name string
		in   raw
		lim  *Limits
	}{
		{"bytes value length", oneCol(1).b(1, kindBytes).u(huge).b([]byte("xyz")...), nil},
		{"bytes value length, no limit", oneCol(1).b(1, kindBytes).u(huge).b([]byte("xyz")...), big},
		{"string value length, no limit", oneCol(1).b(1, kindString).u(huge).b([]byte("xyz")...), big},
		{"row count", oneCol(huge).b(1, 0, 1, 0), big},
		{"row count, default limit", oneCol(huge).b(1, 0, 1, 0), nil},
		{"column count", header().u(huge).s("a").s("").b(0).u(0), big},
		{"ID length", raw("GSB\x01").u(huge).b([]byte("abc")...), big},
		{"column name length", header().u(1).u(huge).b([]byte("abc")...), big},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			n, objs := allocated(50, func() { _, err = Decode(c.in, c.lim) })
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			// Only the error itself may be allocated.
			if objs > 2 || n > 256 {
				t.Fatalf("decode allocated %d bytes in %d objects per run", n, objs)
			}
		})
	}
}

// TestDecodeAllocationBound feeds the densest inputs (smallest encoding
// per allocated object) and checks the documented bound.
func TestDecodeAllocationBound(t *testing.T) {
	const rows = 20000
	dense := map[string]raw{
		"null rows":            oneCol(rows),
		"empty bytes rows":     oneCol(rows),
		"negative int64 rows":  oneCol(rows),
		"one-byte string rows": oneCol(rows),
		"wide null rows":       header().u(100),
	}
	for i := 0; i < rows; i++ {
		dense["null rows"] = dense["null rows"].b(1, kindNull)
		dense["empty bytes rows"] = dense["empty bytes rows"].b(1, kindBytes, 0)
		dense["negative int64 rows"] = dense["negative int64 rows"].b(1, kindInt64, 1)
		dense["one-byte string rows"] = dense["one-byte string rows"].b(1, kindString, 1, 'x')
	}
	w := dense["wide null rows"]
	for i := 0; i < 100; i++ {
		w = w.s("c" + strconv.Itoa(i)).s("").b(0)
	}
	w = w.u(200)
	for i := 0; i < 200; i++ {
		w = append(w.b(1), make([]byte, 100)...)
	}
	dense["wide null rows"] = w
	for name, in := range dense {
		t.Run(name, func(t *testing.T) {
			var err error
			n, _ := allocated(3, func() { _, err = Decode(in, nil) })
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(n) / float64(len(in))
			t.Logf("%d input bytes, %d allocated: %.1fx", len(in), n, ratio)
			if n > 32*uint64(len(in))+4096 {
				t.Fatalf("allocated %.1fx the input", ratio)
			}
		})
	}
}

func TestDecodedBytesAliasInput(t *testing.T) {
	is := is.New(t)
	b := &Batch{ID: "x", Table: "t", Columns: []Column{{Name: "b"}, {Name: "s"}, {Name: "z"}},
		Rows: []Row{{Op: OpUpsert, Values: []any{[]byte("abc"), "def", int64(1)}}}}
	enc := mustEncode(t, b)
	out, err := Decode(enc, nil)
	is.NoErr(err)
	v := out.Rows[0].Values[0].([]byte)
	is.Equal(cap(v), len(v)) // capacity cut to length
	_ = append(v, 'X', 'Y', 'Z', 'W')
	again, err := Decode(enc, nil)
	is.NoErr(err) // appending to a value must not overwrite the input
	ok, _ := batchEqual(out, again)
	is.True(ok)
	i := bytes.Index(enc, []byte("abc"))
	enc[i] = 'z'
	is.Equal(string(v), "zbc") // []byte values alias the input
	j := bytes.Index(enc, []byte("def"))
	enc[j] = 'z'
	is.Equal(out.Rows[0].Values[1], any("def")) // strings are copied
}

func TestRowSizeIsExact(t *testing.T) {
	is := is.New(t)
	src := sampleBatch()
	for _, r := range src.Rows {
		b := *src
		b.Rows = nil
		without := mustEncode(t, &b)
		b.Rows = []Row{r}
		with := mustEncode(t, &b)
		is.Equal(RowSize(r), len(with)-len(without))
	}
	r := src.Rows[0]
	is.Equal(testing.AllocsPerRun(100, func() { _ = RowSize(r) }), 0.0) // RowSize allocates
	// Unsupported values still give a number, never a panic.
	is.Equal(RowSize(Row{Values: []any{int32(1)}}), 2)
}

func TestEncodedSizeIsExact(t *testing.T) {
	is := is.New(t)
	b := sampleBatch()
	enc := mustEncode(t, b)
	is.Equal(len(enc), cap(enc)) // MarshalBinary allocates the exact size
	app, err := b.AppendBinary([]byte("abc"))
	is.NoErr(err)
	is.Equal(string(app[:3]), "abc") // AppendBinary keeps dst
	is.True(bytes.Equal(app[3:], enc))
}

func TestBytes(t *testing.T) {
	is := is.New(t)
	b := &Batch{Rows: []Row{
		{Values: []any{int64(1), uint64(2), float32(3), float64(4)}},
		{Values: []any{[]byte("ab"), "cde", nil, true, []byte{}}},
	}}
	is.Equal(b.Bytes(), int64(4*8+2+3))
}

func TestEmptyRowsRoundTrip(t *testing.T) {
	is := is.New(t)
	b := &Batch{ID: "x", Table: "t", Columns: []Column{{Name: "a", Key: true}}}
	out, err := Decode(mustEncode(t, b), nil)
	is.NoErr(err)
	is.Equal(len(out.Rows), 0)
	is.Equal(out.Columns, b.Columns)
}
