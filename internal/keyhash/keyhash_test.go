package keyhash

import (
	"bytes"
	"slices"
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

func TestSortedKeys(t *testing.T) { // not parallel: AllocsPerRun
	m := map[string][]string{"d": nil, "a": {"x"}, "c": {}, "b": nil}
	if got := SortedKeys([]string{"kept"}, m); !slices.Equal(got, []string{"kept", "a", "b", "c", "d"}) {
		t.Errorf("SortedKeys = %q, want kept then a to d", got)
	}
	if got := SortedKeys(nil, map[string]int(nil)); len(got) != 0 {
		t.Errorf("SortedKeys of nil = %q, want none", got)
	}
	// The point of it: a small map's keys, sorted on the caller's stack.
	if allocs := testing.AllocsPerRun(100, func() {
		var keys [8]string
		if len(SortedKeys(keys[:0], m)) != 4 {
			t.Fatal("lost a key")
		}
	}); allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}
