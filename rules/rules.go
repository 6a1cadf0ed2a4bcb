// Package rules holds gapsync's sync rules, once, for every database
// adapter: what a row's state is (the hashes the version ledger keeps),
// when a row read for sending is an echo of what sync wrote, when an
// arriving row conflicts with a local change, whether a change has
// travelled, what a soft-delete column means, which file references are
// the other side's, and how tombstones of arriving deletions are stamped.
//
// The decisions are pure functions. The order they run in is here too:
// Apply writes an arriving batch and Outgoing prepares a page read for
// sending, over the small, transaction-scoped primitives an adapter
// offers (Applier, ApplyTx, Sender): look up rows by key, upsert, delete,
// read and write the version, origin and applied-batch ledgers. The
// package does no I/O of its own. The storage package is such an adapter
// for MySQL/MariaDB, PostgreSQL and SQLite (its Apply is rules.Apply, its
// page reader hands each page to Outgoing), and a user's own adapter
// (Oracle, DM, a vendor SDK) does the same and proves itself with
// storage/sqltest.
//
// Values are hashed with their Go type (batch.AppendValue), so an adapter
// must hash values in one form per column: the form its driver reads
// back. A writer therefore puts arriving values in that form first
// (Applier.Ready).
package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// KeyHash identifies a row by its key values, in configured key order.
func KeyHash(vals []any) string {
	var buf []byte
	for _, v := range vals {
		buf, _ = batch.AppendValue(buf, v)
	}
	s := sha256.Sum256(buf)
	return hex.EncodeToString(s[:16])
}

// RowHash hashes a whole row, columns taken in name order so that two
// tables whose columns are declared in another order still agree. A nil
// []byte (an empty BLOB as some drivers give it) counts as empty, not as
// NULL.
func RowHash(names []string, vals []any) string {
	idx := make([]int, len(names))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return names[idx[a]] < names[idx[b]] })
	var buf []byte
	for _, i := range idx {
		buf = append(buf, names[i]...)
		buf = append(buf, 0)
		buf, _ = batch.AppendValue(buf, Normalize(vals[i]))
	}
	s := sha256.Sum256(buf)
	return hex.EncodeToString(s[:16])
}

// RangeHash is the verification hash of a key range: SHA-256 over salt
// and then the RowHash of each row in key order (rowHashes, as RowHash
// returns them), cut to 16 bytes. Two sides that hold the same rows, read
// in the same form, give the same hash.
func RangeHash(salt []byte, rowHashes ...string) []byte {
	h := sha256.New()
	h.Write(salt)
	for _, r := range rowHashes {
		b, _ := hex.DecodeString(r)
		h.Write(b)
	}
	return h.Sum(nil)[:16]
}

// StateHash is what the version ledger compares: the hash of a whole row
// for an upsert, or for a deletion a hash of its key and its deletion time
// (carried in the cursor column), so that a row deleted, created again and
// deleted again is a new state, not an echo of the first deletion.
func StateHash(op batch.Op, names []string, vals []any, keyPos []int, curPos int) string {
	if op == batch.OpUpsert {
		return RowHash(names, vals)
	}
	dn := make([]string, 0, len(keyPos)+1)
	dv := make([]any, 0, len(keyPos)+1)
	for _, p := range keyPos {
		dn, dv = append(dn, names[p]), append(dv, vals[p])
	}
	dn, dv = append(dn, "\x00deleted_at"), append(dv, vals[curPos])
	return "d" + RowHash(dn, dv)[1:]
}

// Normalize makes a driver's nil []byte (an empty BLOB) non-nil, so that
// it is not taken for NULL.
func Normalize(v any) any {
	if b, ok := v.([]byte); ok && b == nil {
		return []byte{}
	}
	return v
}

// IsEcho reports whether a row read for sending, whose state hash is
// state, is what sync last wrote here (ledger, "" when none): it came from
// the other side and must not go back.
func IsEcho(ledger, state string) bool { return ledger != "" && ledger == state }

// Local is this side's version of a row an arriving change touches: its
// state hash over the arriving row's columns, its cursor (a deletion's:
// its time, or for an integer cursor the deleted row's last value), and
// whether there is one at all. Stored, when set, is its state hash over
// every column this side sends (the form the ledger holds), for a table
// with columns the arriving batch lacks; "" means State is that form too.
type Local struct {
	Found  bool
	State  string
	Stored string
	Cursor any
}

// Conflicts reports whether an arriving row, of state hash in, conflicts
// with the local version: there is one, it differs from what arrives, sync
// did not write it (its stored state is not the ledger's), and it has not
// travelled yet (its cursor is at or after since, the reverse direction's
// last bound; see Unsynced). A forced batch never conflicts.
func Conflicts(in string, local Local, ledger, since string, force bool) bool {
	stored := local.State
	if local.Stored != "" {
		stored = local.Stored
	}
	return !force && local.Found && local.State != in && ledger != stored && Unsynced(local.Cursor, since)
}

// Unsynced reports whether a local cursor value is at or after since, the
// reverse direction's last bound: a change there has not travelled yet.
// Integers compare as numbers; a bound of the other kind (the cursor
// changed type since) proves nothing, so the change counts as unsynced.
func Unsynced(cursor any, since string) bool {
	if since == "" {
		return true
	}
	var c string
	switch x := cursor.(type) {
	case []byte:
		c = string(x)
	case string:
		c = x
	case int64:
		c = strconv.FormatInt(x, 10)
	case uint64:
		c = strconv.FormatUint(x, 10)
	default:
		return false
	}
	// A bound with two parts (an integer cursor with tombstones): the
	// integer part for a row, the deletions' time part for a tombstone.
	if sc, sd := gapsync.SplitBound(since); sd != "" {
		since = sc
		if !gapsync.IsIntegerBound(c) {
			since = sd
		}
	}
	if gapsync.IsIntegerBound(c) != gapsync.IsIntegerBound(since) {
		return true
	}
	return gapsync.CompareBounds(c, since) >= 0
}

// SoftDeleted: a soft-delete column marks a row deleted when it holds
// anything but NULL, zero, an empty string, "0", false (as a Go bool, or
// as the text "false" that PostgreSQL gives for a boolean read as text) or a
// zero date.
func SoftDeleted(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case int64:
		return x != 0
	case uint64:
		return x != 0
	case float32:
		return x != 0
	case float64:
		return x != 0
	case bool:
		return x
	case []byte:
		return softText(string(x))
	case string:
		return softText(x)
	}
	return true
}

func softText(s string) bool {
	switch s {
	case "", "0", "false":
		return false
	}
	return !strings.HasPrefix(s, "0000-00-00")
}

// Positions returns the index in names of each of want; -1 when absent.
func Positions(names, want []string) []int {
	out := make([]int, len(want))
	for i, w := range want {
		out[i] = -1
		for j, n := range names {
			if n == w {
				out[i] = j
			}
		}
	}
	return out
}

// Pick returns the values at pos.
func Pick(vals []any, pos []int) []any {
	out := make([]any, len(pos))
	for i, p := range pos {
		out[i] = vals[p]
	}
	return out
}
