package emulator

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Grant types beyond client_credentials.
const (
	grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// grantDeviceCodeShort is what MSAL Go sends (its grant.DeviceCode);
	// Entra takes both.
	grantDeviceCodeShort = "device_code"
	grantJWTBearer       = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantPassword        = "password"
	grantRefreshToken    = "refresh_token"
)

// tokenCall is one token request: its tenant and form.
type tokenCall struct {
	w    http.ResponseWriter
	r    *http.Request
	t    *Tenant
	form url.Values
}

func (tc *tokenCall) fail(s *Server, e *aadError) { s.writeAAD(tc.w, tc.r, e) }

// handleEntraToken is the token endpoint: client credentials (a secret,
// form or HTTP Basic, or a client_assertion), and the user grants: device
// code, password, refresh token and on-behalf-of.
func (s *Server) handleEntraToken(w http.ResponseWriter, r *http.Request) {
	tenantName := r.PathValue("tenant")
	t := s.world.tenant(tenantName)
	if t == nil {
		s.entraError(w, r, http.StatusBadRequest, "invalid_request", 90002, tenantNotFound(tenantName))
		return
	}
	form, ok := s.readForm(w, r)
	if !ok {
		return
	}
	tc := &tokenCall{w: w, r: r, t: t, form: form}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
		s.clientCredentials(tc)
	case grantDeviceCode, grantDeviceCodeShort:
		s.deviceCodeGrant(tc)
	case grantPassword:
		s.passwordGrant(tc)
	case grantRefreshToken:
		s.refreshGrant(tc)
	case grantJWTBearer:
		s.onBehalfOfGrant(tc)
	case "":
		s.entraError(w, r, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
	default:
		s.entraError(w, r, http.StatusBadRequest, "unsupported_grant_type", 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
	}
}

// readForm requires a form body and parses it.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		s.entraError(w, r, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
		return nil, false
	}
	if err := r.ParseForm(); err != nil {
		s.entraError(w, r, http.StatusBadRequest, "invalid_request", 90014, "The request body is not a valid form.")
		return nil, false
	}
	return r.PostForm, true
}

// clientAuth finds the calling app and checks its credential. A public
// client presents none (appidacr "0"); any other app must present a
// secret ("1") or a client assertion ("2").
func (s *Server) clientAuth(tc *tokenCall) (*App, string, *aadError) {
	form := tc.form
	basicID, basicSecret, hasBasic := basicAuth(tc.r)
	clientID := form.Get("client_id")
	if clientID == "" {
		clientID = basicID
	}
	if clientID == "" {
		return nil, "", &aadError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 900144,
			msg: "The request body must contain the following parameter: 'client_id'."}
	}
	app := tc.t.app(clientID)
	if app == nil {
		return nil, "", &aadError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 700016, msg: fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			clientID, tc.r.PathValue("tenant"))}
	}
	secret := form.Get("client_secret")
	if secret == "" && hasBasic {
		secret = basicSecret
	}
	assertion := form.Get("client_assertion")
	switch {
	case assertion != "":
		if form.Get("client_assertion_type") != jwtBearerAssertion {
			return nil, "", &aadError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 90014,
				msg: "The request body must contain the following parameter: 'client_assertion_type'."}
		}
		if e := s.checkClientAssertion(tc.r, tc.t, app, assertion); e != nil {
			return nil, "", e
		}
		return app, "2", nil
	case secret != "":
		if e := s.checkSecret(app, secret); e != nil {
			return nil, "", e
		}
		return app, "1", nil
	case app.PublicClient:
		return app, "0", nil
	}
	return nil, "", &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000218,
		msg: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
}

