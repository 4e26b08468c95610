package yamlfile

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExpandEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HOST": "0.0.0.0", "PORT": "8443", "EMPTY": "", "NESTED": "${HOST}"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want, wantErr string }{
		{in: "plain", want: "plain"},
		{in: "${HOST}:${PORT}", want: "0.0.0.0:8443"},
		{in: "a${EMPTY}b", want: "ab"},
		{in: "${NESTED}", want: "${HOST}"}, // values are not expanded again
		{in: "$${HOST}", want: "${HOST}"},
		{in: "cost: $5, $HOST, $$", want: "cost: $5, $HOST, $$"},
		{in: "${MISSING}", wantErr: "environment variable MISSING is not set"},
		{in: "${HOST", wantErr: "unterminated ${"},
		{in: "${}", wantErr: "${} does not name an environment variable"},
		{in: "${1X}", wantErr: "${1X} does not name"},
		{in: "${A-B}", wantErr: "${A-B} does not name"},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, lookup)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("expandEnv(%q) = %q, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
		case err != nil || got != tt.want:
			t.Errorf("expandEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestDecodeExpandsEnv: variables are expanded in values before their type
// is checked, a plain scalar takes the type of what it expands to, a quoted
// one stays a string, and an unset variable is a problem at its key (with
// its line), never echoing any value.
func TestDecodeExpandsEnv(t *testing.T) {
	// Not parallel: it replaces lookupEnv for the package.
	env := map[string]string{"LISTEN": "0.0.0.0:8443", "EVERY": "2s", "ON": "true", "COUNT": "3", "SECRETISH": "s3cr3t"}
	old := lookupEnv
	lookupEnv = func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	t.Cleanup(func() { lookupEnv = old })

	var f file
	ps, ok := Decode([]byte(`
listen: ${LISTEN}
on: ${ON}
count: ${COUNT}
inner:
  name: "${COUNT}"
  every: ${EVERY}
by_key: {k: ["$${LITERAL}", "${SECRETISH}"]}
`), &f)
	if !ok || len(ps) != 0 {
		t.Fatalf("Decode = %v, %v", ps, ok)
	}
	want := file{Listen: "0.0.0.0:8443", On: true, Count: 3, Inner: inner{Name: "3", Every: 2 * time.Second},
		ByKey: map[string][]string{"k": {"${LITERAL}", "s3cr3t"}}}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}

	var g file
	ps, ok = Decode([]byte("listen: ${LISTEN}\ninner:\n  name: ${NOT_SET}\nlist:\n  - name: x${SECRETISH\n"), &g)
	wantPs := []Problem{
		{Key: "inner.name", Message: "environment variable NOT_SET is not set (line 3)"},
		{Key: "list[0].name", Message: "unterminated ${ (write $${ for a literal ${) (line 5)"},
	}
	if !ok || !cmp.Equal(wantPs, ps) {
		t.Errorf("Decode = %v, %v; want %v", ps, ok, wantPs)
	}
	if g.Listen != "0.0.0.0:8443" {
		t.Errorf("the rest of the file was not decoded: %+v", g)
	}
	for _, p := range ps {
		if strings.Contains(p.Message, "s3cr3t") || strings.Contains(p.Message, "0.0.0.0") {
			t.Errorf("a problem echoes a value: %v", p)
		}
	}
}

// TestExpandedValuesNeverInProblems: a value from the environment that does
// not fit its key's type is refused with what the file wrote, never with
// the variable's value, in every kind of problem the decoder reports.
func TestExpandedValuesNeverInProblems(t *testing.T) {
	// Not parallel: it replaces lookupEnv for the package.
	const secret = "hunter2-sentinel"
	old := lookupEnv
	lookupEnv = func(string) (string, bool) { return secret, true }
	t.Cleanup(func() { lookupEnv = old })
	var f file
	ps, _ := Decode([]byte("on: ${A}\nrate: ${B}\ncount: ${C}\nwait: ${D}\ninner:\n  every: ${E}\nlist:\n  - ${F}\nby_key: ${G}\n"), &f)
	if len(ps) < 6 {
		t.Fatalf("problems = %v, want one per key", ps)
	}
	for _, p := range ps {
		if strings.Contains(p.String(), secret) {
			t.Errorf("a problem shows the variable's value: %s", p)
		}
		if !strings.Contains(p.Message, `the value of "${`) {
			t.Errorf("a problem does not say what the file wrote: %s", p)
		}
	}
}
