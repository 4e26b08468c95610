package emulator

import (
	"fmt"
	"strings"
	"unicode"
)

// An OData $filter, the subset Groups - Get Groups needs
// (learn.microsoft.com/rest/api/power-bi/groups/get-groups; the operators
// are those of "OData Version 4.01 Part 2: URL Conventions", section
// 5.1.1): eq and ne on a property, contains, startswith and endswith on a
// string property, and, or, not, and parentheses. Strings compare
// exactly, as OData says; property names match in any case.

// filter is a parsed $filter: true for the items it keeps.
type filter func(props map[string]any) bool

// parseFilter parses expr; an empty expr keeps everything.
func parseFilter(expr string) (filter, error) {
	if strings.TrimSpace(expr) == "" {
		return func(map[string]any) bool { return true }, nil
	}
	p := &filterParser{toks: tokenize(expr)}
	f, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos])
	}
	return f, nil
}

// tokenize splits a filter into words, quoted strings (kept with their
// quotes), parentheses and commas.
func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, string(c))
			i++
		case c == '\'':
			j := i + 1
			for j < len(s) {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' { // '' is a quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			toks = append(toks, s[i:min(j+1, len(s))])
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t(),'", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type filterParser struct {
	toks []string
	pos  int
}

func (p *filterParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *filterParser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *filterParser) expect(t string) error {
	if got := p.next(); got != t {
		return fmt.Errorf("expected %q, got %q", t, got)
	}
	return nil
}

func (p *filterParser) or() (filter, error) {
	left, err := p.and()
	for err == nil && strings.EqualFold(p.peek(), "or") {
		p.next()
		var right filter
		if right, err = p.and(); err == nil {
			l, r := left, right
			left = func(m map[string]any) bool { return l(m) || r(m) }
		}
	}
	return left, err
}

func (p *filterParser) and() (filter, error) {
	left, err := p.unary()
	for err == nil && strings.EqualFold(p.peek(), "and") {
		p.next()
		var right filter
		if right, err = p.unary(); err == nil {
			l, r := left, right
			left = func(m map[string]any) bool { return l(m) && r(m) }
		}
	}
	return left, err
}

func (p *filterParser) unary() (filter, error) {
	switch t := p.peek(); {
	case strings.EqualFold(t, "not"):
		p.next()
		f, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(m map[string]any) bool { return !f(m) }, nil
	case t == "(":
		p.next()
		f, err := p.or()
		if err == nil {
			err = p.expect(")")
		}
		return f, err
	case isStringFunc(t):
		return p.stringFunc()
	}
	return p.comparison()
}

func isStringFunc(t string) bool {
	switch strings.ToLower(t) {
	case "contains", "startswith", "endswith":
		return true
	}
	return false
}

// stringFunc is contains(prop,'s'), startswith(...) or endswith(...).
func (p *filterParser) stringFunc() (filter, error) {
	fn := strings.ToLower(p.next())
	if err := p.expect("("); err != nil {
		return nil, err
	}
	prop := p.next()
	if err := p.expect(","); err != nil {
		return nil, err
	}
	lit, err := literal(p.next())
	if err != nil {
		return nil, err
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	want, ok := lit.(string)
	if !ok {
		return nil, fmt.Errorf("%s needs a string", fn)
	}
	test := map[string]func(string, string) bool{
		"contains": strings.Contains, "startswith": strings.HasPrefix, "endswith": strings.HasSuffix,
	}[fn]
	return func(m map[string]any) bool {
		s, ok := property(m, prop).(string)
		return ok && test(s, want)
	}, nil
}

// comparison is prop eq literal or prop ne literal.
func (p *filterParser) comparison() (filter, error) {
	prop := p.next()
	if prop == "" || !isName(prop) {
		return nil, fmt.Errorf("expected a property, got %q", prop)
	}
	op := strings.ToLower(p.next())
	if op != "eq" && op != "ne" {
		return nil, fmt.Errorf("unsupported operator %q (use eq or ne)", op)
	}
	want, err := literal(p.next())
	if err != nil {
		return nil, err
	}
	return func(m map[string]any) bool {
		got := property(m, prop)
		if s, ok := got.(string); ok && isUUID(s) { // a guid compares in any case
			if w, ok := want.(string); ok {
				return strings.EqualFold(s, w) == (op == "eq")
			}
		}
		return (got == want) == (op == "eq")
	}, nil
}

func isName(t string) bool {
	for _, r := range t {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			return false
		}
	}
	return true
}

// literal reads 'string', true, false, null, or an unquoted guid.
func literal(t string) (any, error) {
	switch {
	case len(t) >= 2 && t[0] == '\'' && t[len(t)-1] == '\'':
		return strings.ReplaceAll(t[1:len(t)-1], "''", "'"), nil
	case strings.EqualFold(t, "true"):
		return true, nil
	case strings.EqualFold(t, "false"):
		return false, nil
	case strings.EqualFold(t, "null"):
		return nil, nil
	case isUUID(t):
		return t, nil
	}
	return nil, fmt.Errorf("unsupported literal %q", t)
}

// property reads a property in any case (nil when absent).
func property(m map[string]any, name string) any {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}
