package batch_test

import (
	"fmt"

	"github.com/gapsync/gapsync/batch"
)

// A page of rows, encoded for the wire and decoded on the far side with
// every value as it was: bytes stay bytes, NULL stays NULL, the empty
// string stays empty.
func Example() {
	b := &batch.Batch{
		ID: "run1.orders.push.0", Table: "orders", Direction: "push",
		WindowFrom: "2026-03-01 00:00:00.000000", WindowTo: "2026-03-01 00:01:00.000000",
		Columns: []batch.Column{{Name: "id", Key: true}, {Name: "item"}, {Name: "price"}, {Name: "note"}},
		Rows: []batch.Row{
			{Op: batch.OpUpsert, Values: []any{int64(1), "变压器", []byte("1234.500000"), nil}},
			{Op: batch.OpUpsert, Values: []any{int64(2), "cable 🔌", []byte("9.990000"), ""}},
			{Op: batch.OpDelete, Values: []any{int64(3), nil, nil, nil}},
		},
	}
	wire, err := b.MarshalBinary()
	if err != nil {
		panic(err)
	}
	got, err := batch.Decode(wire, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.ID, got.Table, len(got.Rows), "rows")
	for _, r := range got.Rows {
		fmt.Print("op ", r.Op)
		for _, v := range r.Values {
			switch x := v.(type) {
			case nil:
				fmt.Print(" NULL")
			case []byte:
				fmt.Printf(" bytes%q", x)
			case string:
				fmt.Printf(" text%q", x)
			default:
				fmt.Print(" ", x)
			}
		}
		fmt.Println()
	}
	// Output:
	// run1.orders.push.0 orders 3 rows
	// op 1 1 text"变压器" bytes"1234.500000" NULL
	// op 1 2 text"cable 🔌" bytes"9.990000" text""
	// op 2 3 NULL NULL NULL
}
