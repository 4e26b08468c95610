// Package xfcc reads the caller's identity from the x-forwarded-client-cert
// (XFCC) header that an Envoy/Istio sidecar sets after terminating mTLS.
//
// In mesh mode Embedgate never sees the client certificate itself: the
// sidecar verifies it and describes it in XFCC. This package exists so that
// the one place deciding "who is calling" parses that header strictly and
// fails closed. It does not decide whether the immediate peer is a trusted
// sidecar; the server must only accept XFCC on a port reachable solely
// through the sidecar.
//
// Grammar (Envoy, configuration/http/http_conn_man/headers.rst): the value is
// a ','-separated list of elements, one per proxy hop, the newest last. An
// element is a ';'-separated list of Key=Value pairs with case-insensitive
// keys. A value containing ',', ';' or '=' is double-quoted, and inside quotes
// `\"` stands for a quote. Only `\"` is an escape: every other backslash is
// kept, because Subject is an RFC 2253 DN whose own escapes (`\,`) must
// survive. This parser is deliberately stricter than Envoy's output needs:
// it rejects whitespace around keys, bare values containing '"' or '=',
// control characters, and repeated single-valued keys, since an ambiguous
// header is more likely an attack than a sidecar.
package xfcc

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Limits that bound the work an unauthenticated header can cause. A real
// mesh has a handful of hops and, without Cert/Chain, a few hundred bytes per
// hop; 16 KiB also leaves room for one URL-encoded certificate.
const (
	maxHeaderLen = 16 << 10
	maxElements  = 32
)

// Sentinel errors, so that the server can map each outcome to a status code
// with errors.Is without parsing messages. Returned errors wrap them with
// detail.
var (
	// ErrMissing means the request carries no XFCC header: in mesh mode the
	// sidecar always sets one, so the request did not come through it.
	ErrMissing = errors.New("xfcc: header missing")
	// ErrMalformed means the header does not follow the XFCC grammar, is
	// over the size limits, or arrived as several values.
	ErrMalformed = errors.New("xfcc: header malformed")
	// ErrNotForUs means the last element was not appended by a proxy
	// holding our identity, so it may have been written by the client.
	ErrNotForUs = errors.New("xfcc: last element not added by our sidecar")
	// ErrNoIdentity means the last element does not name exactly one
	// SPIFFE workload ID for the client.
	ErrNoIdentity = errors.New("xfcc: no single SPIFFE identity for the caller")
)

// Element is one hop's entry: what the proxy at that hop saw of its client's
// certificate. Fields are empty (or nil) when the key is absent; unknown keys
// are skipped so newer Envoy details do not break parsing.
type Element struct {
	// By holds the URI SANs of the proxy's own certificate, i.e. the server
	// identity the client connected to; usually one.
	By []string
	// Hash is the hex SHA-256 of the client certificate, as sent.
	Hash string
	// Cert is the client certificate in PEM, URL-decoded.
	Cert string
	// Chain is the client certificate chain in PEM, URL-decoded.
	Chain string
	// Subject is the client certificate's subject DN, unquoted.
	Subject string
	// URI holds the client certificate's URI SANs; SPIFFE puts the
	// workload ID here.
	URI []string
	// DNS holds the client certificate's DNS SANs.
	DNS []string
}

// Parse splits an XFCC header value into its elements, oldest hop first.
//
// It fails with an error wrapping ErrMalformed on an unterminated quote, a
// pair without '=', an empty key, an empty pair or element (including a
// leading or trailing ',' or ';'), bad URL encoding in Cert or Chain, a
// repeated Hash, Cert, Chain or Subject, a control character, more than
// 16 KiB, or more than 32 elements. It runs in time linear in the input and
// never panics.
func Parse(header string) ([]Element, error) {
	if len(header) > maxHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrMalformed, len(header), maxHeaderLen)
	}
	p := parser{s: header}
	var elems []Element
	for {
		if len(elems) == maxElements {
			return nil, fmt.Errorf("%w: more than %d elements", ErrMalformed, maxElements)
		}
		e, err := p.element()
		if err != nil {
			return nil, err
		}
		elems = append(elems, e)
		if p.eof() {
			return elems, nil
		}
		p.i++ // element() stops only at end of input or ','.
	}
}

// Caller returns the SPIFFE ID of the client that connected to our sidecar.
//
// values are all the values of the x-forwarded-client-cert metadata key.
// Only the last element counts: our sidecar appends its own element at the
// end, and every earlier one was forwarded from upstream and may have been
// written by anyone. That element must have exactly one By, equal to self
// (this service's SPIFFE ID, compared as an exact string), and exactly one
// URI, which must be a SPIFFE ID with a non-empty path (a workload, not a
// trust domain).
//
// Several values are rejected with ErrMalformed rather than joined with ',':
// our sidecar sends one value, so several mean a client-supplied line got
// through beside it, and which line the sidecar appended to would be a
// guess; guessing wrong would let a client-written element pass as ours.
// No values gives ErrMissing; an empty value gives ErrMalformed. An invalid
// self is a configuration error and matches none of the sentinels.
func Caller(values []string, self string) (string, error) {
	if _, err := spiffeid.FromString(self); err != nil {
		return "", fmt.Errorf("xfcc: own ID %q is not a SPIFFE ID: %w", self, err)
	}
	switch len(values) {
	case 0:
		return "", ErrMissing
	case 1:
	default:
		return "", fmt.Errorf("%w: %d header values, want 1", ErrMalformed, len(values))
	}
	elems, err := Parse(values[0])
	if err != nil {
		return "", err
	}
	last := elems[len(elems)-1]
	if len(last.By) != 1 {
		return "", fmt.Errorf("%w: last element has %d By keys, want 1", ErrNotForUs, len(last.By))
	}
	if last.By[0] != self {
		return "", fmt.Errorf("%w: By is %s", ErrNotForUs, brief(last.By[0]))
	}
	if len(last.URI) != 1 {
		return "", fmt.Errorf("%w: last element has %d URI keys, want 1", ErrNoIdentity, len(last.URI))
	}
	id, err := spiffeid.FromString(last.URI[0])
	if err != nil {
		return "", fmt.Errorf("%w: URI %s: %v", ErrNoIdentity, brief(last.URI[0]), err)
	}
	if id.Path() == "" {
		return "", fmt.Errorf("%w: URI %s is a trust domain, not a workload", ErrNoIdentity, brief(last.URI[0]))
	}
	return id.String(), nil
}

