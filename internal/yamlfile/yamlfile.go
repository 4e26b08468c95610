// Package yamlfile reads the YAML files Embedgate is configured with (the
// server config and the policy) strictly, and names every problem by the key
// path where it sits, so that an operator fixes a file in one round trip.
//
// Decoding is as strict as yaml.v3's KnownFields, but done on the node tree
// against the Go type the file decodes into: unknown keys, duplicate keys and
// values of the wrong type are each reported with their full key path
// (`tenants.acme.rls.roles[2]`) and line, in messages of our own. A bad
// value is left out and the rest of the file is still decoded, so that the
// caller's semantic validation can report its own problems in the same run.
// Values may name environment variables, `${NAME}`, expanded strictly (see
// env.go), so that the config and the policy take what a platform injects.
// A file that may be large (the policy) is read with DecodeLarge, piece by
// piece where its layout allows (pieces.go), never as one node tree.
// Problem is also the type every config validation in Embedgate returns.
package yamlfile

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a config or policy file, located by its key
// so an operator can find it: `tenants.acme.rls.roles[2]`, `powerbi.client_id`.
// Key is empty only for problems of the file as a whole (a YAML syntax error).
type Problem struct {
	// Key is the dotted path of the offending entry, with [i] for list items.
	Key string
	// Message says what is wrong and, for problems found while decoding, on
	// which line.
	Message string
}

// String renders the problem as `key: message`.
func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// Prefixed returns ps with prefix and a dot put before each key, for a file
// embedded under a key of another (the powerbi block of the server config).
func Prefixed(prefix string, ps []Problem) []Problem {
	out := make([]Problem, len(ps))
	for i, p := range ps {
		out[i] = p
		switch {
		case p.Key == "":
			out[i].Key = prefix
		default:
			out[i].Key = prefix + "." + p.Key
		}
	}
	return out
}

// Decode strictly decodes data, one YAML document, into v (a pointer to a
// struct). It reports every problem it finds; ok is false when the file is
// not YAML at all, and nothing in v can be trusted then. When ok is true, v
// holds every value that decoded, and the keys of the problems are the
// values left out. An empty file decodes to the zero value. v may hold
// defaults: a key the file leaves out keeps its value.
func Decode(data []byte, v any) (problems []Problem, ok bool) {
	return decodeWhole(data, v)
}

// DecodeLarge is Decode for a file that may be large (the policy), into a
// zero value. It reads a file laid out the usual way in pieces (pieces.go),
// with the same result as Decode but a fraction of its memory, and says so:
// inPieces is false when the file was read as one node tree, which holds
// about twenty times the file's size while it is decoded.
func DecodeLarge(data []byte, v any) (problems []Problem, ok, inPieces bool) {
	if rv := reflect.ValueOf(v).Elem(); rv.IsZero() {
		if problems, done := decodePieces(data, rv); done {
			return problems, true, true
		}
		rv.SetZero() // what the pieces decoded before they gave up
	}
	problems, ok = decodeWhole(data, v)
	return problems, ok, false
}

// decodeWhole decodes data as one node tree.
func decodeWhole(data []byte, v any) (problems []Problem, ok bool) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	switch err := dec.Decode(&root); {
	case errors.Is(err, io.EOF):
		return nil, true
	case err != nil:
		return []Problem{{Message: err.Error()}}, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		msg := "only one YAML document is allowed"
		if err != nil {
			msg = err.Error()
		}
		problems = append(problems, Problem{Message: msg})
	}
	c := checker{}
	c.walk(&root, "", reflect.TypeOf(v).Elem())
	problems = append(problems, c.problems...)
	// Aliases may repeat what they name, within bounds: a document may
	// expand to a few times its own nodes, not to billions.
	d := decoder{budget: 4*c.nodes + 10_000}
	if err := d.decode(&root, reflect.ValueOf(v).Elem()); err != nil {
		// The walk removed every node it found a problem in, so this is
		// what it could not foresee (excessive aliasing, for example):
		// nothing decoded can be trusted.
		return append(problems, Problem{Message: err.Error()}), false
	}
	return problems, true
}

// checker walks the node tree against the Go type it decodes into.
type checker struct {
	problems []Problem
	nodes    int // nodes walked, aliases not followed
	// expanded holds, for each value that named environment variables,
	// what the file said: a problem shows that, never the value.
	expanded map[*yaml.Node]string
}

