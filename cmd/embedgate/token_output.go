package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/embedgate/embedgate/internal/embedpage"
	"github.com/embedgate/embedgate/powerbi"
)

// tokenOutput is what `embedgate token` prints (--json: this, as JSON).
type tokenOutput struct {
	// TokenType is Embed (an embed token) or Aad (the user's own access
	// token, for My workspace), as powerbi-client's tokenType names them.
	TokenType string `json:"tokenType"`
	// Token is the token: the command's product, printed on purpose.
	Token      string    `json:"token"`
	TokenID    string    `json:"tokenId,omitempty"`
	Expiration time.Time `json:"expiration"`
	// How says who minted it: the signed-in user, or the service principal
	// and the policy's rule.
	How   string       `json:"how,omitempty"`
	Note  string       `json:"note,omitempty"`
	Items []outputItem `json:"items"`
	// Request is the GenerateToken request sent, as sent (nil when none
	// was, for My workspace).
	Request *sentRequest `json:"request,omitempty"`
}

// outputItem is one embedded item.
type outputItem struct {
	Type        string `json:"type"` // report or dashboard, as powerbi-client embeds it
	ID          string `json:"id"`
	Name        string `json:"name"`
	EmbedURL    string `json:"embedUrl"`
	WorkspaceID string `json:"workspaceId,omitempty"`
	DatasetID   string `json:"datasetId,omitempty"`
}

func itemOf(e powerbi.Embedded) outputItem {
	t := "report"
	if e.Kind == powerbi.KindDashboard {
		t = "dashboard"
	}
	return outputItem{Type: t, ID: e.ID, Name: e.Name, EmbedURL: e.EmbedURL, WorkspaceID: e.WorkspaceID, DatasetID: e.DatasetID}
}

func embedOutput(tok *powerbi.EmbedToken, how string) *tokenOutput {
	out := &tokenOutput{TokenType: "Embed", Token: tok.Token, TokenID: tok.TokenID, Expiration: tok.Expiration.UTC(), How: how}
	for _, e := range tok.Items {
		out.Items = append(out.Items, itemOf(e))
	}
	return out
}

// print writes the output, as JSON or for people.
func (o *tokenOutput) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(o)
	}
	var b strings.Builder
	kind := "Embed token"
	if o.TokenType == "Aad" {
		kind = "Access token (tokenType Aad)"
	}
	fmt.Fprintf(&b, "%s for %d item(s), %s\n", kind, len(o.Items), o.How)
	if o.Note != "" {
		fmt.Fprintf(&b, "note:       %s\n", o.Note)
	}
	fmt.Fprintf(&b, "token:      %s\n", o.Token)
	if o.TokenID != "" {
		fmt.Fprintf(&b, "token id:   %s\n", o.TokenID)
	}
	fmt.Fprintf(&b, "expires:    %s (in %s)\n", o.Expiration.Format(time.RFC3339), time.Until(o.Expiration).Round(time.Second))
	for _, it := range o.Items {
		fmt.Fprintf(&b, "%-11s %s  %s\n", it.Type+":", it.ID, it.Name)
		fmt.Fprintf(&b, "  embed URL: %s\n", it.EmbedURL)
	}
	if r := o.Request; r != nil {
		fmt.Fprintf(&b, "request:    %s %s\n", r.Method, r.URL)
		if r.ProfileID != "" {
			fmt.Fprintf(&b, "  X-PowerBI-Profile-Id: %s\n", r.ProfileID)
		}
		fmt.Fprintf(&b, "  %s\n", r.Body)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writePage writes the page that embeds the items with the token, readable
// by its owner only: it holds the token.
func (o *tokenOutput) writePage(path string) error {
	cfg := embedpage.Config{TokenType: o.TokenType, AccessToken: o.Token, Expiration: o.Expiration}
	for _, it := range o.Items {
		cfg.Items = append(cfg.Items, embedpage.Item{Type: it.Type, ID: it.ID, Name: it.Name, EmbedURL: it.EmbedURL})
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := embedpage.Write(f, cfg); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
