package keyhash

import (
	"bytes"
	"testing"
)

// TestNoTwoSequencesAlike: values that concatenate alike, or lists that
// differ only by nil versus empty, encode apart.
func TestNoTwoSequencesAlike(t *testing.T) {
	t.Parallel()
	pairs := [][2][]byte{
		{Str(Str(nil, "ab"), "c"), Str(Str(nil, "a"), "bc")},
		{Strs(nil, nil), Strs(nil, []string{})},
		{Strs(nil, []string{"a", "b"}), Strs(nil, []string{"ab"})},
		{Bool(nil, true), Bool(nil, false)},
		{Int(nil, -1), Int(nil, 1)},
		{Str(nil, ""), Strs(nil, nil)},
	}
	for i, p := range pairs {
		if bytes.Equal(p[0], p[1]) {
			t.Errorf("pair %d encodes alike: %x", i, p[0])
		}
	}
}
