package syncer

import (
	"errors"

	"github.com/gapsync/gapsync"
)

// IsRefusal reports whether err is a refusal by design: a file reference
// that names a path outside the store (traversal, an absolute path no
// prefix strips) or a URL outside the allowlist (SSRF). Such a reference
// is never fetched and never retried; it is logged, counted as "refused"
// and kept on its record, but it is not a failure of the cycle.
func IsRefusal(err error) bool {
	return err != nil && (errors.Is(err, gapsync.ErrBadPath) || errors.Is(err, gapsync.ErrForbiddenURL))
}

// splitRefusals separates the refusals by design in err (a tree of
// joined errors) from the failures, so that a cycle whose only errors are
// refusals counts as a success.
func splitRefusals(err error) (refused []error, failed error) {
	var fails []error
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		if IsRefusal(e) && !hasFailure(e) {
			refused = append(refused, e)
		} else {
			fails = append(fails, e)
		}
	}
	walk(err)
	return refused, errors.Join(fails...)
}

// hasFailure reports whether a joined error holds anything that is not a
// refusal, so that one refusal inside a join does not hide a failure
// beside it.
func hasFailure(e error) bool {
	if j, ok := e.(interface{ Unwrap() []error }); ok {
		for _, c := range j.Unwrap() {
			if c != nil && hasFailure(c) {
				return true
			}
		}
		return false
	}
	if u := errors.Unwrap(e); u != nil {
		return hasFailure(u)
	}
	return !IsRefusal(e)
}
