package yamlfile

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/internal/testkit"
)

// policyLike is shaped like Embedgate's policy: a list, and maps of
// structs that a file writes one entry per line at a common indentation.
type policyLike struct {
	Callers []*inner             `yaml:"callers"`
	Tenants map[string]*tenantOf `yaml:"tenants"`
	ByKey   map[string][]string  `yaml:"by_key"`
	Name    string               `yaml:"name"`
}

type tenantOf struct {
	WorkspaceID string   `yaml:"workspace_id"`
	Reports     []string `yaml:"reports"`
	Workspaces  []struct {
		ID      string   `yaml:"id"`
		Reports []string `yaml:"reports"`
	} `yaml:"workspaces"`
	RLS *struct {
		Roles        []string            `yaml:"roles"`
		Username     *string             `yaml:"username"`
		CustomData   string              `yaml:"custom_data"`
		DatasetRoles map[string][]string `yaml:"dataset_roles"`
	} `yaml:"rls"`
	AllowEdit   bool           `yaml:"allow_edit"`
	MaxLifetime *time.Duration `yaml:"max_lifetime"`
}

// cutDocs are laid out in ways cut reads; wholeDocs in ways it must leave
// to the whole file's decoding.
var cutDocs = []string{
	"name: x\ntenants:\n  a:\n    workspace_id: w\n  b: {reports: [r1, r2]}\n  c:\nby_key:\n  k: [x]\n",
	"# a comment\n---\ntenants: # the customers\n\n  a:   # first\n    allow_edit: true\n# between\n  b:\n    max_lifetime: 5m\n",
	"callers:\n- name: a\n- name: b\ntenants:\n    a:\n        rls:\n            roles: [x]\n            username: |\n              {user}\n\n            custom_data: >\n              folded\n              text\n    b: {}\n",
	"tenants:\n  a:\n    reports: [\"quoted # not a comment\", 'single', plain]\n    workspace_id: \"multi\n      line\"\n  b:\n    unknown: 1\n    allow_edit: maybe\n    max_lifetime: soon\n",
	"tenants:\n  a: &x\n    workspace_id: w\n    reports: &r [a, b]\n  b:\n    reports: [c]\n",
	"tenants:\n  a:\n    workspace_id: ${EMBEDGATE_PIECES_UNSET}\n  b:\n    workspace_id: $${literal}\n",
	"tenants:\n  a:\n    workspace_id: w\r\n  b:\r\n    workspace_id: v\r\n",
	"tenants:\nname: after an empty section\n",
	"tenants: {a: {workspace_id: w}}\nname: n\n",
	"tenants: ~\n",
	"tenants:\n  a: &x {workspace_id: w}\n  b: *x\n", // an alias in the same piece
}

var wholeDocs = []string{
	"by_key:\n  k1:\n  - a\n  - b\n  k2: []\n",
	"name: &n x\ntenants:\n  a:\n    workspace_id: *n\n",
	"tenants:\n  a:\n    workspace_id: w\n  a:\n    workspace_id: v\n",
	"tenants:\n  a: {workspace_id: w}\ntenants:\n  b: {workspace_id: v}\n",
	"tenants:\n  a: {reports: [x,\n  y]}\n",
	"tenants:\n  a:\n    workspace_id: \"w\n  b: v\"\n",
	"tenants:\n  a:\n  - x\n",
	"0:\r \n00:\n", // line breaks other than \n and \r\n: the parser's, not cut's
	"tenants: # c\r  x\n  a: {}\n",
	"tenants: # c\r  b: {workspace_id: one}\n  b: {workspace_id: two}\n",
	"tenants: # c\u2028  b: {workspace_id: one}\n  b: {workspace_id: two}\n",
	"name: \"a\u2028b\"\ntenants:\n  a:\n    allow_edit: maybe\n",
	"name: \"a\u0085b\"\ntenants:\n  a:\n    allow_edit: maybe\n",
	"name: \"a\u2029b\"\ntenants:\n  a:\n    allow_edit: maybe\n",
	"tenants:\n  a: {}\n b: {}\n",
	"tenants:\n  a: {}\n\tb: {}\n",
	"tenants:\n  <<: {a: {}}\n",
	"tenants:\n  ? a\n  : {}\n",
	"name: a\n---\nname: b\n",
	"name: a\n...\n",
	"%YAML 1.1\n---\nname: a\n",
	"  name: indented\n",
	"[not, a, mapping]\n",
	"- a\n",
	"name: [\n",
	"",
	"# only a comment\n",
}

