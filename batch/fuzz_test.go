package batch

import (
	"bytes"
	"errors"
	"runtime/metrics"
	"testing"
)

var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// heapAllocated returns the heap bytes allocated so far, cheaply: large
// objects are counted as they are allocated, small ones span by span.
func heapAllocated() uint64 {
	metrics.Read(allocSample)
	return allocSample[0].Value.Uint64()
}

// fuzzAllocBound is the most Decode may allocate for an input of n bytes;
// the constant covers the Batch itself and the size-class rounding of a
// few small allocations.
func fuzzAllocBound(n int) uint64 { return 32*uint64(n) + 64<<10 }

func FuzzDecode(f *testing.F) {
	small := sampleBatch()
	for i := range small.Rows {
		if v, ok := small.Rows[i].Values[4].([]byte); ok && len(v) > 64 {
			small.Rows[i].Values[4] = v[:64]
		}
	}
	seeds := []*Batch{
		small,
		benchBatch(3),
		{ID: "x", Table: "t", Columns: []Column{{Name: "a", Key: true}}},
		{ID: "b1", Table: "t", Direction: "pull", Seq: 300,
			Columns: []Column{{Name: "id", Type: "INT", Key: true}, {Name: "v"}},
			Rows: []Row{
				{Op: OpUpsert, Values: []any{int64(-3), "hé"}},
				{Op: OpDelete, Values: []any{int64(5), nil}},
				{Op: OpUpsert, Values: []any{uint64(128), []byte{}}},
				{Op: OpUpsert, Values: []any{float32(1), true}},
				{Op: OpUpsert, Values: []any{float64(1), false}},
			}},
	}
	for _, b := range seeds {
		enc := mustEncode(f, b)
		f.Add(enc)
		f.Add(enc[:len(enc)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("GSB\x02"))
	f.Add([]byte(oneCol(1<<40).b(1, 0)))
	f.Add([]byte(oneCol(1).b(1, kindBytes).u(1 << 40)))

	small1 := &Limits{MaxColumns: 3, MaxRows: 4, MaxValue: 8}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := heapAllocated()
		b, err := Decode(data, nil)
		if heapAllocated()-before > fuzzAllocBound(len(data)) {
			// The cheap counter may include earlier small allocations
			// (it counts them span by span): measure exactly to be sure.
			n, _ := allocated(1, func() { _, _ = Decode(data, nil) })
			if n > fuzzAllocBound(len(data)) {
				t.Fatalf("Decode allocated %d bytes for %d input bytes (err %v)", n, len(data), err)
			}
		}

		bs, errs := Decode(data, small1)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error wraps neither ErrMalformed nor ErrVersion: %v", err)
			}
			if errs == nil {
				t.Fatalf("accepted under tighter limits, rejected under defaults: %v", err)
			}
			return
		}
		if errs == nil {
			if ok, where := batchEqual(b, bs); !ok {
				t.Fatalf("limits changed the result at %s", where)
			}
		} else if !errors.Is(errs, ErrMalformed) {
			t.Fatalf("limit error does not wrap ErrMalformed: %v", errs)
		}

		// Whatever decodes encodes, to the very same bytes (one encoding
		// per batch), and decodes to the same batch again.
		enc, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encoding changed the bytes:\n in  %x\n out %x", data, enc)
		}
		b2, err := Decode(enc, nil)
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if ok, where := batchEqual(b, b2); !ok {
			t.Fatalf("decode(encode(b)) != b at %s", where)
		}
		if cap(enc) != len(enc) {
			t.Fatalf("size estimate %d, encoding %d bytes", cap(enc), len(enc))
		}
	})
}
