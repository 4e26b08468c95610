package xfcc_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/server/xfcc"
)

// Header shapes from Envoy's documentation (headers.rst) and Istio.
const (
	hashA = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"
	hashB = "9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e"

	envoySingle = `By=http://frontend.lyft.com;Hash=` + hashA +
		`;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`
	envoyMultiHop = `By=http://frontend.lyft.com;Hash=` + hashA + `;URI=http://testclient.lyft.com,` +
		`By=http://backend.lyft.com;Hash=` + hashB + `;URI=http://frontend.lyft.com`
	envoyDNS  = envoySingle + `;DNS=lyft.com;DNS=www.lyft.com`
	envoyCert = `By=http://frontend.lyft.com;Hash=` + hashA +
		`;Cert="-----BEGIN%20CERTIFICATE-----%0AMIID+abc/def%3D%0A-----END%20CERTIFICATE-----%0A"` +
		`;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`

	self     = "spiffe://cluster.local/ns/pbi/sa/embedgate"
	frontend = "spiffe://cluster.local/ns/web/sa/frontend"
	istio    = `By=` + self + `;Hash=` + hashA + `;Subject="";URI=` + frontend
)

const lyftSubject = "/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client"

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
		want   []xfcc.Element
	}{
		{
			name:   "envoy single",
			header: envoySingle,
			want: []xfcc.Element{{
				By: []string{"http://frontend.lyft.com"}, Hash: hashA,
				Subject: lyftSubject, URI: []string{"http://testclient.lyft.com"},
			}},
		},
		{
			name:   "envoy multi-hop keeps hop order",
			header: envoyMultiHop,
			want: []xfcc.Element{
				{By: []string{"http://frontend.lyft.com"}, Hash: hashA, URI: []string{"http://testclient.lyft.com"}},
				{By: []string{"http://backend.lyft.com"}, Hash: hashB, URI: []string{"http://frontend.lyft.com"}},
			},
		},
		{
			name:   "envoy repeated DNS",
			header: envoyDNS,
			want: []xfcc.Element{{
				By: []string{"http://frontend.lyft.com"}, Hash: hashA, Subject: lyftSubject,
				URI: []string{"http://testclient.lyft.com"}, DNS: []string{"lyft.com", "www.lyft.com"},
			}},
		},
		{
			name:   "envoy URL-encoded Cert keeps literal plus",
			header: envoyCert,
			want: []xfcc.Element{{
				By: []string{"http://frontend.lyft.com"}, Hash: hashA,
				Cert:    "-----BEGIN CERTIFICATE-----\nMIID+abc/def=\n-----END CERTIFICATE-----\n",
				Subject: lyftSubject, URI: []string{"http://testclient.lyft.com"},
			}},
		},
		{
			name:   "Chain is URL-decoded too",
			header: `Chain="a%20b%0Ac";URI=x`,
			want:   []xfcc.Element{{Chain: "a b\nc", URI: []string{"x"}}},
		},
		{
			name:   "istio inbound with empty Subject",
			header: istio,
			want: []xfcc.Element{{
				By: []string{self}, Hash: hashA, URI: []string{frontend},
			}},
		},
		{
			name:   "quoted Subject holding comma semicolon equals",
			header: `By=a;Subject="CN=x,O=y;OU=z";URI=u`,
			want:   []xfcc.Element{{By: []string{"a"}, Subject: "CN=x,O=y;OU=z", URI: []string{"u"}}},
		},
		{
			name:   "escaped quotes inside quotes",
			header: `Subject="CN=\"quoted\" name";URI=u`,
			want:   []xfcc.Element{{Subject: `CN="quoted" name`, URI: []string{"u"}}},
		},
		{
			name:   "other backslashes are kept for DN escapes",
			header: `Subject="CN=a\,b\\c";URI=u`,
			want:   []xfcc.Element{{Subject: `CN=a\,b\\c`, URI: []string{"u"}}},
		},
		{
			name:   "escaped backslash before escaped quote",
			header: `Subject="a\\"b"`,
			want:   []xfcc.Element{{Subject: `a\"b`}},
		},
		{
			name:   "keys are case-insensitive",
			header: `by=a;HASH=h;subject="s";uri=u;Dns=d;cErT="c"`,
			want: []xfcc.Element{{
				By: []string{"a"}, Hash: "h", Cert: "c", Subject: "s", URI: []string{"u"}, DNS: []string{"d"},
			}},
		},
		{
			name:   "unknown keys are skipped",
			header: `By=a;Future="x,y";Future=z;URI=u`,
			want:   []xfcc.Element{{By: []string{"a"}, URI: []string{"u"}}},
		},
		{
			name:   "element of unknown keys only",
			header: `Future=1`,
			want:   []xfcc.Element{{}},
		},
		{
			name:   "empty values",
			header: `By=;URI=""`,
			want:   []xfcc.Element{{By: []string{""}, URI: []string{""}}},
		},
		{
			name:   "two By and two URI are kept",
			header: `By=a;By=b;URI=u;URI=v`,
			want:   []xfcc.Element{{By: []string{"a", "b"}, URI: []string{"u", "v"}}},
		},
		{
			name:   "32 elements",
			header: strings.Repeat("URI=u,", 31) + "URI=u",
			want:   repeat(xfcc.Element{URI: []string{"u"}}, 32),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := xfcc.Parse(tt.header)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.header, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.header, diff)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
	}{
		{"empty header", ""},
		{"unterminated quote", `By=a;Subject="CN=x,URI=u`},
		{"escaped quote never closed", `Subject="abc\"`},
		{"pair without equals", `By=a;URI`},
		{"empty key", `=a`},
		{"empty pair", `By=a;;URI=u`},
		{"trailing semicolon", `By=a;`},
		{"trailing comma", `By=a,`},
		{"leading comma", `,By=a`},
		{"empty element between", `By=a,,By=b`},
		{"garbage", `!!!`},
		{"space around key", `By=a; URI=u`},
		{"space after comma", `By=a, By=b`},
		{"quote in key", `"By"=a`},
		{"junk after quoted value", `Subject="x"y;URI=u`},
		{"quote inside bare value", `URI=a"b`},
		{"equals inside bare value", `URI=spiffe://td/a=b`},
		{"control character", "URI=a\nb"},
		{"NUL in quoted value", "Subject=\"a\x00\""},
		{"bad URL encoding in Cert", `Cert="%ZZ"`},
		{"truncated URL encoding in Chain", `Chain="abc%4"`},
		{"repeated Hash", `Hash=a;Hash=b`},
		{"repeated Subject any case", `Subject="a";SUBJECT="b"`},
		{"repeated Cert", `Cert=a;cert=a`},
		{"33 elements", strings.Repeat("URI=u,", 32) + "URI=u"},
		{"over 16 KiB", `URI="` + strings.Repeat("a", 16<<10) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := xfcc.Parse(tt.header)
			if !errors.Is(err, xfcc.ErrMalformed) {
				t.Fatalf("Parse(%.80q) = %v, %v; want ErrMalformed", tt.header, got, err)
			}
		})
	}
}

