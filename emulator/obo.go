package emulator

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// onBehalfOfGrant is the On-Behalf-Of flow ("Microsoft identity platform
// and OAuth 2.0 On-Behalf-Of flow"): a confidential client redeems a
// user's access token for its own API (the assertion) for a token to
// another resource, for the same user.
func (s *Server) onBehalfOfGrant(tc *tokenCall) {
	client, acr, e := s.clientAuth(tc)
	if e == nil && acr == "0" {
		e = &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000218,
			msg: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	}
	if e != nil {
		tc.fail(s, e)
		return
	}
	for _, p := range []string{"requested_token_use", "assertion"} {
		if tc.form.Get(p) == "" {
			tc.fail(s, &aadError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 900144,
				msg: fmt.Sprintf("The request body must contain the following parameter: '%s'.", p)})
			return
		}
	}
	if use := tc.form.Get("requested_token_use"); use != "on_behalf_of" {
		// [unk] message.
		tc.fail(s, &aadError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 9002313,
			msg: fmt.Sprintf("Invalid request. The value '%s' of requested_token_use is not valid; it must be on_behalf_of.", use)})
		return
	}
	u, amr, e := s.checkUserAssertion(tc, client, tc.form.Get("assertion"))
	if e != nil {
		tc.fail(s, e)
		return
	}
	ss := session{t: tc.t, client: client, user: u, amr: amr}
	g, e := s.resolveScopes(tc.t, tc.form.Get("scope"))
	if e == nil {
		e = s.userGate(tc.t, client, u, g, amr, "interaction_required")
	}
	if e != nil {
		tc.fail(s, e)
		return
	}
	s.grantUserTokens(tc, ss, g, acr)
}

// checkUserAssertion validates the assertion of an OBO request: an access
// token this Entra ID signed, issued by the request's tenant, not
// expired, for the calling app (its client id or Application ID URI), and
// a user's ("the OBO flow only works for user principals"). It returns the
// user and the authentication methods of the sign-in.
func (s *Server) checkUserAssertion(tc *tokenCall, client *App, assertion string) (*User, []string, *aadError) {
	invalid := func(msg string) (*User, []string, *aadError) {
		return nil, nil, &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 50013, msg: msg}
	}
	tok, err := parseJWT(assertion)
	if err == nil && tok.headerString("kid") != s.kid {
		err = errBadToken
	}
	if err == nil {
		err = tok.verify(&s.signKey.PublicKey, false)
	}
	if err != nil {
		return invalid("Assertion failed signature validation. [Reason - The key was not found.]")
	}
	tid, iss := tok.claimString("tid"), tok.claimString("iss")
	v1 := "https://sts.windows.net/" + tc.t.ID + "/"
	if !strings.EqualFold(tid, tc.t.ID) || (iss != v1 && !strings.HasSuffix(iss, "/"+tc.t.ID+"/v2.0")) {
		// [unk] message.
		return invalid(fmt.Sprintf("Assertion is not valid: its issuer '%s' is not tenant '%s'.", iss, tc.t.ID))
	}
	exp, ok := tok.claimUnix("exp")
	now := s.now()
	if !ok || !now.Before(time.Unix(exp, 0)) {
		return nil, nil, &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 500133, msg: fmt.Sprintf(
			"Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: %s, expiry time of assertion %s.",
			now.UTC().Format("2006-01-02T15:04:05.0000000Z"), time.Unix(exp, 0).UTC().Format("2006-01-02T15:04:05.0000000Z"))}
	}
	allowed := []string{client.ClientID}
	if client.API != nil {
		allowed = append(allowed, client.apiURI())
	}
	if !audienceMatches(tok.audiences(), allowed) {
		aud := strings.Join(tok.audiences(), ",")
		return invalid(fmt.Sprintf(
			"Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '%s' and the expected audience is '%s' or one of the Application Uris of this application with App ID '%s'(%s). The downstream client must request a token for the expected audience (the application that made the OBO request) and this application should use that token as the assertion.",
			aud, client.ClientID, client.ClientID, client.Name))
	}
	u := tc.t.user(tok.claimString("oid"))
	if tok.claimString("idtyp") != "user" || u == nil {
		// [unk] message.
		return invalid("Assertion is not a user's access token: the On-Behalf-Of flow only works for user principals.")
	}
	var amr []string
	if list, ok := tok.claims["amr"].([]any); ok {
		for _, m := range list {
			if s, ok := m.(string); ok {
				amr = append(amr, s)
			}
		}
	}
	return u, amr, nil
}
