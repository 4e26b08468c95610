package emulator

import (
	"net/http"
	"strings"
	"time"
)

// apiError is a Power BI error reply. With a message it is
// {"error":{"code","message"}}; without one, the pbi.error shape Power BI
// uses for authorization and missing items.
type apiError struct {
	status  int
	code    string
	message string
	header  http.Header
}

// invalidRequest is the 400 InvalidRequest reply most validation uses.
func invalidRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidRequest", message: msg}
}

// errNotFound is the 404 for an item (or route) that does not exist, in the
// shape Power BI answers it (troubleshooting threads such as
// stackoverflow.com/questions/64109695): pbi.error, no message.
var errNotFound = &apiError{status: http.StatusNotFound, code: "PowerBIEntityNotFound"}

// errNotAuthorized is the 401 for a workspace the caller cannot use
// (unknown, or no role in it), as in
// github.com/MicrosoftDocs/powerbi-docs/issues/1109.
var errNotAuthorized = &apiError{status: http.StatusUnauthorized, code: "PowerBINotAuthorizedException"}

func (e *apiError) write(w http.ResponseWriter) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	if e.message == "" {
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

// caller is the principal behind a Power BI call: the service principal of
// the Entra access token, or, with X-PowerBI-Profile-Id, its profile.
type caller struct {
	tenant    *Tenant
	app       *App
	tenantID  string
	appID     string
	objectID  string
	expires   time.Time
	profileID string // as sent; "" without the header
	principal string // appKey, profileKey or userKey: whose roles apply
	user      *User  // the signed-in user of a delegated token
	scopes    []string
}

// authenticate verifies the bearer token (issued by this emulator, for the
// Power BI audience of the emulated cloud, not expired), applies the
// tenant's service-principal setting, and resolves the profile the call
// acts as.
func (s *Server) authenticate(r *http.Request) (*caller, *apiError) {
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		// [unk] body: the reference gives only the 403 status.
		return nil, &apiError{status: http.StatusForbidden, code: "Forbidden", message: "Missing or malformed Authorization header; expected 'Bearer <Entra access token>'."}
	}
	tok, err := parseJWT(strings.TrimSpace(raw))
	if err == nil && tok.headerString("kid") != s.kid {
		err = errBadToken
	}
	if err == nil {
		err = tok.verify(&s.signKey.PublicKey, false)
	}
	if err != nil {
		return nil, &apiError{status: http.StatusForbidden, code: "Forbidden", message: "The access token is not valid: it was not issued by this Entra ID."}
	}
	if !audienceMatches(tok.audiences(), []string{s.cloud.resource}) {
		// [unk] body.
		return nil, &apiError{status: http.StatusForbidden, code: "Forbidden", message: "The access token audience is not " + s.cloud.resource + "."}
	}
	exp, ok := tok.claimUnix("exp")
	if !ok || !s.now().Before(time.Unix(exp, 0)) {
		return nil, &apiError{status: http.StatusForbidden, code: "TokenExpired", message: "Access token has expired, resubmit with a new access token"}
	}
	c := &caller{
		tenantID:  tok.claimString("tid"),
		appID:     tok.claimString("appid"),
		objectID:  tok.claimString("oid"),
		expires:   time.Unix(exp, 0).UTC(),
		profileID: strings.TrimSpace(r.Header.Get(headerProfileID)),
	}
	if c.tenant = s.world.tenant(c.tenantID); c.tenant != nil {
		c.app = c.tenant.app(c.appID)
	}
	if c.app == nil {
		return nil, &apiError{status: http.StatusForbidden, code: "Forbidden", message: "The access token is not valid: it was not issued by this Entra ID."}
	}
	if tok.claimString("idtyp") == "user" {
		return s.userCaller(r, c, tok)
	}
	if !c.tenant.servicePrincipalsAllowed(c.app) {
		return nil, errAdminSwitch
	}
	c.principal = appKey(c.app)
	if c.profileID != "" {
		// A profile belongs to the service principal that created it, and
		// can only be used by it ("Service principal profiles for
		// multi-tenancy apps", learn.microsoft.com/power-bi/developer/embedded/embed-multi-tenancy).
		// [unk] the answer to someone else's or an unknown profile.
		if !s.world.ownsProfile(c.app, c.profileID) {
			return nil, errNotAuthorized
		}
		c.principal = profileKey(c.profileID)
	}
	return c, nil
}

// group resolves the {group} path segment to a workspace the caller may
// read (any role); unknown and forbidden groups both give 401, as the real
// service does for a wrong or unauthorized group id.
func (s *Server) group(r *http.Request, c *caller) (*Workspace, *apiError) {
	ws := s.world.workspace(r.PathValue("group"))
	if ws == nil {
		return nil, errNotAuthorized
	}
	if apiErr := s.world.require(c, ws, needRead, "read workspace "+ws.ID); apiErr != nil {
		return nil, apiErr
	}
	return ws, nil
}
