package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

var (
	readmeYAML = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```\n")
	// readmeCall is a GenerateEmbedToken call of the section, and the body
	// Power BI receives for it, in the next json block.
	readmeCall = regexp.MustCompile("(?ms)^\\$ \\$G -d '(\\{[^']*\\})' \\\\\n\\s+127\\.0\\.0\\.1:8443 embedgate\\.v1\\.EmbedTokenService/GenerateEmbedToken\n```\n.*?^```json\n(.*?)^```\n")
)

// TestREADMEModels runs every example of the README's section "Models and
// identities" as printed, against the dev server's world: the policy shown
// is the dev policy's acme-models tenant, and each call's body, as the
// emulator recorded it, is the one shown.
func TestREADMEModels(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Models and identities\n")
	if start < 0 {
		t.Fatal(`README.md has no section "Models and identities"`)
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}

	// The policy shown is the one make run writes.
	ys := readmeYAML.FindAllStringSubmatch(section, -1)
	if len(ys) != 1 {
		t.Fatalf("the section has %d yaml blocks, want the policy alone", len(ys))
	}
	var shown map[string]any
	if err := yaml.Unmarshal([]byte(ys[0][1]), &shown); err != nil {
		t.Fatal(err)
	}
	var dev struct {
		Tenants map[string]any `yaml:"tenants"`
	}
	if err := yaml.Unmarshal([]byte(devPolicy), &dev); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dev.Tenants["acme-models"], shown["acme-models"]); diff != "" {
		t.Errorf("the README's policy is not the dev policy's acme-models (-dev +README):\n%s", diff)
	}

	calls := readmeCall.FindAllStringSubmatch(section, -1)
	if len(calls) != 6 {
		t.Fatalf("the section has %d calls with their bodies, want one per kind of model (6)", len(calls))
	}
	server := startDev(t)
	dir, conn := server.dir, server.conn
	client := embedgatev1.NewEmbedTokenServiceClient(conn)
	emu := devEmulator(t, dir)
	for _, c := range calls {
		req := &embedgatev1.GenerateEmbedTokenRequest{}
		if err := protojson.Unmarshal([]byte(c[1]), req); err != nil {
			t.Fatalf("%s is not a request of the API: %v", c[1], err)
		}
		if _, err := client.GenerateEmbedToken(context.Background(), req); err != nil {
			t.Errorf("%s: %v", c[1], err)
			continue
		}
		var recorded struct {
			Value []struct {
				Body string `json:"body"`
			} `json:"value"`
		}
		emu.get(t, "/_emulator/requests/powerbi.GenerateToken", &recorded)
		last := recorded.Value[len(recorded.Value)-1].Body
		var got, want any
		if err := json.Unmarshal([]byte(last), &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(c[2]), &want); err != nil {
			t.Fatalf("the body shown for %s is not JSON: %v", c[1], err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: Power BI receives another body than the README shows (-README +received):\n%s", c[1], diff)
		}
	}
}
