package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/metrics"
	"github.com/gapsync/gapsync/syncer"
)

// Run verifies on its schedule between cycles, one Interval at a time, so
// that cycles go on while a verification of a large table takes many
// intervals: a row written meanwhile is synced before the verification
// ends. The result reaches sync_verify, the status and the metrics; the
// verification is not run again before VerifyEvery has passed.
func TestRunVerifiesBetweenCycles(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	damagedOrders(t, z, 3000)
	m := metrics.New()
	coord, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{
		Interval: 100 * time.Millisecond, Metrics: m, VerifyEvery: time.Hour,
		Verify: &syncer.VerifyOptions{RangeRows: 100, RowsPerSecond: 2000},
	})
	is.NoErr(err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- coord.Run(rctx) }()
	defer func() {
		cancel()
		is.True(errors.Is(<-done, context.Canceled))
	}()

	// Wait for the verification to be under way, then write a row.
	waitFor(t, 20*time.Second, func() bool {
		st, err := z.inet.Status(ctx)
		is.NoErr(err)
		return len(st.Verify) == 1 && st.Verify[0].Running > 0
	})
	mustExec(t, z.src(), "INSERT INTO orders (id, note, amount, data, updated_at) VALUES (5000, 'new', 1.00, NULL, "+z.now+")")
	waitFor(t, 20*time.Second, func() bool { return count(t, z.dst(), "SELECT COUNT(*) FROM orders WHERE id = 5000") == 1 })
	st, err := z.inet.Status(ctx)
	is.NoErr(err)
	is.True(st.Verify[0].At.IsZero()) // the row was synced while the verification was under way

	// Generous: each slice of one Interval also pays its setup (the
	// lease, the shapes of both sides), which on a loaded machine under
	// the race detector leaves little of 100 ms for ranges.
	waitFor(t, 90*time.Second, func() bool { return gauge(t, m, "gapsync_verify_last_timestamp_seconds", "orders", "") > 0 })
	is.Equal(gauge(t, m, "gapsync_verify_differ_rows", "orders", ""), 4.0)
	rows := gauge(t, m, "gapsync_verify_rows", "orders", "")
	is.True(rows >= 3001)
	is.True(counter(t, m, "gapsync_verify_read_rows_total", map[string]string{"side": "intranet"}) >= 3000)
	is.True(counter(t, m, "gapsync_verify_paced_seconds_total", nil) > 0)
	st, err = z.inet.Status(ctx)
	is.NoErr(err)
	is.Equal(st.Verify[0].Differ, 4)
	is.Equal(st.Verify[0].Running, int64(0))
	kept, err := z.inet.Verifications(ctx, "")
	is.NoErr(err)
	var lines []string
	for _, k := range kept[1:] {
		lines = append(lines, fmt.Sprintf("%s %s %s", k.KeyText, k.Kind, k.Columns))
	}
	is.Equal(strings.Join(lines, "; "), "10 missing ; 850 different note; 2350 different amount; 99999 extra ")

	// Not due again for an hour: the next pauses verify nothing.
	time.Sleep(500 * time.Millisecond)
	after, err := z.inet.Verifications(ctx, "")
	is.NoErr(err)
	is.Equal(after[0].RunID, kept[0].RunID)
}

// A coordinator that does not hold the lease does not verify.
func TestRunVerifiesOnlyUnderTheLease(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	damagedOrders(t, z, 500)
	is.NoErr(z.inet.Acquire(ctx, "coordinator", "someone else", time.Hour))
	coord, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Interval: 50 * time.Millisecond, VerifyEvery: time.Hour})
	is.NoErr(err)
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	coord.Run(rctx)
	st, err := z.inet.Status(ctx)
	is.NoErr(err)
	is.Equal(len(st.Verify), 0)
}

func waitFor(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not so after %s", limit)
		}
	}
}

// A verification or repair called directly takes the coordinator's lease
// as a cycle does: while another coordinator holds it, both are refused
// with a clear error and compare or write nothing; once it is free they
// run and give it back, so the next cycle is not held up.
func TestManualVerifyTakesTheLease(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newZones(t, "sqlite", zoneOpts{})
	damagedOrders(t, z, 200)
	is.NoErr(z.inet.Acquire(ctx, "coordinator", "someone else", time.Hour))
	coord, err := syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Holder: "me"})
	is.NoErr(err)
	vs, err := coord.Verify(ctx, nil, nil)
	is.True(errors.Is(err, gapsync.ErrLeaseHeld))
	is.True(strings.Contains(err.Error(), "another coordinator is running"))
	is.True(strings.Contains(err.Error(), "someone else"))
	is.Equal(len(vs), 0)
	kept, err := z.inet.Verifications(ctx, "")
	is.NoErr(err)
	is.Equal(len(kept), 0) // nothing compared
	_, err = coord.Repair(ctx, []gapsync.TableVerify{{Table: "orders", Diffs: []gapsync.RowDiff{{Table: "orders", Key: []any{int64(10)}}}}})
	is.True(errors.Is(err, gapsync.ErrLeaseHeld))

	is.NoErr(z.inet.Release(ctx, "coordinator", "someone else"))
	vs, err = coord.Verify(ctx, nil, nil)
	is.NoErr(err)
	is.Equal(len(vs[0].Diffs), 4)
	// Given back: another coordinator takes it at once.
	is.NoErr(z.inet.Acquire(ctx, "coordinator", "someone else", time.Hour))
}
