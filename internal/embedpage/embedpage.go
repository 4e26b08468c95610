// Package embedpage writes a self-contained HTML page that embeds Power BI
// items with a token, using Microsoft's Power BI JavaScript client
// (powerbi-client, vendored in powerbi-client/ and inlined: the page loads
// nothing but Power BI itself). It is how `embedgate token --html` lets a
// developer "see how the rendering will look" with the token just minted.
//
// The embed configuration sits in the page as JSON in a
// <script type="application/json" id="embed-config"> element, so that a
// test (or a person) can read exactly what the page hands to
// powerbi.embed.
package embedpage

import (
	_ "embed" // the vendored client
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// ClientVersion is the vendored powerbi-client's version.
const ClientVersion = "2.24.1"

//go:embed powerbi-client/powerbi.min.js
var clientJS string

// Config is what the page embeds.
type Config struct {
	// TokenType is "Embed" for an embed token, "Aad" for a user's Entra
	// access token (powerbi-client's models.TokenType).
	TokenType string `json:"tokenType"`
	// AccessToken is the token.
	AccessToken string `json:"accessToken"`
	// Expiration is when the token expires.
	Expiration time.Time `json:"expiration"`
	// Items are embedded one below the other.
	Items []Item `json:"items"`
}

// Item is one item to embed.
type Item struct {
	// Type is powerbi-client's embed type: "report" (paginated reports
	// too) or "dashboard".
	Type string `json:"type"`
	// ID is the item's id.
	ID string `json:"id"`
	// Name is shown above it.
	Name string `json:"name"`
	// EmbedURL is Power BI's embed URL for it.
	EmbedURL string `json:"embedUrl"`
}

// Write writes the page for cfg to w.
func Write(w io.Writer, cfg Config) error {
	switch cfg.TokenType {
	case "Embed", "Aad":
	default:
		return fmt.Errorf("embedpage: token type %q is not Embed or Aad", cfg.TokenType)
	}
	if len(cfg.Items) == 0 {
		return fmt.Errorf("embedpage: nothing to embed")
	}
	for _, it := range cfg.Items {
		if it.Type != "report" && it.Type != "dashboard" {
			return fmt.Errorf("embedpage: embed type %q is not report or dashboard", it.Type)
		}
	}
	b, err := json.Marshal(cfg) // escapes <, > and &: safe inside <script>
	if err != nil {
		return err
	}
	names := make([]string, len(cfg.Items))
	for i, it := range cfg.Items {
		names[i] = it.Name
	}
	return page.Execute(w, map[string]any{
		"Title":   strings.Join(names, ", "),
		"Config":  template.JS(b),
		"Client":  template.JS(clientJS),
		"Version": ClientVersion,
		"Items":   cfg.Items,
		"Expires": cfg.Expiration.UTC().Format(time.RFC3339),
		"Type":    cfg.TokenType,
	})
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · embedgate token</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #f3f2f1; color: #252423; }
  header { padding: .6rem 1rem; background: #fff; border-bottom: 1px solid #e1dfdd; font-size: .9rem; }
  h2 { font-size: 1rem; margin: 1rem 1rem .4rem; }
  .embed { height: 80vh; margin: 0 1rem 1rem; background: #fff; border: 1px solid #e1dfdd; }
  .error { color: #a4262c; margin: 0 1rem; }
</style>
</head>
<body>
<header>Written by <code>embedgate token</code> · token type {{.Type}} · expires {{.Expires}} · powerbi-client {{.Version}}. This page holds the token: do not share it.</header>
{{range $i, $it := .Items}}<h2>{{$it.Name}}</h2>
<div class="embed" id="embed-{{$i}}"></div>
<p class="error" id="error-{{$i}}"></p>
{{end}}<script type="application/json" id="embed-config">{{.Config}}</script>
<script>{{.Client}}</script>
<script>
(function () {
  var cfg = JSON.parse(document.getElementById("embed-config").textContent);
  var models = window["powerbi-client"].models;
  cfg.items.forEach(function (item, i) {
    var embedded = powerbi.embed(document.getElementById("embed-" + i), {
      type: item.type,
      id: item.id,
      embedUrl: item.embedUrl,
      accessToken: cfg.accessToken,
      tokenType: models.TokenType[cfg.tokenType],
      settings: { panes: { filters: { expanded: false } } }
    });
    // data-state on the item's box says how far it got: loaded,
    // rendered, or error (the message below it).
    var box = document.getElementById("embed-" + i);
    embedded.on("loaded", function () { if (box.dataset.state !== "error") box.dataset.state = "loaded"; });
    embedded.on("rendered", function () { if (box.dataset.state !== "error") box.dataset.state = "rendered"; });
    embedded.on("error", function (event) {
      var d = event.detail || {};
      box.dataset.state = "error";
      document.getElementById("error-" + i).textContent = (d.message || "error") + (d.detailedMessage ? ": " + d.detailedMessage : "");
    });
  });
})();
</script>
</body>
</html>
`))
