package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// RefreshTokenLifetime is how long a refresh token stays valid without use
// (Entra's default inactivity window is 90 days, "Refresh tokens in the
// Microsoft identity platform").
const RefreshTokenLifetime = 90 * 24 * time.Hour

// session is what a user sign-in carries from grant to grant: who, to
// which client, how they authenticated.
type session struct {
	t      *Tenant
	client *App
	user   *User
	amr    []string // pwd, mfa
}

// refreshToken is a refresh token's server-side record.
type refreshToken struct {
	session
	expires time.Time
}

// refreshStore keeps the refresh tokens handed out, by value.
type refreshStore struct {
	mu     sync.Mutex
	tokens map[string]*refreshToken
}

func (rs *refreshStore) add(value string, rt *refreshToken) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.tokens == nil {
		rs.tokens = map[string]*refreshToken{}
	}
	rs.tokens[value] = rt
}

func (rs *refreshStore) get(value string) (*refreshToken, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rt, ok := rs.tokens[value]
	return rt, ok
}

// randomToken is an opaque credential (refresh token, device code).
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// issueUserAccessToken signs a delegated access token for the session's
// user. The format follows the resource: v1 (iss sts.windows.net, aud the
// resource or identifier URI, appid, upn) for Power BI, Microsoft
// resources and APIs that accept v1; v2 (iss .../v2.0 on the emulator
// host, aud the API's client id, azp, preferred_username) for APIs with
// access_token_version 2 ("Microsoft identity platform access tokens").
func (s *Server) issueUserAccessToken(r *http.Request, ss session, g scopeGrant, acr string, now, exp time.Time) (string, error) {
	t, u := ss.t, ss.user
	claims := map[string]any{
		"aud":   g.audience(),
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   exp.Unix(),
		"tid":   t.ID,
		"oid":   u.ObjectID,
		"sub":   u.ObjectID,
		"name":  u.Name,
		"scp":   strings.Join(g.scopes, " "),
		"amr":   ss.amr,
		"idtyp": "user",
		"uti":   newUUID(),
	}
	if g.api != nil && g.api.API.AccessTokenVersion == 2 {
		claims["iss"] = baseURL(r) + "/" + t.ID + "/v2.0"
		claims["azp"] = ss.client.ClientID
		claims["azpacr"] = acr
		claims["preferred_username"] = u.UPN
		claims["ver"] = "2.0"
	} else {
		iss := "https://sts.windows.net/" + t.ID + "/"
		claims["iss"] = iss
		claims["idp"] = iss
		claims["appid"] = ss.client.ClientID
		claims["app_displayname"] = ss.client.Name
		claims["appidacr"] = acr
		claims["upn"] = u.UPN
		claims["unique_name"] = u.UPN
		claims["ver"] = "1.0"
	}
	return signRS256(s.signKey, map[string]any{"typ": "JWT", "alg": "RS256", "kid": s.kid, "x5t": s.kid}, claims)
}

// issueIDToken signs the ID token of a sign-in (v2, issuer on the
// emulator host as the OpenID configuration says).
func (s *Server) issueIDToken(r *http.Request, ss session, now, exp time.Time) (string, error) {
	t, u := ss.t, ss.user
	return signRS256(s.signKey, map[string]any{"typ": "JWT", "alg": "RS256", "kid": s.kid}, map[string]any{
		"aud":                ss.client.ClientID,
		"iss":                baseURL(r) + "/" + t.ID + "/v2.0",
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                exp.Unix(),
		"name":               u.Name,
		"oid":                u.ObjectID,
		"preferred_username": u.UPN,
		"sub":                u.ObjectID,
		"tid":                t.ID,
		"ver":                "2.0",
	})
}

// grantUserTokens answers a user grant: the access token, and as the
// scopes asked, an ID token, client_info and a refresh token.
func (s *Server) grantUserTokens(tc *tokenCall, ss session, g scopeGrant, acr string) {
	w, r := tc.w, tc.r
	lifetime := s.faults.get().tokenLifetime()
	now := s.now()
	exp := now.Add(lifetime)
	access, err := s.issueUserAccessToken(r, ss, g, acr, now, exp)
	if err != nil {
		s.entraError(w, r, http.StatusInternalServerError, "server_error", 90033, "Could not sign the token.")
		return
	}
	s.issued.add(access)
	secs := int(lifetime / time.Second)
	body := map[string]any{
		"token_type":     "Bearer",
		"scope":          g.scopeList(),
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   access,
	}
	if g.openid {
		id, err := s.issueIDToken(r, ss, now, exp)
		if err == nil {
			s.issued.add(id)
			body["id_token"] = id
		}
	}
	if tc.form.Get("client_info") == "1" {
		body["client_info"] = clientInfo(ss.user, ss.t)
	}
	if g.offline {
		value := randomToken(48)
		s.refresh.add(value, &refreshToken{session: ss, expires: now.Add(RefreshTokenLifetime)})
		s.issued.add(value)
		body["refresh_token"] = value
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, body)
}