func (c *checker) add(path string, n *yaml.Node, format string, args ...any) {
	c.problems = append(c.problems, Problem{Key: path, Message: fmt.Sprintf(format, args...) + fmt.Sprintf(" (line %d)", n.Line)})
}

// walk checks n, found at path, against t. It drops from the tree every
// entry it reports, so that the final decode sees only good values. Aliases
// are not followed: their anchor is checked where it is defined, and the
// decoder bounds alias expansion.
func (c *checker) walk(n *yaml.Node, path string, t reflect.Type) (keep bool) {
	c.nodes++
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, child := range n.Content {
			c.walk(child, path, t)
		}
		return true
	case yaml.AliasNode:
		return true
	}
	if !c.expand(n, path) {
		return false
	}
	if isNull(n) {
		return true // leaves the zero value, like an absent key
	}
	if scalarType(t) {
		return c.scalar(n, path, t)
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(path, n, "want a mapping of keys to values, got %s", c.describe(n))
			return false
		}
		c.mapping(n, path, t)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(path, n, "want a list, got %s", c.describe(n))
			return false
		}
		kept := n.Content[:0:0]
		for i, child := range n.Content {
			if c.walk(child, path+"["+strconv.Itoa(i)+"]", t.Elem()) {
				kept = append(kept, child)
			}
		}
		n.Content = kept
	}
	return true
}

// mapping checks the keys of a mapping node against a struct's yaml tags
// (unknown keys) or a map's key type, and each value against its type.
func (c *checker) mapping(n *yaml.Node, path string, t reflect.Type) {
	first := map[string]int{}
	kept := n.Content[:0:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := k.Value
		if path != "" {
			p = path + "." + k.Value
		}
		if line, dup := first[k.Value]; dup {
			c.add(p, k, "duplicate key (first at line %d)", line)
			continue
		}
		first[k.Value] = k.Line
		if k.ShortTag() == "!!merge" {
			kept = append(kept, k, v) // `<<: *anchor` merges keys checked where the anchor is defined
			continue
		}
		var vt reflect.Type
		switch t.Kind() {
		case reflect.Struct:
			ft, ok := yamlField(t, k.Value)
			if !ok {
				c.add(p, k, "unknown key")
				continue
			}
			vt = ft
		case reflect.Map:
			vt = t.Elem()
		}
		if c.walk(v, p, vt) {
			kept = append(kept, k, v)
		}
	}
	n.Content = kept
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// scalarType reports whether values of t are written as one YAML scalar.
func scalarType(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textType) {
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// scalar decodes one leaf on its own, so that a wrong type is reported at
// its key, in words, instead of in the decoder's summary.
func (c *checker) scalar(n *yaml.Node, path string, t reflect.Type) bool {
	if n.Kind != yaml.ScalarNode {
		c.add(path, n, "want %s, got %s", describeType(t), c.describe(n))
		return false
	}
	if t.Kind() == reflect.String && n.ShortTag() != "!!binary" {
		return true // any scalar reads as its text
	}
	if !tagFits(n.ShortTag(), t) {
		c.add(path, n, "want %s, got %s", describeType(t), c.describe(n))
		return false
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		c.add(path, n, "want %s, got %s", describeType(t), c.describe(n))
		return false
	}
	return true
}

// tagFits reports whether a scalar of the given resolved tag may fill a value
// of t: the decoder would turn 1.5 into the integer 1, or "yes" into nothing.
func tagFits(tag string, t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool:
		return tag == "!!bool"
	case reflect.Float32, reflect.Float64:
		return tag == "!!int" || tag == "!!float"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return tag == "!!int" || t == durationType
	}
	return true
}

// yamlField returns the type of struct t's field whose yaml key is name.
func yamlField(t reflect.Type, name string) (reflect.Type, bool) {
	i, ok := fieldIndex(t, name)
	if !ok {
		return nil, false
	}
	return t.Field(i).Type, true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describeType says in words what a value of t looks like.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 30s or 5m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	}
	return "a single value"
}

// describe says in words what the file holds: for a value that named
// environment variables, what the file wrote, not what they held.
func (c *checker) describe(n *yaml.Node) string {
	if orig, ok := c.expanded[n]; ok {
		return "the value of " + strconv.Quote(orig)
	}
	return describeNode(n)
}

// describeNode says in words what the file holds.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}