func TestCaller(t *testing.T) {
	t.Parallel()
	other := "spiffe://cluster.local/ns/pbi/sa/other"
	tests := []struct {
		name    string
		values  []string
		self    string // defaults to self
		want    string
		wantErr error
	}{
		{name: "istio inbound", values: []string{istio}, want: frontend},
		{
			name:   "earlier hop names someone else, last counts",
			values: []string{`By=spiffe://cluster.local/ns/web/sa/frontend;URI=spiffe://evil/sa/admin,` + istio},
			want:   frontend,
		},
		{
			name:    "client forged a first element claiming our By",
			values:  []string{`By=` + self + `;URI=spiffe://cluster.local/ns/x/sa/admin,By=` + other + `;URI=` + frontend},
			wantErr: xfcc.ErrNotForUs,
		},
		{name: "lower-case keys", values: []string{`by=` + self + `;uri=` + frontend}, want: frontend},
		{name: "upper-case keys", values: []string{`BY=` + self + `;URI=` + frontend}, want: frontend},
		{name: "quoted values", values: []string{`By="` + self + `";URI="` + frontend + `"`}, want: frontend},
		{name: "DNS and Cert alongside", values: []string{istio + `;DNS=a.example;Cert="x%20y"`}, want: frontend},
		{name: "no values", values: nil, wantErr: xfcc.ErrMissing},
		{name: "empty value", values: []string{""}, wantErr: xfcc.ErrMalformed},
		{name: "two values are not joined", values: []string{istio, istio}, wantErr: xfcc.ErrMalformed},
		{
			name:    "two values where joining would pass",
			values:  []string{`By=` + other + `;URI=spiffe://evil/x`, istio},
			wantErr: xfcc.ErrMalformed,
		},
		{name: "malformed", values: []string{istio + `;Subject="open`}, wantErr: xfcc.ErrMalformed},
		{name: "oversize", values: []string{istio + `;DNS=` + strings.Repeat("a", 16<<10)}, wantErr: xfcc.ErrMalformed},
		{name: "spoofed By", values: []string{`By=` + other + `;URI=` + frontend}, wantErr: xfcc.ErrNotForUs},
		{name: "By prefix of self", values: []string{`By=spiffe://cluster.local/ns/pbi/sa/embed;URI=` + frontend}, wantErr: xfcc.ErrNotForUs},
		{name: "By differs in case", values: []string{`By=spiffe://cluster.local/ns/pbi/sa/EMBEDGATE;URI=` + frontend}, wantErr: xfcc.ErrNotForUs},
		{name: "no By", values: []string{`URI=` + frontend}, wantErr: xfcc.ErrNotForUs},
		{name: "two By, one ours", values: []string{`By=` + self + `;By=` + other + `;URI=` + frontend}, wantErr: xfcc.ErrNotForUs},
		{name: "our By twice", values: []string{`By=` + self + `;By=` + self + `;URI=` + frontend}, wantErr: xfcc.ErrNotForUs},
		{name: "no URI", values: []string{`By=` + self + `;Hash=` + hashA}, wantErr: xfcc.ErrNoIdentity},
		{name: "two URIs", values: []string{istio + `;URI=spiffe://cluster.local/ns/web/sa/other`}, wantErr: xfcc.ErrNoIdentity},
		{name: "same URI twice", values: []string{istio + `;URI=` + frontend}, wantErr: xfcc.ErrNoIdentity},
		{name: "non-SPIFFE URI", values: []string{`By=` + self + `;URI=http://testclient.lyft.com`}, wantErr: xfcc.ErrNoIdentity},
		{name: "empty URI", values: []string{`By=` + self + `;URI=`}, wantErr: xfcc.ErrNoIdentity},
		{name: "upper-case trust domain", values: []string{`By=` + self + `;URI=spiffe://Cluster.local/ns/web/sa/frontend`}, wantErr: xfcc.ErrNoIdentity},
		{name: "trust domain only", values: []string{`By=` + self + `;URI=spiffe://cluster.local`}, wantErr: xfcc.ErrNoIdentity},
		{name: "URI with dot segment", values: []string{`By=` + self + `;URI=spiffe://cluster.local/ns/../sa/x`}, wantErr: xfcc.ErrNoIdentity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			me := self
			if tt.self != "" {
				me = tt.self
			}
			got, err := xfcc.Caller(tt.values, me)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Caller() = %q, %v; want %v", got, err, tt.wantErr)
				}
				if got != "" {
					t.Errorf("Caller() returned %q alongside an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Caller() error: %v", err)
			}
			if got != tt.want {
				t.Errorf("Caller() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCallerInvalidSelf(t *testing.T) {
	t.Parallel()
	for _, me := range []string{"", "embedgate", "http://cluster.local/ns/pbi/sa/embedgate"} {
		_, err := xfcc.Caller([]string{`By=` + me + `;URI=` + frontend}, me)
		if err == nil {
			t.Fatalf("Caller(self=%q) succeeded; want a configuration error", me)
		}
		for _, sentinel := range []error{xfcc.ErrMissing, xfcc.ErrMalformed, xfcc.ErrNotForUs, xfcc.ErrNoIdentity} {
			if errors.Is(err, sentinel) {
				t.Errorf("Caller(self=%q) = %v; a configuration error must not match %v", me, err, sentinel)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		envoySingle, envoyMultiHop, envoyDNS, envoyCert, istio,
		`Subject="CN=\"q\",O=y"`, `Subject="a\\"b"`, `By=a,`, `=`, `"`, `a;b`, `Cert="%"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		elems, err := xfcc.Parse(header)
		if err != nil {
			if !errors.Is(err, xfcc.ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(elems) == 0 || len(elems) > 32 {
			t.Fatalf("Parse returned %d elements", len(elems))
		}
		// Caller must agree with Parse on well-formedness.
		if _, err := xfcc.Caller([]string{header}, self); errors.Is(err, xfcc.ErrMalformed) {
			t.Fatalf("Parse accepted but Caller says malformed: %v", err)
		}
		rendered, ok := render(elems)
		if !ok || len(rendered) > 16<<10 { // escaping can grow past the limit
			return
		}
		again, err := xfcc.Parse(rendered)
		if err != nil {
			t.Fatalf("Parse(render(Parse(%q))) = %q: %v", header, rendered, err)
		}
		if diff := cmp.Diff(elems, again); diff != "" {
			t.Fatalf("round trip via %q changed elements (-first +second):\n%s", rendered, diff)
		}
	})
}

// render writes elements back the way Envoy would, for the round-trip
// property. ok is false for what Envoy's escaping cannot express: an
// element with no known keys, or a value needing quotes that ends in '\'.
func render(elems []xfcc.Element) (string, bool) {
	var parts []string
	for _, e := range elems {
		var kv []string
		add := func(key, val string) bool {
			if strings.ContainsAny(val, `,;="`) {
				if strings.HasSuffix(val, `\`) {
					return false
				}
				val = `"` + strings.ReplaceAll(val, `"`, `\"`) + `"`
			}
			kv = append(kv, key+"="+val)
			return true
		}
		ok := true
		for _, v := range e.By {
			ok = ok && add("By", v)
		}
		if e.Hash != "" {
			ok = ok && add("Hash", e.Hash)
		}
		if e.Cert != "" {
			kv = append(kv, `Cert="`+url.PathEscape(e.Cert)+`"`)
		}
		if e.Chain != "" {
			kv = append(kv, `Chain="`+url.PathEscape(e.Chain)+`"`)
		}
		if e.Subject != "" {
			ok = ok && add("Subject", e.Subject)
		}
		for _, v := range e.URI {
			ok = ok && add("URI", v)
		}
		for _, v := range e.DNS {
			ok = ok && add("DNS", v)
		}
		if !ok || len(kv) == 0 {
			return "", false
		}
		parts = append(parts, strings.Join(kv, ";"))
	}
	return strings.Join(parts, ","), true
}

func repeat(e xfcc.Element, n int) []xfcc.Element {
	out := make([]xfcc.Element, n)
	for i := range out {
		out[i] = e
	}
	return out
}