// brief quotes an untrusted value for an error message, capped so that a
// hostile header cannot flood the logs.
func brief(s string) string {
	const limit = 128
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// parser is a cursor over the header; every method advances i and never
// moves it back, which keeps Parse linear.
type parser struct {
	s string
	i int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) errorf(at int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, at, fmt.Sprintf(format, args...))
}

// The keys Envoy defines; seen tracks the single-valued ones.
const (
	keyHash = 1 << iota
	keyCert
	keyChain
	keySubject
)

// element parses one element and stops at end of input or at the ','
// that ends it.
func (p *parser) element() (Element, error) {
	var e Element
	if p.eof() || p.s[p.i] == ',' {
		return e, p.errorf(p.i, "empty element")
	}
	seen := 0
	for {
		at := p.i
		key, val, err := p.pair()
		if err != nil {
			return e, err
		}
		if err := e.set(key, val, &seen); err != nil {
			return e, p.errorf(at, "%v", err)
		}
		if p.eof() || p.s[p.i] == ',' {
			return e, nil
		}
		p.i++ // pair() stops only at end of input, ',' or ';'.
	}
}

// pair parses Key=Value and stops at end of input, ',' or ';'.
func (p *parser) pair() (key, val string, err error) {
	start := p.i
	for !p.eof() && isTokenChar(p.s[p.i]) {
		p.i++
	}
	key = p.s[start:p.i]
	if p.eof() || p.s[p.i] != '=' {
		switch {
		case !p.eof() && !isSeparator(p.s[p.i]):
			return "", "", p.errorf(p.i, "unexpected %q in key", p.s[p.i])
		case key == "":
			return "", "", p.errorf(start, "empty pair")
		default:
			return "", "", p.errorf(start, "pair without '='")
		}
	}
	if key == "" {
		return "", "", p.errorf(start, "empty key")
	}
	p.i++ // '='
	if !p.eof() && p.s[p.i] == '"' {
		val, err = p.quoted()
	} else {
		val, err = p.bare()
	}
	if err != nil {
		return "", "", err
	}
	if !p.eof() && !isSeparator(p.s[p.i]) {
		return "", "", p.errorf(p.i, "unexpected %q after quoted value", p.s[p.i])
	}
	return key, val, nil
}

// quoted parses a double-quoted value, turning `\"` into '"'.
func (p *parser) quoted() (string, error) {
	start := p.i
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case c == '\\' && p.i+1 < len(p.s) && p.s[p.i+1] == '"':
			b.WriteByte('"')
			p.i += 2
		case c == '"':
			p.i++
			return b.String(), nil
		case isControl(c):
			return "", p.errorf(p.i, "control character %q in value", c)
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", p.errorf(start, "unterminated quoted value")
}

// bare parses an unquoted value. Envoy quotes any value holding ',', ';'
// or '=', so '=' or '"' here means the header was not written by Envoy.
func (p *parser) bare() (string, error) {
	start := p.i
	for ; !p.eof() && !isSeparator(p.s[p.i]); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"' || c == '=':
			return "", p.errorf(p.i, "unquoted %q in value", c)
		case isControl(c):
			return "", p.errorf(p.i, "control character %q in value", c)
		}
	}
	return p.s[start:p.i], nil
}

// set stores one pair, matching the key without regard to case.
func (e *Element) set(key, val string, seen *int) error {
	once := func(bit int, name string) error {
		if *seen&bit != 0 {
			return fmt.Errorf("repeated %s", name)
		}
		*seen |= bit
		return nil
	}
	var err error
	switch {
	case strings.EqualFold(key, "By"):
		e.By = append(e.By, val)
	case strings.EqualFold(key, "URI"):
		e.URI = append(e.URI, val)
	case strings.EqualFold(key, "DNS"):
		e.DNS = append(e.DNS, val)
	case strings.EqualFold(key, "Hash"):
		if err = once(keyHash, "Hash"); err == nil {
			e.Hash = val
		}
	case strings.EqualFold(key, "Subject"):
		if err = once(keySubject, "Subject"); err == nil {
			e.Subject = val
		}
	case strings.EqualFold(key, "Cert"):
		if err = once(keyCert, "Cert"); err == nil {
			e.Cert, err = unescape("Cert", val)
		}
	case strings.EqualFold(key, "Chain"):
		if err = once(keyChain, "Chain"); err == nil {
			e.Chain, err = unescape("Chain", val)
		}
	}
	return err
}

// unescape decodes a URL-encoded PEM. It uses path rules, not query rules,
// so a literal '+' of base64 stays a '+' instead of becoming a space.
func unescape(name, val string) (string, error) {
	s, err := url.PathUnescape(val)
	if err != nil {
		return "", fmt.Errorf("%s is not valid URL encoding", name)
	}
	return s, nil
}

func isSeparator(c byte) bool { return c == ',' || c == ';' }

func isControl(c byte) bool { return (c < 0x20 && c != '\t') || c == 0x7f }

// isTokenChar reports whether c may appear in a key: an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
