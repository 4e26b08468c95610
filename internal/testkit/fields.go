package testkit

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// EachFieldChanges changes every field of full(), one at a time, by
// reflection (down into structs, pointers, slices' first elements and maps'
// values; a slice also grows, a map gains a key, a pointer becomes nil) and
// fails on a change that leaves key(v) as it was: for keys that must cover
// every field of a type, so that a field added without a line in the key
// fails. full() must fill every field, so that each can be changed.
func EachFieldChanges[T any, K comparable](t testing.TB, full func() T, key func(T) K) {
	t.Helper()
	base := key(full())
	for _, m := range mutations(reflect.TypeFor[T](), reflect.TypeFor[T]().Name()) {
		v := full()
		if !m.apply(reflect.ValueOf(&v).Elem()) {
			t.Errorf("%s: full() leaves it empty; fill it so that it can be changed", m.path)
			continue
		}
		if key(v) == base {
			t.Errorf("changing %s leaves the key as it was", m.path)
		}
	}
}

// mutation changes one thing in a value, in place; false when the value
// has nothing there to change.
type mutation struct {
	path  string
	apply func(v reflect.Value) bool
}

func mutations(t reflect.Type, path string) []mutation {
	var out []mutation
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			for _, m := range mutations(t.Field(i).Type, path+"."+t.Field(i).Name) {
				out = append(out, mutation{m.path, func(v reflect.Value) bool { return m.apply(v.Field(i)) }})
			}
		}
	case reflect.Pointer:
		for _, m := range mutations(t.Elem(), path) {
			out = append(out, mutation{m.path, func(v reflect.Value) bool { return !v.IsNil() && m.apply(v.Elem()) }})
		}
		out = append(out, mutation{path + " (nil)", func(v reflect.Value) bool {
			if v.IsNil() {
				return false
			}
			v.SetZero()
			return true
		}})
	case reflect.Slice:
		for _, m := range mutations(t.Elem(), path+"[0]") {
			out = append(out, mutation{m.path, func(v reflect.Value) bool { return v.Len() > 0 && m.apply(v.Index(0)) }})
		}
		out = append(out, mutation{path + " (longer)", func(v reflect.Value) bool {
			if v.Len() == 0 {
				return false
			}
			v.Set(reflect.Append(v, v.Index(0)))
			return true
		}})
	case reflect.Map:
		first := func(v reflect.Value) (reflect.Value, bool) {
			keys := v.MapKeys()
			if len(keys) == 0 {
				return reflect.Value{}, false
			}
			slices.SortFunc(keys, func(a, b reflect.Value) int { return compare(fmt.Sprint(a), fmt.Sprint(b)) })
			return keys[0], true
		}
		for _, m := range mutations(t.Elem(), path+"[k]") {
			out = append(out, mutation{m.path, func(v reflect.Value) bool {
				k, ok := first(v)
				if !ok {
					return false
				}
				e := reflect.New(t.Elem()).Elem()
				e.Set(v.MapIndex(k))
				if !m.apply(e) {
					return false
				}
				v.SetMapIndex(k, e)
				return true
			}})
		}
		if t.Key().Kind() == reflect.String {
			out = append(out, mutation{path + " (one more key)", func(v reflect.Value) bool {
				k, ok := first(v)
				if !ok {
					return false
				}
				v.SetMapIndex(reflect.ValueOf(k.String()+"-more").Convert(t.Key()), v.MapIndex(k))
				return true
			}})
		}
	case reflect.String:
		out = append(out, mutation{path, func(v reflect.Value) bool { v.SetString(v.String() + "x"); return true }})
	case reflect.Bool:
		out = append(out, mutation{path, func(v reflect.Value) bool { v.SetBool(!v.Bool()); return true }})
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		out = append(out, mutation{path, func(v reflect.Value) bool { v.SetInt(v.Int() + 1); return true }})
	default:
		out = append(out, mutation{path + " (a " + t.Kind().String() + ": teach testkit.EachFieldChanges about it)", func(reflect.Value) bool { return false }})
	}
	return out
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
