package service_test

import (
	"bytes"
	"errors"
	"flag"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/service"
)

func TestVerifyFlag(t *testing.T) {
	is := is.New(t)
	parse := func(args ...string) (service.VerifyFlag, []string) {
		var v service.VerifyFlag
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.Var(&v, "verify", "")
		is.NoErr(fs.Parse(args))
		return v, v.TakeArgs(fs.Args())
	}
	v, rest := parse("-verify")
	is.True(v.On)
	is.Equal(len(v.Tables), 0)
	is.Equal(len(rest), 0)
	v, _ = parse("-verify", "orders,docs")
	is.Equal(v.Tables, []string{"orders", "docs"})
	v, _ = parse("-verify=orders")
	is.Equal(v.Tables, []string{"orders"})
	v, rest = parse("x")
	is.True(!v.On)
	is.Equal(rest, []string{"x"})

	var out bytes.Buffer
	is.NoErr(service.WriteVerify(&out, []gapsync.TableVerify{{Table: "a", Rows: 5}}))
	is.Equal(out.String(), "verify: 1 tables, 5 rows compared, 0 differ\n")
	out.Reset()
	err := service.WriteVerify(&out, []gapsync.TableVerify{{Table: "a", Rows: 5, Diffs: []gapsync.RowDiff{
		{Table: "a", Key: []any{int64(1), []byte("x")}, Kind: gapsync.DiffChanged, Side: gapsync.Intranet, Columns: []string{"p", "q"}},
		{Table: "a", Key: []any{int64(2), []byte{0xff}}, Kind: gapsync.DiffMissing, Side: gapsync.Internet},
	}}})
	is.True(errors.Is(err, service.ErrDiffer))
	is.Equal(out.String(), "a\t1,x\tdifferent on intranet\tp,q\na\t2,0xff\tmissing on internet\nverify: 1 tables, 5 rows compared, 2 differ\n")
}
