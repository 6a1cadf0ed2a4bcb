package storage

// SetTombstoneMark changes the tombstone trigger's definition (a comment
// in its body), as a new release or a changed table would, and returns a
// function that restores it.
func SetTombstoneMark(m string) (restore func()) {
	old := tombstoneMark
	tombstoneMark = m
	return func() { tombstoneMark = old }
}
