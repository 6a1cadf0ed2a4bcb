package syncer

import (
	"errors"
	"testing"
	"time"
)

type cycles struct {
	noRecorder
	n   int
	err error
}

func (c *cycles) Cycle(_ string, _ time.Duration, err error) { c.n, c.err = c.n+1, err }

// A cycle that ended before it made a report (a panic on its way out, a
// refactoring that returns nil) is still recorded, as a failed cycle
// that moved nothing, instead of crashing the deferred call.
func TestRecordCycleNilReport(t *testing.T) {
	var c cycles
	boom := errors.New("boom")
	recordCycle(&c, nil, time.Second, boom)
	if c.n != 1 || c.err != boom {
		t.Fatalf("recorded %d cycles, err %v", c.n, c.err)
	}
}
