package authz

import "strings"

// template is a validated username or custom_data template, split once at
// load time into literal parts and placeholders, so that expanding it for a
// request is one pass over the parts: no replacer built per request, and a
// user string containing "{tenant}" is never re-expanded.
type template struct {
	parts []part
}

// part is a literal, or a placeholder (user or tenant).
type part struct {
	lit          string
	user, tenant bool
}

// parseTemplate splits a template that checkTemplate accepted.
func parseTemplate(s string) template {
	var t template
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t.parts = append(t.parts, part{lit: s})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: s[:i]})
		}
		switch {
		case strings.HasPrefix(s[i:], "{user}"):
			t.parts = append(t.parts, part{user: true})
			s = s[i+len("{user}"):]
		case strings.HasPrefix(s[i:], "{tenant}"):
			t.parts = append(t.parts, part{tenant: true})
			s = s[i+len("{tenant}"):]
		default: // not reached for a validated template; kept literal
			t.parts = append(t.parts, part{lit: s[i : i+1]})
			s = s[i+1:]
		}
	}
	return t
}

// expand fills the template for one request.
func (t template) expand(user, tenant string) string {
	if len(t.parts) == 1 && t.parts[0].user {
		return user // the common "{user}"
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case p.user:
			b.WriteString(user)
		case p.tenant:
			b.WriteString(tenant)
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String()
}
