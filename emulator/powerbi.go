package emulator

import (
	"net/http"
	"strings"
	"time"
)

// apiError is a Power BI error reply.
type apiError struct {
	status  int
	code    string
	message string
}

// invalidRequest is the 400 InvalidRequest reply most validation uses.
func invalidRequest(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidRequest", msg}
}

func notFound(msg string) *apiError {
	return &apiError{http.StatusNotFound, "PowerBIEntityNotFound", msg}
}

// errNotAuthorized is the 401 for a workspace the caller cannot use
// (unknown, not a member, or a profile it is restricted from).
var errNotAuthorized = &apiError{status: http.StatusUnauthorized, code: "PowerBINotAuthorizedException"}

func (e *apiError) write(w http.ResponseWriter) {
	if e.code == "PowerBINotAuthorizedException" {
		writeJSON(w, e.status, map[string]any{"error": map[string]any{
			"code": e.code,
			"pbi.error": map[string]any{
				"code":             e.code,
				"parameters":       map[string]any{},
				"details":          []any{},
				"exceptionCulprit": 1,
			},
		}})
		return
	}
	writePBIError(w, e.status, e.code, e.message)
}

// writePBIError writes {"error":{"code":...,"message":...}}.
func writePBIError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": message}})
}

// headerProfileID names the service-principal profile a call acts as.
const headerProfileID = "X-PowerBI-Profile-Id"

// caller is the service principal behind a verified Entra access token.
type caller struct {
	tenantID  string
	appID     string
	objectID  string
	expires   time.Time
	profileID string
}

// authenticate verifies the bearer token: issued (signed) by this emulator,
// for the Power BI audience, and not expired.
func (s *Server) authenticate(r *http.Request) (*caller, *apiError) {
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		// [unk] body: the reference gives only the 403 status.
		return nil, &apiError{http.StatusForbidden, "Forbidden", "Missing or malformed Authorization header; expected 'Bearer <Entra access token>'."}
	}
	tok, err := parseJWT(strings.TrimSpace(raw))
	if err == nil && tok.headerString("kid") != s.kid {
		err = errBadToken
	}
	if err == nil {
		err = tok.verify(&s.signKey.PublicKey, false)
	}
	if err != nil {
		return nil, &apiError{http.StatusForbidden, "Forbidden", "The access token is not valid: it was not issued by this Entra ID."}
	}
	if !audienceMatches(tok.audiences(), []string{powerBIResource}) {
		return nil, &apiError{http.StatusForbidden, "Forbidden", "The access token audience is not " + powerBIResource + "."}
	}
	exp, ok := tok.claimUnix("exp")
	if !ok || !s.now().Before(time.Unix(exp, 0)) {
		return nil, &apiError{http.StatusForbidden, "TokenExpired", "Access token has expired, resubmit with a new access token"}
	}
	return &caller{
		tenantID:  tok.claimString("tid"),
		appID:     tok.claimString("appid"),
		objectID:  tok.claimString("oid"),
		expires:   time.Unix(exp, 0).UTC(),
		profileID: strings.TrimSpace(r.Header.Get(headerProfileID)),
	}, nil
}

// canUse reports whether the caller may act in a workspace: its app is a
// member, and, when the workspace is restricted to profiles, the call
// carries one of them. A workspace without profiles ignores the header.
func (c *caller) canUse(ws *Workspace) bool {
	if ws == nil || !containsFold(ws.Members, c.appID) {
		return false
	}
	return len(ws.Profiles) == 0 || containsFold(ws.Profiles, c.profileID)
}

// group resolves the {group} path segment to a workspace the caller may
// use; unknown and forbidden groups both give 401, as the real service
// does for a wrong or unauthorized group id.
func (s *Server) group(r *http.Request, c *caller) (*Workspace, *apiError) {
	ws := s.world.workspace(r.PathValue("group"))
	if ws == nil || !c.canUse(ws) {
		return nil, errNotAuthorized
	}
	return ws, nil
}
