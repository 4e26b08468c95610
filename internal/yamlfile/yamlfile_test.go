package yamlfile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

type inner struct {
	Name  string        `yaml:"name"`
	Every time.Duration `yaml:"every"`
}

type file struct {
	Listen  string              `yaml:"listen"`
	On      bool                `yaml:"on"`
	Rate    float64             `yaml:"rate"`
	Count   int                 `yaml:"count"`
	Wait    *time.Duration      `yaml:"wait"`
	Inner   inner               `yaml:"inner"`
	List    []*inner            `yaml:"list"`
	ByKey   map[string][]string `yaml:"by_key"`
	Ignored string              `yaml:"-"`
}

func TestDecode(t *testing.T) {
	t.Parallel()
	minute := time.Minute
	tests := []struct {
		name   string
		yaml   string
		want   file
		wantPs []Problem
		wantOK bool
	}{
		{name: "empty file", yaml: "", wantOK: true},
		{name: "every type", wantOK: true, yaml: `
listen: 127.0.0.1:1
on: true
rate: 0.5
count: 3
wait: 1m
inner: {name: a, every: 2s}
list: [{name: b}, ~]
by_key: {k: [x, y]}
`, want: file{Listen: "127.0.0.1:1", On: true, Rate: 0.5, Count: 3, Wait: &minute,
			Inner: inner{Name: "a", Every: 2 * time.Second}, List: []*inner{{Name: "b"}, nil}, ByKey: map[string][]string{"k": {"x", "y"}}}},
		{name: "a number reads as a string", yaml: "listen: 8443\n", want: file{Listen: "8443"}, wantOK: true},
		{name: "every problem with its key path and line, the rest decoded", wantOK: true, yaml: `
listen: ok
on: maybe
rate: fast
count: 1.5
wait: 60
inner: {name: a, every: soon, colour: red}
list:
  - {name: b, extra: 1}
  - [nested]
by_key: [x]
listen: again
`, want: file{Listen: "ok", Inner: inner{Name: "a"}, List: []*inner{{Name: "b"}}},
			wantPs: []Problem{
				{"on", `want true or false, got "maybe" (line 3)`},
				{"rate", `want a number, got "fast" (line 4)`},
				{"count", `want a whole number, got "1.5" (line 5)`},
				{"wait", `want a duration such as 30s or 5m, got "60" (line 6)`},
				{"inner.every", `want a duration such as 30s or 5m, got "soon" (line 7)`},
				{"inner.colour", "unknown key (line 7)"},
				{"list[0].extra", "unknown key (line 9)"},
				{"list[1]", "want a mapping of keys to values, got a list (line 10)"},
				{"by_key", "want a mapping of keys to values, got a list (line 11)"},
				{"listen", "duplicate key (first at line 2) (line 12)"},
			}},
		{name: "a key the struct hides", yaml: "Ignored: x\n", wantOK: true, wantPs: []Problem{{"Ignored", "unknown key (line 1)"}}},
		{name: "not YAML", yaml: "listen: [\n", wantPs: []Problem{{"", "yaml: line 1: did not find expected node content"}}},
		{name: "two documents", yaml: "listen: a\n---\nlisten: b\n", want: file{Listen: "a"}, wantOK: true,
			wantPs: []Problem{{"", "only one YAML document is allowed"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got file
			ps, ok := Decode([]byte(tt.yaml), &got)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v (problems %v)", ok, tt.wantOK, ps)
			}
			if diff := cmp.Diff(tt.wantPs, ps); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if ok {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("decoded (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestPrefixed(t *testing.T) {
	t.Parallel()
	got := Prefixed("powerbi", []Problem{{"client_id", "required"}, {"", "whole block"}})
	want := []Problem{{"powerbi.client_id", "required"}, {"powerbi", "whole block"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if s := want[0].String(); s != "powerbi.client_id: required" {
		t.Errorf("String() = %q", s)
	}
}

// TestDecodeAgreesWithYAML: what Decode fills is what yaml.v3's decoder
// fills, for documents that use anchors, aliases, merge keys, nulls, flow and
// block styles, quoted scalars and non-string tags read as strings.
func TestDecodeAgreesWithYAML(t *testing.T) {
	t.Parallel()
	docs := []string{
		"listen: a\non: false\nrate: 1\ncount: -7\nwait: 90s\ninner: {name: n, every: 1h}\n",
		"inner: &base {name: shared, every: 5s}\nlist: [*base, {name: own}, ~]\n",
		"list:\n  - &x {name: x, every: 1s}\n  - <<: *x\n    name: y\n",
		"list:\n  - &a {name: a}\n  - &b {every: 2s}\n  - <<: [*a, *b]\n",
		"inner:\n  name: own\n  <<: {name: merged, every: 3s}\n",
		"by_key:\n  k1: [a, 'b', \"c\"]\n  k2: []\n  k3: ~\n  \"12\": [true, 1.5, 0x1F]\n",
		"listen: 8443\nwait: ~\nlist: []\nby_key: {}\n",
		"listen: \"multi\\nline\"\ninner:\n  name: |\n    block\n    text\n",
		"---\nlisten: x\n",
	}
	for _, doc := range docs {
		var got, want file
		if ps, ok := Decode([]byte(doc), &got); !ok || len(ps) > 0 {
			t.Fatalf("%q: %v", doc, ps)
		}
		if err := yaml.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatalf("%q: yaml.v3: %v", doc, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q: (-yaml.v3 +Decode)\n%s", doc, diff)
		}
	}
}

// TestDecodeBoundsAliases: a billion laughs is refused, not expanded.
func TestDecodeBoundsAliases(t *testing.T) {
	t.Parallel()
	doc := "list:\n  - &l0 {name: x}\n"
	for i := 1; i <= 9; i++ {
		doc += fmt.Sprintf("  - &l%d {<<: [%s*l%d]}\n", i, strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9), i-1)
	}
	var f file
	ps, ok := Decode([]byte(doc), &f)
	if ok || len(ps) == 0 || !strings.Contains(ps[len(ps)-1].Message, "excessive aliasing") {
		t.Fatalf("ok %v, problems %v", ok, ps)
	}
}
