// Command intranet is the intranet zone's main. In this release the
// intranet side has no scheduled work of its own: rows travel both ways
// through the external-zone gateway, which reads and writes the intranet
// database. This command prepares that database (creates the sync
// metadata tables), enables tables in its sync_config with -table, and
// installs the delete triggers with -tombstones; the file flow (merge,
// verify, upload to the intranet object store) will run here.
//
//	intranet -db 'user:pass@tcp(db:3306)/app' -table demo:id:updated_at:both -tombstones
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "intranet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dsn := flag.String("db", os.Getenv("GAPSYNC_INTRANET_DB"), "intranet database: a MySQL DSN, or sqlite:PATH")
	var tables []string
	flag.Func("table", "enable NAME:KEY[+KEY…]:CURSOR[:DIRECTION] in sync_config (repeatable; direction push, pull or both; default push)", func(s string) error {
		tables = append(tables, s)
		return nil
	})
	tombstones := flag.Bool("tombstones", false, "install the delete triggers and tombstone tables for every -table (needs the TRIGGER privilege)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "intranet: prepares the intranet database for gapsync (metadata tables, sync_config rows,\n"+
			"delete triggers). Nothing else runs here yet: rows travel both ways through the\n"+
			"external-zone gateway; the intranet file worker comes with the file flow.")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *dsn == "" {
		return errors.New("need -db (or GAPSYNC_INTRANET_DB)")
	}
	db, err := storage.Open(*dsn, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	for _, spec := range tables {
		t, err := gapsync.ParseTable(spec)
		if err != nil {
			return err
		}
		if err := db.Configure(ctx, t); err != nil {
			return err
		}
		if *tombstones {
			if err := db.InstallTombstones(ctx, t); err != nil {
				return err
			}
		}
		fmt.Printf("intranet: %s enabled for %s\n", t.Name, t.Direction)
	}
	fmt.Println("intranet: metadata tables ready; no scheduled intranet work in this release")
	return nil
}