// clientCredentials is the client-credentials grant: an app-only token
// for one resource's /.default scope.
func (s *Server) clientCredentials(tc *tokenCall) {
	app, method, e := s.clientAuth(tc)
	if e == nil && method == "0" {
		// A public client has no credential to present.
		e = &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000218,
			msg: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	}
	if e != nil {
		tc.fail(s, e)
		return
	}
	w, r := tc.w, tc.r
	resource, code, msg := resourceFromScope(tc.form.Get("scope"))
	if code != 0 {
		s.entraError(w, r, http.StatusBadRequest, "invalid_scope", code, msg)
		return
	}

	lifetime := s.faults.get().tokenLifetime()
	now := s.now()
	exp := now.Add(lifetime)
	token, err := s.issueAccessToken(tc.t, app, resource, method, now, exp)
	if err != nil {
		s.entraError(w, r, http.StatusInternalServerError, "server_error", 90033, "Could not sign the token.")
		return
	}
	s.issued.add(token)
	secs := int(lifetime / time.Second)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   token,
	})
}

// basicAuth reads HTTP Basic client credentials, which RFC 6749 says are
// form-urlencoded before being joined.
func basicAuth(r *http.Request) (id, secret string, ok bool) {
	id, secret, ok = r.BasicAuth()
	if !ok {
		return "", "", false
	}
	if v, err := url.QueryUnescape(id); err == nil {
		id = v
	}
	if v, err := url.QueryUnescape(secret); err == nil {
		secret = v
	}
	return id, secret, true
}

// checkSecret finds the app secret with this value: none is AADSTS7000215,
// an expired one AADSTS7000222 (both 401 invalid_client, with the messages
// Entra returns, for example in github.com/Azure/sap-automation/issues/418
// and github.com/dotnet/sign/issues/849).
func (s *Server) checkSecret(app *App, got string) *aadError {
	var found *Secret
	for i := range app.Secrets {
		if subtle.ConstantTimeCompare([]byte(app.Secrets[i].Value), []byte(got)) == 1 {
			found = &app.Secrets[i]
		}
	}
	switch {
	case found == nil:
		return &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000215, msg: fmt.Sprintf(
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.",
			app.ClientID)}
	case !found.Expires.IsZero() && !s.now().Before(found.Expires):
		return &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000222, msg: fmt.Sprintf(
			"The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
			app.ClientID)}
	}
	return nil
}

// resourceFromScope applies the client-credentials scope rule: after
// dropping the OIDC scopes MSAL always adds, exactly one scope must remain
// and it must end in /.default. It returns the resource (the audience).
func resourceFromScope(scope string) (resource string, aadsts int, msg string) {
	var rest []string
	for _, sc := range strings.Fields(scope) {
		switch strings.ToLower(sc) {
		case "openid", "offline_access", "profile":
		default:
			rest = append(rest, sc)
		}
	}
	switch {
	case len(rest) == 0:
		return "", 70011, "The provided request must include a 'scope' input parameter."
	case len(rest) > 1:
		return "", 70011, fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope %s is not valid. Client credential flows must request a single resource.", strings.Join(rest, " "))
	case !strings.HasSuffix(rest[0], "/.default") || rest[0] == "/.default":
		return "", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", rest[0])
	}
	return strings.TrimSuffix(rest[0], "/.default"), 0, ""
}

// checkClientAssertion verifies a client_assertion JWT. One the app signs
// itself (iss is its client id, or a registered certificate signed it) is
// a certificate credential; any other is a federated token, matched
// against the app's federated credentials.
func (s *Server) checkClientAssertion(r *http.Request, t *Tenant, app *App, assertion string) *aadError {
	tok, err := parseJWT(assertion)
	if err != nil {
		return &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 700027, msg: "Client assertion contains an invalid signature or is not a valid JWT."}
	}
	if !strings.EqualFold(tok.claimString("iss"), app.ClientID) && s.findCert(app, tok) == nil {
		return s.checkFederated(app, tok)
	}
	if msg := s.checkCertAssertion(r, t, app, tok); msg != "" {
		return &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 700027, msg: msg}
	}
	return nil
}

