package yamlfile

import (
	"bytes"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Decoding in pieces. yaml.v3 builds the node tree of a whole document
// before anything can be checked: about twenty times the file's size in
// memory (130 MB for a 10,000-tenant policy of 6 MB), on top of the policy
// being replaced. A file laid out the usual way, top-level keys at column 0
// and, under a key whose Go type is a map, entries at a common indentation,
// is cut at those lines into pieces of about pieceBytes, and each piece is
// parsed, checked and decoded on its own, so that only one piece's tree is
// alive at a time.
//
// The cut is made on the text, so it must never change what the file means.
// Lines that end a piece are ones no YAML construct can continue: block
// scalars and plain scalars continue only on lines indented further than
// their mapping, and a quoted scalar or flow collection cut in two leaves a
// piece that does not parse. Anything else the cutter does not know (line
// breaks other than \n and \r\n, document markers, directives, tabs, keys
// it cannot read, a line between the two indentations, an alias to an
// anchor in another piece, a key repeated across pieces, a piece that does
// not parse or holds other keys than the lines said) and the whole file is
// decoded as one tree instead, which reports every problem as before.
// TestPiecesAgreeWithWhole and FuzzPieces hold the two ways to the same
// result.

// pieceBytes is about the most YAML one piece holds: its node tree is about
// twenty times that. A piece takes whole entries of a section, as many as
// fit; fewer, larger pieces parse faster.
const pieceBytes = 64 << 10

// piece is a part of the file that parses on its own: a top-level key with
// its value, or entries of a map-typed top-level key (whose own piece is
// then its header line).
type piece struct {
	text []byte
	line int // the file's line number of text's first line
	// section is, for an entry, the top-level key it belongs to; "" for a
	// top-level piece.
	section string
	// keys is how many keys the piece holds: 1 for a top-level piece.
	keys int
	// header is, for the header line of a cut section, its key.
	header string
	// entries is, for the header of a cut section, how many entries follow.
	entries int
}

// cut splits data into pieces along its layout, or returns false when the
// file is not laid out in a way cut knows: it must then be decoded whole.
// t is the struct type the file decodes into; its map-typed fields are the
// sections cut into entries.
func cut(data []byte, t reflect.Type) ([]piece, bool) {
	if otherBreaks(data) {
		return nil, false
	}
	var (
		pieces  []piece
		starts  []int  // offset in data of each piece's first line
		header  = -1   // index of the current cut section's header piece, or -1
		indent  int    // the indentation of its entries; 0 until the first
		section string // the current cut section's key
	)
	begin := func(off, line int, section string) {
		if len(pieces) == 0 {
			// The first piece takes the lines before it too (comments, the
			// document's start marker): every byte is parsed, and judged.
			off, line = 0, 1
		}
		pieces = append(pieces, piece{line: line, section: section, keys: 1})
		starts = append(starts, off)
	}
	line := 0
	for off, next := 0, 0; off < len(data); off = next {
		line++
		next = len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		text := bytes.TrimRight(data[off:next], "\r\n")
		col := 0
		for col < len(text) && text[col] == ' ' {
			col++
		}
		rest := text[col:]
		switch {
		case len(bytes.Trim(rest, " \t")) == 0 || rest[0] == '#':
			// A blank line or a comment belongs to the piece before it.
		case rest[0] == '\t':
			return nil, false // a tab where indentation ends: the parser's to judge
		case col == 0 && len(pieces) == 0 && isStartMarker(rest):
			// The document's start marker.
		case col == 0 && isSequenceEntry(rest) && len(pieces) > 0 && header < 0:
			// A list written at the key's own indentation: the value of the
			// key before it.
		case col == 0:
			if !keyStart(rest[0]) {
				return nil, false
			}
			begin(off, line, "")
			header, indent = -1, 0
			if name, ok := blockKey(rest); ok && isMapField(t, name) {
				header, section = len(pieces)-1, name
				pieces[header].header = name
			}
		case len(pieces) == 0:
			return nil, false // an indented document
		case header < 0:
			// Inside a top-level piece.
		case indent == 0 || col == indent:
			if !keyStart(rest[0]) {
				return nil, false
			}
			indent = col
			pieces[header].entries++
			if last := len(pieces) - 1; last != header && off-starts[last] < pieceBytes {
				pieces[last].keys++
				break // the piece takes entries up to its size
			}
			begin(off, line, section)
		case col < indent:
			return nil, false
		}
	}
	for i := range pieces {
		end := len(data)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		pieces[i].text = data[starts[i]:end]
	}
	return pieces, len(pieces) > 0
}

// otherBreaks reports whether data holds a line break that the parser
// reads as one and cut does not: a \r not followed by \n, NEL, LS or PS.
func otherBreaks(data []byte) bool {
	return bytes.Count(data, []byte("\r")) != bytes.Count(data, []byte("\r\n")) ||
		bytes.Contains(data, []byte("\u0085")) || bytes.Contains(data, []byte("\u2028")) || bytes.Contains(data, []byte("\u2029"))
}

// isStartMarker reports whether line is the document's start marker, ---,
// and nothing else but a comment.
func isStartMarker(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	return ok && onlyComment(rest)
}

// onlyComment reports whether s holds nothing but blanks and an optional
// comment that a blank separates from what came before.
func onlyComment(s []byte) bool {
	t := bytes.TrimLeft(s, " \t")
	return len(t) == 0 || (t[0] == '#' && len(t) < len(s))
}

// isSequenceEntry reports whether line starts a block list's entry.
func isSequenceEntry(line []byte) bool {
	return line[0] == '-' && (len(line) == 1 || line[1] == ' ' || line[1] == '\t')
}

// keyStart reports whether c may start a key cut knows how to read: a plain
// word or a quoted scalar, never an indicator (-, ?, :, [, {, &, *, !, |, >,
// %, @, `, <<) or a document marker.
func keyStart(c byte) bool {
	return c == '"' || c == '\'' || isWordByte(c)
}

// isWordByte reports whether c is an ASCII letter, digit or _.
func isWordByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// blockKey returns the name of a line that is only a plain key, `name:` and
// an optional comment, whose value is the indented block below it.
func blockKey(line []byte) (string, bool) {
	i := 0
	for i < len(line) && isWordByte(line[i]) {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' {
		return "", false
	}
	if rest := line[i+1:]; len(rest) > 0 && !onlyComment(rest) {
		return "", false
	}
	return string(line[:i]), true
}

// isMapField reports whether struct t has a map-typed field of yaml key name.
func isMapField(t reflect.Type, name string) bool {
	ft, ok := yamlField(t, name)
	return ok && ft.Kind() == reflect.Map
}

// decodePieces decodes data into v piece by piece. done is false when it
// cannot (see cut); v is then partly filled, and must be reset and data
// decoded whole.
func decodePieces(data []byte, v reflect.Value) (problems []Problem, done bool) {
	pieces, ok := cut(data, v.Type())
	if !ok {
		return nil, false
	}
	var (
		c       checker
		d       = decoder{budget: 10_000}
		keys    = map[string]bool{} // the top-level keys seen
		entries map[string]bool     // the current section's keys seen
		section reflect.Value       // the current section's map
	)
	for _, p := range pieces {
		root, ok := parsePiece(p)
		if !ok {
			return nil, false
		}
		if p.header != "" && (root.Content[0].Value != p.header || !isNull(root.Content[1])) {
			return nil, false // a header line whose value is not the entries below it
		}
		target, t, path, seen := v, v.Type(), "", keys
		if p.section != "" {
			target, t, path, seen = section, section.Type(), p.section, entries
		}
		for i := 0; i < len(root.Content); i += 2 {
			key := root.Content[i].Value
			if seen[key] {
				return nil, false // the whole file's walk reports it, with both lines
			}
			seen[key] = true
		}
		walked := c.nodes
		c.expanded = nil // holds nodes of the piece before
		c.mapping(root, path, t)
		// The same bound on aliases as for the whole file, piece by piece:
		// the nodes walked, and the piece's root, as the whole walk counts it.
		d.budget += 4 * (c.nodes - walked + 1)
		if err := d.decode(root, target); err != nil {
			return nil, false
		}
		if p.entries > 0 {
			// The count of lines is only a hint: a file of lines that look
			// like entries may be nothing of the kind.
			hint := min(p.entries, 1<<12)
			i, _ := fieldIndex(v.Type(), p.header)
			section, entries = v.Field(i), make(map[string]bool, hint)
			if section.IsNil() {
				section.Set(reflect.MakeMapWithSize(section.Type(), hint))
			}
		}
	}
	return c.problems, true
}

// parsePiece parses one piece, which must be a mapping of as many scalar
// keys as the lines cut found them on, and numbers its nodes' lines as in
// the whole file.
func parsePiece(p piece) (*yaml.Node, bool) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(p.text)).Decode(&doc); err != nil {
		return nil, false
	}
	if len(doc.Content) != 1 {
		return nil, false
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode || len(root.Content) != 2*p.keys {
		return nil, false
	}
	for i := 0; i < len(root.Content); i += 2 {
		if root.Content[i].Kind != yaml.ScalarNode {
			return nil, false
		}
	}
	shiftLines(root, p.line-1)
	return root, true
}

// shiftLines adds delta to the line of n and of every node under it.
func shiftLines(n *yaml.Node, delta int) {
	n.Line += delta
	for _, c := range n.Content {
		shiftLines(c, delta)
	}
}
