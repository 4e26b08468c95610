package yamlfile

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// errAliasing stops a document whose aliases expand far beyond its size (a
// "billion laughs"), as yaml.v3's own decoder does.
var errAliasing = errors.New("document contains excessive aliasing")

// decoder fills a Go value from a node tree the checker has cleaned: every
// key known and unique, every scalar of a type that fits. yaml.v3's decoder
// would check each mapping's keys for duplicates again, in time quadratic in
// their number (a 10,000-tenant policy spent most of a second there); this
// walk is linear and leaves each scalar to yaml.v3.
type decoder struct {
	budget int // nodes left to visit, aliases expanded
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value) error {
	if d.budget--; d.budget < 0 {
		return errAliasing
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return d.decode(n.Content[0], v)
	case yaml.AliasNode:
		return d.decode(n.Alias, v)
	}
	if isNull(n) {
		v.SetZero()
		return nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(n, v.Elem())
	}
	if scalarType(v.Type()) || v.Kind() == reflect.Interface {
		if v.Kind() == reflect.String && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			v.SetString(n.Value)
			return nil
		}
		return n.Decode(v.Addr().Interface())
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.mapping(n, v, func(k *yaml.Node) (reflect.Value, error) {
			i, ok := fieldIndex(v.Type(), k.Value)
			if !ok {
				return reflect.Value{}, fmt.Errorf("line %d: unknown key %q", k.Line, k.Value)
			}
			return v.Field(i), nil
		}, nil)
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
		}
		t := v.Type()
		return d.mapping(n, v, func(*yaml.Node) (reflect.Value, error) {
			return reflect.New(t.Elem()).Elem(), nil
		}, func(k *yaml.Node, e reflect.Value) error {
			key := reflect.New(t.Key()).Elem()
			if err := d.decode(k, key); err != nil {
				return err
			}
			v.SetMapIndex(key, e)
			return nil
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("line %d: want a list", n.Line)
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, child := range n.Content {
			if err := d.decode(child, s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	}
	return fmt.Errorf("line %d: cannot decode into %s", n.Line, v.Type())
}

// mapping decodes the entries of a mapping node: slot gives the value to
// fill for a key, and store (for maps) keeps it. Merge keys (`<<: *anchor`,
// or a list of anchors) are applied first, so that the mapping's own keys
// win, as in yaml.v3.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, slot func(k *yaml.Node) (reflect.Value, error), store func(k *yaml.Node, e reflect.Value) error) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping", n.Line)
	}
	for pass := range 2 {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if merge := k.ShortTag() == "!!merge"; merge != (pass == 0) {
				continue
			} else if merge {
				sources := []*yaml.Node{val}
				if val.Kind == yaml.SequenceNode {
					sources = val.Content
				}
				for _, src := range sources {
					if err := d.decode(src, v); err != nil {
						return err
					}
				}
				continue
			}
			e, err := slot(k)
			if err != nil {
				return err
			}
			if err := d.decode(val, e); err != nil {
				return err
			}
			if store != nil {
				if err := store(k, e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fieldIndex returns the index of struct t's field whose yaml key is name.
func fieldIndex(t reflect.Type, name string) (int, bool) {
	i, ok := fieldsOf(t)[name]
	return i, ok
}

// fieldIndexes caches fieldsOf: a policy asks for the same few struct types'
// fields once per key of every tenant.
var fieldIndexes sync.Map // reflect.Type -> map[string]int

// fieldsOf maps each yaml key of struct t to its field's index.
func fieldsOf(t reflect.Type) map[string]int {
	if m, ok := fieldIndexes.Load(t); ok {
		return m.(map[string]int)
	}
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			m[tag] = i
		}
	}
	fieldIndexes.Store(t, m)
	return m
}
