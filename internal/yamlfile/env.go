package yamlfile

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Environment variables in values: `${NAME}` is replaced by the value of the
// variable NAME, in every scalar value of the file (never in keys, never in
// comments), before the value is checked against its type, so that
// `timeout: ${TIMEOUT}` is a duration and `"${PORT}"` (quoted) a string.
// Expansion is strict: a variable that is not set is a problem at the key
// where it is used (an empty one is a value like any other), and so is a
// `${` that does not name a variable. `$${` writes a literal `${`; any other
// `$` is left as it is. A variable's value is not expanded again, and never
// appears in a problem this package reports (they show what the file wrote,
// `the value of "${NAME}"`). A caller's own checks see decoded values and
// may quote one they refuse: Embedgate keeps secrets in files, never in
// the config or the policy.

// lookupEnv reads the environment; tests replace it.
var lookupEnv = os.LookupEnv

// expandEnv returns s with every ${NAME} replaced through lookup.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' { // $${: the escape of a literal ${
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ (write $${ for a literal ${)")
		}
		name := s[i+2 : i+2+end]
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s} does not name an environment variable (letters, digits and _, not starting with a digit; write $${ for a literal ${)", name)
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
		s = s[i+2+end+1:]
	}
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// expand expands the environment variables of scalar n, found at path; it
// reports a problem and returns false when it cannot.
func (c *checker) expand(n *yaml.Node, path string) bool {
	if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "${") {
		return true
	}
	v, err := expandEnv(n.Value, lookupEnv)
	if err != nil {
		c.add(path, n, "%v", err)
		return false
	}
	if c.expanded == nil {
		c.expanded = map[*yaml.Node]string{}
	}
	c.expanded[n] = n.Value
	n.Value = v
	if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = "" // a plain scalar: its type follows what it now says
	}
	return true
}
