// Package keyhash encodes values for cache keys: each written with its
// length (or a marker), so that no two sequences of values encode alike,
// to be hashed by the caller. The functions append to a byte slice the
// caller owns, so that a key built in a stack buffer allocates nothing.
package keyhash

import (
	"encoding/binary"
	"slices"
)

// Int appends v.
func Int(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// Str appends s, with its length.
func Str(b []byte, s string) []byte { return append(Int(b, int64(len(s))), s...) }

// Bool appends v.
func Bool(b []byte, v bool) []byte {
	if v {
		return Int(b, 1)
	}
	return Int(b, 0)
}

// Strs appends a list, telling nil from empty.
func Strs(b []byte, s []string) []byte {
	if s == nil {
		return Int(b, -1)
	}
	b = Int(b, int64(len(s)))
	for _, v := range s {
		b = Str(b, v)
	}
	return b
}

// SortedKeys appends m's keys to dst, in order, to write a map's entries in
// an order that does not depend on the map. With a dst on the caller's
// stack it allocates nothing for a small map, where
// slices.Sorted(maps.Keys(m)) allocates even for an empty one: keys are
// built on every call of the cached path.
func SortedKeys[M ~map[string]V, V any](dst []string, m M) []string {
	n := len(dst)
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst[n:])
	return dst
}
