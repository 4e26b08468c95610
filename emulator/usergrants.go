package emulator

import (
	"crypto/subtle"
	"fmt"
	"net/http"
)

// passwordGrant is the resource owner password credentials grant
// ("Microsoft identity platform and OAuth 2.0 Resource Owner Password
// Credentials"): no interaction, so no MFA and no consent prompt.
func (s *Server) passwordGrant(tc *tokenCall) {
	client, acr, e := s.clientAuth(tc)
	if e != nil {
		tc.fail(s, e)
		return
	}
	name := tc.form.Get("username")
	u := tc.t.user(name)
	switch {
	case u == nil:
		e = &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 50034, msg: fmt.Sprintf(
			"The user account {EmailHidden} does not exist in the %s directory. To sign into this application, the account must be added to the directory.", tc.t.ID)}
	case u.Password == "" || subtle.ConstantTimeCompare([]byte(u.Password), []byte(tc.form.Get("password"))) != 1:
		e = &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 50126,
			msg: "Error validating credentials due to invalid username or password."}
	}
	if e != nil {
		tc.fail(s, e)
		return
	}
	ss := session{t: tc.t, client: client, user: u, amr: []string{"pwd"}}
	g, e := s.resolveScopes(tc.t, tc.form.Get("scope"))
	if e == nil {
		e = s.userGate(tc.t, client, u, g, ss.amr, "invalid_grant")
	}
	if e != nil {
		tc.fail(s, e)
		return
	}
	s.grantUserTokens(tc, ss, g, acr)
}

// refreshGrant redeems a refresh token for any resource the client may
// reach for the user, with the sign-in's authentication methods.
func (s *Server) refreshGrant(tc *tokenCall) {
	client, acr, e := s.clientAuth(tc)
	if e != nil {
		tc.fail(s, e)
		return
	}
	rt, ok := s.refresh.get(tc.form.Get("refresh_token"))
	switch {
	case !ok:
		e = &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 9002313, msg: "Invalid request. Request is malformed or invalid."}
	case rt.t != tc.t || rt.client != client:
		// [unk] message.
		e = &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 70000, msg: "Provided grant is invalid or malformed: the refresh token was issued to another client or tenant."}
	case !s.now().Before(rt.expires):
		e = &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 700082, msg: fmt.Sprintf(
			"The refresh token has expired due to inactivity. The token was issued on %s and was inactive for 90.00:00:00.",
			rt.expires.Add(-RefreshTokenLifetime).UTC().Format("2006-01-02T15:04:05.0000000Z"))}
	}
	if e != nil {
		tc.fail(s, e)
		return
	}
	g, e := s.resolveScopes(tc.t, tc.form.Get("scope"))
	if e == nil {
		e = s.userGate(tc.t, client, rt.user, g, rt.amr, "invalid_grant")
	}
	if e != nil {
		tc.fail(s, e)
		return
	}
	s.grantUserTokens(tc, rt.session, g, acr)
}
