package service_test

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/service"
)

func TestSelectionFlags(t *testing.T) {
	is := is.New(t)
	parse := func(args ...string) ([]gapsync.Table, error) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var s service.SelectionFlags
		s.Register(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		orders, _ := gapsync.ParseTable("orders:id:updated_at")
		users, _ := gapsync.ParseTable("users:id:updated_at:both")
		return s.Apply([]gapsync.Table{orders, users})
	}
	ts, err := parse("-columns", "orders=id, status,total", "-filter", "orders=region = 'north' AND status <> 'draft'",
		"-filter-as", "orders=delete", "-exclude", "users=password_hash")
	is.NoErr(err)
	is.Equal(ts[0].Columns, []string{"id", "status", "total"})
	is.Equal(ts[0].Filter, "region = 'north' AND status <> 'draft'")
	is.Equal(ts[0].FilterAs, "delete")
	is.Equal(ts[1].Exclude, []string{"password_hash"})
	is.True(!ts[1].Sends("password_hash"))
	is.True(ts[1].Sends("id")) // the key always goes

	_, err = parse("-filter", "orders=1=1; DROP TABLE users")
	is.True(errors.Is(err, gapsync.ErrBadFilter))
	_, err = parse("-filter", "nosuch=a = 1")
	is.True(err != nil) // names no -table
	_, err = parse("-exclude", "orders=updated_at")
	is.True(err != nil) // the cursor cannot be excluded
	_, err = parse("-filter-as", "orders=delete")
	is.True(err != nil) // no filter
	_, err = parse("-columns", "orders=a", "-exclude", "orders=b")
	is.True(err != nil) // not both
	_, err = parse("-columns", "orders")
	is.True(err != nil) // no =

	// From the environment: a filter a line, spaces kept.
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var s service.SelectionFlags
	s.Register(fs)
	t.Setenv("T_FILTER", "orders=status <> 'draft'\nusers=active = 1\n")
	t.Setenv("T_EXCLUDE", "users=password_hash orders=secret")
	is.NoErr(fs.Parse(nil))
	is.NoErr(service.Env(fs, "T_", service.SelectionNames...))
	orders, _ := gapsync.ParseTable("orders:id:updated_at")
	users, _ := gapsync.ParseTable("users:id:updated_at")
	ts, err = s.Apply([]gapsync.Table{orders, users})
	is.NoErr(err)
	is.Equal(ts[0].Filter, "status <> 'draft'")
	is.Equal(ts[1].Filter, "active = 1")
	is.Equal(ts[0].Exclude, []string{"secret"})
}

func TestRenameFlags(t *testing.T) {
	is := is.New(t)
	parse := func(args ...string) ([]gapsync.Table, error) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var r service.RenameFlags
		r.Register(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		orders, _ := gapsync.ParseTable("orders:id:updated_at:both")
		return r.Apply([]gapsync.Table{orders})
	}
	ts, err := parse("-rename", "orders=ext_orders", "-rename-columns", "orders=id:order_id, note:remark")
	is.NoErr(err)
	is.Equal(ts[0].Wire(), "ext_orders")
	is.Equal(ts[0].WireColumn("ID"), "order_id")
	is.Equal(ts[0].LocalColumn("remark"), "note")
	is.Equal(ts[0].WireColumn("total"), "total")
	for _, bad := range [][]string{
		{"-rename", "orders=ext`orders"}, {"-rename", "nosuch=x"}, {"-rename-columns", "orders=id"},
		{"-rename-columns", "orders=a:x,b:x"}, {"-rename-columns", "orders=a:x,a:y"},
	} {
		_, err := parse(bad...)
		is.True(err != nil)
	}
}
