package emulator

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The browser side of Power BI. An item's embedUrl (Get Report, Get
// Dashboard) opens a page in an iframe: reportEmbed, rdlEmbed (paginated
// reports) or dashboardEmbed. Microsoft's powerbi-client drives that page
// over window.postMessage (window-post-message-proxy messages carrying
// http-post-message requests: POST /report/load with the embed token, POST
// /report/token for setAccessToken; the page answers, and posts events back
// as POST /reports/{uniqueId}/events/{loaded,rendered,error}). The page then
// calls Power BI with the embed token (Authorization: EmbedToken ...) to
// learn what to show.
//
// The emulator serves those pages at the paths of the embed URLs it returns
// (https://app.powerbi.com/reportEmbed?...): a browser reaches them as
// app.powerbi.com when it resolves that host to the emulator (Chromium:
// --host-resolver-rules), because powerbi-client refuses embed URLs outside
// *.powerbi.com and the other Power BI hosts. The page asks the emulator's
// explore routes, which look the token up in the emulator's own token
// store: what the page shows (the item's name, the token's RLS identities)
// is what the token grants.
//
// [unk] Power BI's own page is an undocumented application; its calls to its
// cluster are undocumented too. The explore routes and their answers are the
// emulator's; the postMessage protocol and the error event's fields follow
// powerbi-client (v2.24.1), window-post-message-proxy and http-post-message.

//go:embed embedpage.html
var embedPageSource string

// Embed page kinds: the data-kind of the page, which tells its script which
// powerbi-client embed type drives it and which explore route it asks.
const (
	pageReport    = "report"
	pagePaginated = "paginated"
	pageDashboard = "dashboard"
)

// embedPages are the three pages, rendered once.
var embedPages = func() map[string][]byte {
	t := template.Must(template.New("embed").Parse(embedPageSource))
	pages := map[string][]byte{}
	for _, kind := range []string{pageReport, pagePaginated, pageDashboard} {
		var b bytes.Buffer
		if err := t.Execute(&b, struct{ Kind string }{kind}); err != nil {
			panic(err)
		}
		pages[kind] = b.Bytes()
	}
	return pages
}()

// handleEmbedPage serves an embed page. Like Power BI's, it answers 200
// whatever the query says: the page itself reports a missing or wrong item
// through powerbi-client's error event once it is loaded.
func (s *Server) handleEmbedPage(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// Any site may frame it, as any site may embed Power BI.
		_, _ = w.Write(embedPages[kind])
	}
}

// embedScheme is the Authorization scheme of an embed token (powerbi-client's
// tokenType Embed); an Entra token (tokenType Aad) comes as Bearer.
const embedScheme = "EmbedToken"

// embedTokenError is a refusal of the explore routes. [unk] codes and
// messages, except TokenExpired's, which is the REST API's.
func embedTokenError(code, message string) *apiError {
	return &apiError{status: http.StatusForbidden, code: code, message: message}
}

// embedToken reads the embed token of an explore call and what it grants,
// refusing a missing, foreign or expired one.
func (s *Server) embedToken(r *http.Request) (TokenInfo, *apiError) {
	scheme, raw, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	raw = strings.TrimSpace(raw)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return TokenInfo{}, embedTokenError("PowerBINotAuthorizedException",
			"The emulator's embed pages take embed tokens only: embed with tokenType: models.TokenType.Embed.")
	case !strings.EqualFold(scheme, embedScheme) || raw == "":
		return TokenInfo{}, embedTokenError("PowerBINotAuthorizedException", "Missing or malformed Authorization header; expected 'EmbedToken <embed token>'.")
	}
	info, ok := s.tokens.byValue(raw)
	if !ok {
		return TokenInfo{}, embedTokenError("PowerBINotAuthorizedException", "The embed token is not valid: this Power BI did not issue it.")
	}
	if !s.now().Before(info.Expiration) {
		return TokenInfo{}, embedTokenError("TokenExpired", "Access token has expired, resubmit with a new access token")
	}
	return info, nil
}

