package embedpage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// clientSHA256 is the digest of the vendored powerbi.min.js
// (powerbi-client/README.md).
const clientSHA256 = "58d8051898564fc2edd3d7f42247b677c0a0fd5fc77afa395d19777f61a7b2b6"

var configRE = regexp.MustCompile(`(?s)<script type="application/json" id="embed-config">(.*?)</script>`)

// TestWrite: the page carries the configuration as JSON, the vendored
// client inline, and loads no script from anywhere.
func TestWrite(t *testing.T) {
	t.Parallel()
	cfg := Config{
		TokenType:   "Embed",
		AccessToken: "H4sIAAAAAAAA/</script><script>alert(1)</script>",
		Expiration:  time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
		Items: []Item{
			{Type: "report", ID: "a1000000-0000-4000-8000-000000000001", Name: "Sales <2026>", EmbedURL: "https://app.powerbi.com/reportEmbed?reportId=a1000000-0000-4000-8000-000000000001&groupId=a0000000-0000-4000-8000-000000000001&w=2"},
			{Type: "report", ID: "a1000000-0000-4000-8000-000000000002", Name: "Inventory", EmbedURL: "https://app.powerbi.com/reportEmbed?reportId=a1000000-0000-4000-8000-000000000002"},
		},
	}
	var b strings.Builder
	if err := Write(&b, cfg); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	m := configRE.FindStringSubmatch(html)
	if m == nil {
		t.Fatal("no embed-config element")
	}
	var got Config
	if err := json.Unmarshal([]byte(m[1]), &got); err != nil {
		t.Fatalf("embed-config is not JSON: %v", err)
	}
	if got.TokenType != cfg.TokenType || got.AccessToken != cfg.AccessToken || !got.Expiration.Equal(cfg.Expiration) || len(got.Items) != 2 || got.Items[0] != cfg.Items[0] {
		t.Errorf("embed-config = %+v, want %+v", got, cfg)
	}
	if strings.Count(html, "</script>") != 3 || strings.Contains(html, "<script src") || strings.Contains(html, "alert(1)</script>") {
		t.Errorf("the page has a script of its own making, a src, or the token broke out of its element")
	}
	if !strings.Contains(html, clientJS) || !strings.Contains(html, `id="embed-1"`) || !strings.Contains(html, "Sales &lt;2026&gt;") {
		t.Errorf("the page lacks the client, an item's element, or escaping")
	}
	if err := Write(&b, Config{TokenType: "Bearer", Items: cfg.Items}); err == nil {
		t.Errorf("a token type powerbi-client does not know was accepted")
	}
}

// TestVendoredClient: powerbi.min.js is the published 2.24.1, unchanged.
func TestVendoredClient(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte(clientJS))
	if got := hex.EncodeToString(sum[:]); got != clientSHA256 {
		t.Errorf("powerbi.min.js sha256 = %s, want %s (powerbi-client %s as published)", got, clientSHA256, ClientVersion)
	}
	if !strings.HasPrefix(clientJS, "// powerbi-client v"+ClientVersion+"\n") {
		t.Errorf("powerbi.min.js is not powerbi-client %s", ClientVersion)
	}
}
