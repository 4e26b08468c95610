package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
)

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // embed URLs keep their literal '&'
	_ = enc.Encode(v)
}

// baseURL is the scheme and host the client used, so issuer and endpoints
// match the authority it was configured with (127.0.0.1 or localhost).
func baseURL(r *http.Request) string { return "https://" + r.Host }

// handleOIDC serves the tenant's OpenID configuration, on the emulator's
// own host (MSAL requires the issuer host to equal the authority host).
func (s *Server) handleOIDC(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	t := s.world.tenant(name)
	if t == nil {
		s.entraError(w, r, http.StatusBadRequest, "invalid_tenant", 90002, tenantNotFound(name))
		return
	}
	base := baseURL(r) + "/" + t.ID
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "appid"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

// handleInstanceDiscovery answers MSAL's instance discovery with the
// emulator host as the only alias.
func (s *Server) handleInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	tenant := "common"
	if u, err := url.Parse(r.URL.Query().Get("authorization_endpoint")); err == nil {
		if seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); seg != "" {
			tenant = seg
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": baseURL(r) + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": r.Host,
			"preferred_cache":   r.Host,
			"aliases":           []string{r.Host},
		}},
	})
}

// handleJWKS publishes the key that signs access tokens.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("tenant")
	t := s.world.tenant(name)
	if t == nil {
		s.entraError(w, r, http.StatusBadRequest, "invalid_tenant", 90002, tenantNotFound(name))
		return
	}
	pub := s.signKey.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty":    "RSA",
		"use":    "sig",
		"kid":    s.kid,
		"x5t":    s.kid,
		"n":      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"issuer": baseURL(r) + "/" + t.ID + "/v2.0",
	}}})
}

func tenantNotFound(name string) string {
	return fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", name)
}

// aadError is an Entra ID error reply: status, error, AADSTS code and
// message, and for user flows a suberror and a claims challenge.
type aadError struct {
	status   int
	code     string
	aadsts   int
	msg      string
	suberror string // consent_required, basic_action, ...
	claims   string // a claims challenge (JSON)
}

// writeAAD writes e in the real shape.
func (s *Server) writeAAD(w http.ResponseWriter, r *http.Request, e *aadError) {
	extra := map[string]any{}
	if e.suberror != "" {
		extra["suberror"] = e.suberror
	}
	if e.claims != "" {
		extra["claims"] = e.claims
	}
	s.entraReply(w, r, e.status, e.code, e.aadsts, e.msg, extra)
}

// entraError writes an Entra ID (AADSTS) error in the real shape.
func (s *Server) entraError(w http.ResponseWriter, r *http.Request, status int, code string, aadsts int, msg string) {
	s.entraReply(w, r, status, code, aadsts, msg, nil)
}

func (s *Server) entraReply(w http.ResponseWriter, r *http.Request, status int, code string, aadsts int, msg string, extra map[string]any) {
	traceID := requestID(r)
	correlationID := r.Header.Get("client-request-id")
	if !isUUID(correlationID) {
		correlationID = newUUID()
	}
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	body := map[string]any{
		"error": code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			aadsts, msg, traceID, correlationID, ts),
		"error_codes":    []int{aadsts},
		"timestamp":      ts,
		"trace_id":       traceID,
		"correlation_id": correlationID,
		"error_uri":      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}
