package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// A table and its columns with other names on the intranet side
// (orders(id, note) is ext_orders(order_id, remark) there; letters(body)
// is ext_letters(content)): verification compares them across the map,
// both directions, names what differs in this side's names, and repair
// makes the far side match through the same map.
func TestVerifyAcrossRenames(t *testing.T) {
	eachEngine(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{})
		inOrders := orders
		inOrders.RemoteName, inOrders.RemoteColumns = "ext_orders", map[string]string{"id": "order_id", "note": "remark"}
		inLetters := letters
		inLetters.RemoteName, inLetters.RemoteColumns = "ext_letters", map[string]string{"body": "content"}
		mustExec(t, z.src(), inKind(kind, ordersDDL))
		mustExec(t, z.src(), inKind(kind, lettersDDL))
		is.NoErr(z.inet.Configure(ctx, inOrders))
		is.NoErr(z.inet.Configure(ctx, inLetters))
		is.NoErr(z.inet.InstallTombstones(ctx, inOrders))
		mustExec(t, z.dst(), inKind(kind, strings.NewReplacer("orders", "ext_orders", "id BIGINT", "order_id BIGINT", "note", "remark").Replace(ordersDDL)))
		mustExec(t, z.dst(), inKind(kind, strings.NewReplacer("letters", "ext_letters", "body", "content").Replace(lettersDDL)))
		exOrders := orders
		exOrders.Name, exOrders.Key = "ext_orders", []string{"order_id"}
		exLetters := letters
		exLetters.Name = "ext_letters"
		is.NoErr(z.intra.Configure(ctx, exOrders))
		is.NoErr(z.intra.Configure(ctx, exLetters))

		var vals []string
		for i := 0; i < 300; i++ {
			vals = append(vals, fmt.Sprintf("(%d, '订单 %d', %d.%02d, %s, %s)", i, i, i, i%100, blobIn(kind, fmt.Sprintf("%04x00ff", i)), z.now))
		}
		mustExec(t, z.src(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES "+strings.Join(vals, ","))
		for i := 0; i < 20; i++ {
			mustExec(t, z.dst(), fmt.Sprintf("INSERT INTO ext_letters (id, content, updated_at) VALUES (%d, 'doc %d', %s)", i, i, z.now))
		}
		z.waitLag()
		_, err := z.runOnce()
		is.NoErr(err)
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM ext_orders"), 300)
		is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM letters"), 20)

		vs, err := z.coord.Verify(ctx, nil, nil)
		is.NoErr(err)
		is.Equal(diffLines(vs), []string(nil))
		rows := map[string]int64{}
		for _, v := range vs {
			rows[v.Table] = v.Rows
		}
		is.Equal(rows, map[string]int64{"orders": 300, "letters": 20})

		mustExec(t, z.dst(), "DELETE FROM ext_orders WHERE order_id = 10")
		mustExec(t, z.dst(), "UPDATE ext_orders SET remark = 'damaged' WHERE order_id = 111")
		mustExec(t, z.dst(), "UPDATE ext_orders SET amount = 232.33 WHERE order_id = 232") // was 232.32
		mustExec(t, z.dst(), "INSERT INTO ext_orders (order_id, remark, amount, data, updated_at) VALUES (99999, 'stray', 1.00, NULL, "+z.now+")")
		mustExec(t, z.src(), "UPDATE letters SET body = 'changed here' WHERE id = 7") // a pull table: the internet differs
		want := []string{
			"orders 10 missing intranet ",
			"orders 111 different intranet note",
			"orders 232 different intranet amount",
			"orders 99999 extra intranet ",
			"letters 7 different internet body",
		}
		vs, err = z.coord.Verify(ctx, []string{"orders", "letters"}, nil)
		is.NoErr(err)
		is.Equal(diffLines(vs), want)

		rs, err := z.coord.Repair(ctx, vs)
		is.NoErr(err)
		var done []string
		for _, r := range rs {
			done = append(done, fmt.Sprintf("%s %s %s %v %s", r.Table, r.KeyText(), r.Action, r.Done, r.Reason))
		}
		is.Equal(done, []string{
			"orders 10 upsert true ",
			"orders 111 upsert true ",
			"orders 232 upsert true ",
			"orders 99999 delete true ",
			"letters 7 upsert true ",
		})
		var remark, body string
		is.NoErr(z.dst().QueryRow("SELECT remark FROM ext_orders WHERE order_id = 111").Scan(&remark))
		is.Equal(remark, "订单 111")
		is.NoErr(z.src().QueryRow("SELECT body FROM letters WHERE id = 7").Scan(&body))
		is.Equal(body, "doc 7")
		vs, err = z.coord.Verify(ctx, nil, nil)
		is.NoErr(err)
		is.Equal(diffLines(vs), []string(nil))
	})
}

// A column map that makes two columns one name on the intranet side is
// refused by verification with the fix, before anything is read.
func TestVerifyRefusesCollidingColumnMap(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	bad := orders
	bad.RemoteColumns = map[string]string{"note": "amount"}
	z.both(orders, ordersDDL)
	is.NoErr(z.inet.Configure(ctx, bad))
	_, err := z.coord.Verify(ctx, []string{"orders"}, nil)
	is.True(err != nil)
	is.True(errors.Is(err, gapsync.ErrSchemaDrift))
	is.True(strings.Contains(err.Error(), "-rename-columns"))
}