// checkCertAssertion verifies an assertion signed with one of the app's
// certificates and returns "" or the AADSTS700027 reason.
func (s *Server) checkCertAssertion(r *http.Request, t *Tenant, app *App, tok *jwtToken) string {
	cert := s.findCert(app, tok)
	if cert == nil {
		return fmt.Sprintf("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '%s%s']",
			tok.headerString("x5t#S256"), tok.headerString("x5t"))
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return "Client assertion is signed with an unsupported key type."
	}
	if err := tok.verify(pub, true); err != nil {
		return "Client assertion failed signature validation."
	}
	if tok.claimString("iss") != app.ClientID || tok.claimString("sub") != app.ClientID {
		return "Client assertion iss and sub must be the client id of the application."
	}
	if !audienceMatches(tok.audiences(), s.tokenEndpoints(r, t)) {
		return "Client assertion audience claim does not match Realm issuer."
	}
	return s.assertionTimes(tok)
}

// assertionTimes checks exp and nbf (with five minutes of clock skew) and
// returns "" or the reason.
func (s *Server) assertionTimes(tok *jwtToken) string {
	now := s.now().Unix()
	exp, ok := tok.claimUnix("exp")
	if !ok || exp <= now {
		return "Client assertion is expired."
	}
	if nbf, ok := tok.claimUnix("nbf"); ok && nbf > now+300 {
		return "Client assertion is not yet valid."
	}
	return ""
}

// findCert picks the registered certificate named by the x5t#S256 (SHA-256)
// or x5t (SHA-1) thumbprint header.
func (s *Server) findCert(app *App, tok *jwtToken) *x509.Certificate {
	var want []byte
	var sum func(*x509.Certificate) []byte
	if v, ok := decodeThumbprint(tok.headerString("x5t#S256")); ok && tok.headerString("x5t#S256") != "" {
		want, sum = v, func(c *x509.Certificate) []byte { h := sha256.Sum256(c.Raw); return h[:] }
	} else if v, ok := decodeThumbprint(tok.headerString("x5t")); ok && tok.headerString("x5t") != "" {
		want, sum = v, func(c *x509.Certificate) []byte { h := sha1.Sum(c.Raw); return h[:] }
	} else {
		return nil
	}
	for _, c := range s.world.certs[app] {
		if subtle.ConstantTimeCompare(sum(c), want) == 1 {
			return c
		}
	}
	return nil
}

// tokenEndpoints lists the URLs the assertion audience may name: the token
// endpoint under the tenant id and under each of its domains.
func (s *Server) tokenEndpoints(r *http.Request, t *Tenant) []string {
	names := append([]string{t.ID, r.PathValue("tenant")}, t.Domains...)
	var out []string
	for _, base := range []string{baseURL(r), s.url} {
		for _, n := range names {
			out = append(out, base+"/"+n+"/oauth2/v2.0/token")
		}
	}
	return out
}

func audienceMatches(auds, allowed []string) bool {
	for _, a := range auds {
		for _, b := range allowed {
			if strings.EqualFold(strings.TrimSuffix(a, "/"), b) {
				return true
			}
		}
	}
	return false
}

// issueAccessToken signs an app-only access token shaped like Entra's v1
// tokens for Power BI.
func (s *Server) issueAccessToken(t *Tenant, app *App, resource, method string, now, exp time.Time) (string, error) {
	iss := "https://sts.windows.net/" + t.ID + "/"
	return signRS256(s.signKey,
		map[string]any{"typ": "JWT", "alg": "RS256", "kid": s.kid, "x5t": s.kid},
		map[string]any{
			"aud":             resource,
			"iss":             iss,
			"idp":             iss,
			"iat":             now.Unix(),
			"nbf":             now.Unix(),
			"exp":             exp.Unix(),
			"tid":             t.ID,
			"appid":           app.ClientID,
			"app_displayname": app.Name,
			"appidacr":        method,
			"idtyp":           "app",
			"oid":             app.ObjectID,
			"sub":             app.ObjectID,
			"jti":             newUUID(),
			"ver":             "1.0",
		})
}

// errBadToken is any access token this emulator did not issue.
var errBadToken = errors.New("invalid access token")
