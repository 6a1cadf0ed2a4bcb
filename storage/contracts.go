package storage

import (
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// *DB is every database role the syncer package consumes, on each of the
// three engines; storage/sqltest holds each method to its contract.
var (
	_ syncer.InternetDB     = (*DB)(nil)
	_ syncer.IntranetDB     = (*DB)(nil)
	_ syncer.FileDB         = (*DB)(nil)
	_ syncer.Parker         = (*DB)(nil)
	_ syncer.ShapeReader    = (*DB)(nil)
	_ transport.ReplayGuard = (*DB)(nil)
	_ syncer.Horizoner      = (*DB)(nil)
	_ syncer.RangeHasher    = (*DB)(nil)
	_ syncer.VerifyLog      = (*DB)(nil)
	_ syncer.Checkpointer   = (*DB)(nil)
	_ syncer.PageReader     = (*DB)(nil)
	_ syncer.Remainder      = (*DB)(nil)
)
