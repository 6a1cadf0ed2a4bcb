package syncer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

func TestSplitRefusals(t *testing.T) {
	is := is.New(t)
	bad := fmt.Errorf("stage ../x: %w", gapsync.ErrBadPath)
	ssrf := fmt.Errorf("stage http://169.254.169.254/: %w", gapsync.ErrForbiddenURL)
	down := errors.New("store: connection refused")

	refused, failed := splitRefusals(errors.Join(bad, nil, errors.Join(ssrf)))
	is.NoErr(failed) // only refusals: not a failure
	is.Equal(len(refused), 2)

	refused, failed = splitRefusals(errors.Join(bad, down))
	is.True(errors.Is(failed, down))
	is.True(!errors.Is(failed, gapsync.ErrBadPath))
	is.Equal(len(refused), 1)

	// A wrapped join that mixes both is kept whole as a failure.
	refused, failed = splitRefusals(fmt.Errorf("files: %w", errors.Join(bad, down)))
	is.True(errors.Is(failed, down))
	is.Equal(len(refused), 0)

	refused, failed = splitRefusals(nil)
	is.NoErr(failed)
	is.Equal(len(refused), 0)
}
