package batch

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchBatch builds n rows of 8 mixed columns, about 200 encoded bytes per
// row, the way the MySQL and SQLite drivers hand values over.
func benchBatch(n int) *Batch {
	rng := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	text := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return b
	}
	b := &Batch{
		ID: "push-orders-000042", Table: "orders", Direction: "push",
		WindowFrom: "2024-05-01 00:00:00", WindowTo: "2024-05-01 01:00:00", Seq: 42,
		Columns: []Column{
			{Name: "id", Type: "BIGINT", Key: true},
			{Name: "customer_id", Type: "BIGINT UNSIGNED"},
			{Name: "amount", Type: "DECIMAL"},
			{Name: "created_at", Type: "DATETIME"},
			{Name: "score", Type: "DOUBLE"},
			{Name: "active", Type: "TINYINT"},
			{Name: "title", Type: "TEXT"},
			{Name: "notes", Type: "BLOB"},
		},
		Rows: make([]Row, n),
	}
	for i := range b.Rows {
		var notes any = text(90 + rng.IntN(20))
		if i%10 == 0 {
			notes = nil
		}
		b.Rows[i] = Row{Op: OpUpsert, Values: []any{
			int64(1_000_000 + i),
			uint64(rng.Uint32()),
			[]byte(strconv.FormatFloat(rng.Float64()*1e5, 'f', 2, 64)),
			[]byte("2024-05-01 00:" + strconv.Itoa(10+i%50) + ":" + strconv.Itoa(10+i%49)),
			rng.Float64(),
			rng.IntN(2) == 1,
			string(text(50 + rng.IntN(20))),
			notes,
		}}
	}
	return b
}

func BenchmarkEncode(b *testing.B) {
	bt := benchBatch(1000)
	buf, err := bt.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, err = bt.AppendBinary(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf))/float64(len(bt.Rows)), "B/row")
}

func BenchmarkMarshalBinary(b *testing.B) {
	bt := benchBatch(1000)
	buf, err := bt.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bt.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	buf, err := benchBatch(1000).MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(buf, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRowSize(b *testing.B) {
	bt := benchBatch(1000)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		for _, r := range bt.Rows {
			n += RowSize(r)
		}
	}
	b.ReportMetric(float64(n)/float64(len(bt.Rows)), "B/row")
}