// exploreAnswer is what an embed page learns about its item and its token.
type exploreAnswer struct {
	// ID and Name are the item's.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Type is PowerBIReport, PaginatedReport or Dashboard.
	Type string `json:"type"`
	// WorkspaceID and WorkspaceName are the item's workspace.
	WorkspaceID   string `json:"workspaceId"`
	WorkspaceName string `json:"workspaceName"`
	// TokenID and Expiration are the embed token's.
	TokenID    string    `json:"tokenId"`
	Expiration time.Time `json:"expiration"`
	// ExpiresInMs is how long the token has left on the emulator's clock,
	// which the page waits for before it checks the token again.
	ExpiresInMs int64 `json:"expiresInMs"`
	// Identities are the token's effective identities for this item.
	Identities []exploreIdentity `json:"identities"`
}

// exploreIdentity is an RLS identity as the page shows it.
type exploreIdentity struct {
	Username   string   `json:"username"`
	Roles      []string `json:"roles"`
	CustomData string   `json:"customData,omitempty"`
}

// handleExploreReport answers an embed page of a report: its name and the
// token's identities for it, if the token opens it.
func (s *Server) handleExploreReport(w http.ResponseWriter, r *http.Request) {
	info, apiErr := s.embedToken(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	id := r.PathValue("report")
	if !slices.ContainsFunc(info.Reports, func(tr TokenReport) bool { return strings.EqualFold(tr.ID, id) }) {
		embedTokenError("PowerBINotAuthorizedException", "The embed token does not open report "+id+".").write(w)
		return
	}
	p, ok := s.world.reports[strings.ToLower(id)]
	if !ok || !sameGroup(r, p.ws) {
		errNotFound.write(w)
		return
	}
	typ := "PowerBIReport"
	if p.item.Paginated {
		typ = "PaginatedReport"
	}
	var ids []exploreIdentity
	for _, ti := range info.Identities {
		if containsFold(ti.Reports, id) || (p.item.DatasetID != "" && containsFold(ti.Datasets, p.item.DatasetID)) ||
			(p.item.Paginated && len(ti.Reports) == 0 && slices.ContainsFunc(p.item.Datasets, func(d string) bool { return containsFold(ti.Datasets, d) })) {
			ids = append(ids, exploreIdentity{ti.Username, ti.Roles, ti.CustomData})
		}
	}
	s.writeExplore(w, info, exploreAnswer{ID: p.item.ID, Name: p.item.Name, Type: typ, WorkspaceID: p.ws.ID, WorkspaceName: p.ws.Name, Identities: ids})
}

// handleExploreDashboard answers an embed page of a dashboard, if the token
// is that dashboard's.
func (s *Server) handleExploreDashboard(w http.ResponseWriter, r *http.Request) {
	info, apiErr := s.embedToken(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	id := r.PathValue("dashboard")
	if info.Kind != KindDashboard || !strings.EqualFold(info.DashboardID, id) {
		embedTokenError("PowerBINotAuthorizedException", "The embed token does not open dashboard "+id+".").write(w)
		return
	}
	p, ok := s.world.dashboards[strings.ToLower(id)]
	if !ok || !sameGroup(r, p.ws) {
		errNotFound.write(w)
		return
	}
	var ids []exploreIdentity
	for _, ti := range info.Identities {
		ids = append(ids, exploreIdentity{ti.Username, ti.Roles, ti.CustomData})
	}
	s.writeExplore(w, info, exploreAnswer{ID: p.item.ID, Name: p.item.Name, Type: "Dashboard", WorkspaceID: p.ws.ID, WorkspaceName: p.ws.Name, Identities: ids})
}

// sameGroup reports whether the call's groupId, if any, is ws.
func sameGroup(r *http.Request, ws *Workspace) bool {
	g := r.URL.Query().Get("groupId")
	return g == "" || strings.EqualFold(g, ws.ID)
}

func (s *Server) writeExplore(w http.ResponseWriter, info TokenInfo, a exploreAnswer) {
	a.TokenID, a.Expiration = info.TokenID, info.Expiration
	a.ExpiresInMs = info.Expiration.Sub(s.now()).Milliseconds()
	if a.Identities == nil {
		a.Identities = []exploreIdentity{}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, a)
}