// TestPiecesAgreeWithWhole: where a file is decoded in pieces, it decodes
// to the same value with the same problems as the whole file; and the usual
// layouts are cut, not left whole.
func TestPiecesAgreeWithWhole(t *testing.T) {
	t.Parallel()
	var large strings.Builder
	large.WriteString("callers:\n  - name: a\ntenants:\n")
	testkit.LargePolicyTenants(&large, 2_000)
	for _, doc := range append([]string{large.String()}, cutDocs...) {
		if !agree(t, doc) {
			t.Errorf("not decoded in pieces:\n%s", doc)
		}
	}
	for _, doc := range wholeDocs {
		if agree(t, doc) {
			t.Errorf("decoded in pieces:\n%s", doc)
		}
	}
	pieces, _ := cut([]byte(large.String()), reflect.TypeFor[policyLike]())
	if len(pieces) < 10 {
		t.Errorf("the large policy is in %d pieces", len(pieces))
	}
	for _, p := range pieces {
		if len(p.text) > 2*pieceBytes {
			t.Errorf("a piece of %d bytes", len(p.text))
		}
	}
}

// agree decodes doc in pieces and whole, fails where they differ, and
// reports whether the pieces decoded it.
func agree(t testing.TB, doc string) bool {
	var inPieces, whole policyLike
	ps, done := decodePieces([]byte(doc), reflect.ValueOf(&inPieces).Elem())
	if !done {
		return false
	}
	wps, ok := decodeWhole([]byte(doc), &whole)
	if !ok {
		t.Fatalf("decoded in pieces, but the whole file is not YAML (%v):\n%s", wps, doc)
	}
	if diff := cmp.Diff(wps, ps); diff != "" {
		t.Errorf("problems (-whole +pieces):\n%s\n%s", diff, doc)
	}
	if diff := cmp.Diff(whole, inPieces); diff != "" {
		t.Errorf("decoded (-whole +pieces):\n%s\n%s", diff, doc)
	}
	return true
}

// FuzzPieces: whatever the file, decoding it in pieces gives what decoding
// it whole gives, or is not done.
func FuzzPieces(f *testing.F) {
	for _, doc := range append(cutDocs, wholeDocs...) {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agree(t, string(data))
	})
}

func ExampleDecodeLarge() {
	var p policyLike
	problems, ok, inPieces := DecodeLarge([]byte("tenants:\n  a:\n    workspace_id: w\n  b:\n    allow_edit: maybe\n"), &p)
	fmt.Println(ok, inPieces, p.Tenants["a"].WorkspaceID, problems)
	// Output: true true w [tenants.b.allow_edit: want true or false, got "maybe" (line 5)]
}

// TestPiecesCostNoMoreThanTheFile: lines that only look like entries cost
// the attempt to cut them little memory (it sized maps by their number),
// and the whole file's decoding takes over.
func TestPiecesCostNoMoreThanTheFile(t *testing.T) {
	data := []byte("tenants:\n" + strings.Repeat(" a\n", 1<<20))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	var p policyLike
	_, done := decodePieces(data, reflect.ValueOf(&p).Elem())
	runtime.ReadMemStats(&ms)
	if done {
		t.Fatal("decoded in pieces")
	}
	if alloc := ms.TotalAlloc - before; alloc > uint64(2*len(data)) {
		t.Errorf("the attempt allocated %d bytes for a file of %d", alloc, len(data))
	}
}
