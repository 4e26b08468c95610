package clients_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/embedgate/embedgate/clients/go/embedgateclient"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// reasonRow is a row of the reasons table: | `REASON` | CODE | action | ... |
var reasonRow = regexp.MustCompile("(?m)^\\| `([A-Z_]+)` \\| [A-Z_]+ \\| (retry|fix the request|report) \\|")

// TestReasonTables: the reasons table of each client's documentation lists
// every reason, with the action the Go client gives it (the TypeScript and
// Python suites check their own code against their own README the same way).
func TestReasonTables(t *testing.T) {
	for _, doc := range []string{"README.md", filepath.Join("ts", "README.md"), filepath.Join("python", "README.md")} {
		t.Run(doc, func(t *testing.T) {
			b, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			listed := map[string]bool{}
			for _, m := range reasonRow.FindAllStringSubmatch(string(b), -1) {
				r, ok := embedgatev1.Reason_value[m[1]]
				if !ok {
					t.Errorf("%s is no reason", m[1])
					continue
				}
				listed[m[1]] = true
				if want := embedgateclient.ActionOf(embedgatev1.Reason(r)).String(); m[2] != want {
					t.Errorf("%s: the table says %q, the client %q", m[1], m[2], want)
				}
			}
			for name, n := range embedgatev1.Reason_value {
				if n != 0 && !listed[name] {
					t.Errorf("the table does not list %s", name)
				}
			}
		})
	}
}
