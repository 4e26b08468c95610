package emulator

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// The OAuth 2.0 device authorization grant ("Microsoft identity platform
// and the OAuth 2.0 device authorization grant flow", RFC 8628). A client
// gets a device code and a user code; the user "signs in" when a test
// approves the user code ([Server.ApproveDeviceCode] or the admin route);
// meanwhile the client polls the token endpoint.

// Device code defaults, as Entra answers them.
const (
	// DefaultDeviceCodeInterval is the polling interval in seconds.
	DefaultDeviceCodeInterval = 5
	// DeviceCodeLifetime is how long a device code can be redeemed.
	DeviceCodeLifetime = 15 * time.Minute
	// verificationURI is where Entra sends the user (recorded in a live
	// response: learn.microsoft.com/answers/questions/981553).
	verificationURI = "https://www.microsoft.com/link"
)

// deviceState is where a device authorization stands.
type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDeclined
	deviceRedeemed
)

// deviceAuth is one device authorization.
type deviceAuth struct {
	deviceCode string
	userCode   string
	t          *Tenant
	client     *App
	scope      string
	issued     time.Time
	expires    time.Time
	interval   time.Duration
	lastPoll   time.Time
	state      deviceState
	user       *User
}

// deviceCodes holds the device authorizations, by device and user code.
type deviceCodes struct {
	mu       sync.Mutex
	byDevice map[string]*deviceAuth
	byUser   map[string]*deviceAuth
}

func (dc *deviceCodes) add(a *deviceAuth) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.byDevice == nil {
		dc.byDevice, dc.byUser = map[string]*deviceAuth{}, map[string]*deviceAuth{}
	}
	dc.byDevice[a.deviceCode] = a
	dc.byUser[a.userCode] = a
}

// userCodeAlphabet has no vowels or look-alikes, as device codes are read
// and typed by people.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ23456789"

func newUserCode() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = userCodeAlphabet[int(b[i])%len(userCodeAlphabet)]
	}
	return string(b)
}

// handleDeviceCode is POST /{tenant}/oauth2/v2.0/devicecode.
func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
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
	clientID := form.Get("client_id")
	client := t.app(clientID)
	if client == nil {
		s.entraError(w, r, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			clientID, tenantName))
		return
	}
	if _, e := s.resolveScopes(t, form.Get("scope")); e != nil {
		s.writeAAD(w, r, e)
		return
	}
	interval := t.DeviceCodeInterval
	if interval == 0 {
		interval = DefaultDeviceCodeInterval
	}
	now := s.now()
	a := &deviceAuth{deviceCode: randomToken(96), userCode: newUserCode(), t: t, client: client, scope: form.Get("scope"),
		issued: now, expires: now.Add(DeviceCodeLifetime), interval: time.Duration(interval) * time.Second, lastPoll: now}
	s.devices.add(a)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"user_code":        a.userCode,
		"device_code":      a.deviceCode,
		"verification_uri": verificationURI,
		"expires_in":       int(DeviceCodeLifetime / time.Second),
		"interval":         interval,
		"message":          fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", verificationURI, a.userCode),
	})
}

// deviceCodeGrant polls a device code (grant_type
// urn:ietf:params:oauth:grant-type:device_code).
func (s *Server) deviceCodeGrant(tc *tokenCall) {
	client, acr, e := s.clientAuth(tc)
	if e != nil {
		tc.fail(s, e)
		return
	}
	ss, scope, e := s.poll(tc.t, client, tc.form.Get("device_code"))
	if e != nil {
		tc.fail(s, e)
		return
	}
	g, e := s.resolveScopes(tc.t, scope)
	if e == nil {
		e = s.userGate(tc.t, client, ss.user, g, ss.amr, "invalid_grant")
	}
	if e != nil {
		tc.fail(s, e)
		return
	}
	s.grantUserTokens(tc, ss, g, acr)
}

// poll advances one device authorization, answering as Entra's "Expected
// errors" table says: authorization_pending (AADSTS70016),
// authorization_declined, bad_verification_code, expired_token
// (AADSTS70020). [unk] slow_down: RFC 8628 section 3.5's answer to a
// client polling faster than the interval (each adds 5 seconds to it);
// Entra documents no such error, and its AADSTS code here is 70016.
func (s *Server) poll(t *Tenant, client *App, deviceCode string) (session, string, *aadError) {
	s.devices.mu.Lock()
	defer s.devices.mu.Unlock()
	a, ok := s.devices.byDevice[deviceCode]
	if !ok || a.t != t || a.client != client {
		// [unk] AADSTS code.
		return session{}, "", &aadError{status: http.StatusBadRequest, code: "bad_verification_code", aadsts: 70000,
			msg: "The provided value for the input parameter 'device_code' is not valid."}
	}
	now := s.now()
	last := a.lastPoll
	a.lastPoll = now
	switch {
	case a.state == deviceRedeemed:
		// [unk] message.
		return session{}, "", &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 70000,
			msg: "The provided value for the input parameter 'device_code' is not valid. This device code has already been redeemed."}
	case !now.Before(a.expires):
		return session{}, "", &aadError{status: http.StatusBadRequest, code: "expired_token", aadsts: 70020,
			msg: "The provided value for the input parameter 'device_code' is not valid. This device code has expired."}
	case a.state == deviceDeclined:
		// AADSTS65004 is UserDeclinedConsent in the error code reference.
		return session{}, "", &aadError{status: http.StatusBadRequest, code: "authorization_declined", aadsts: 65004,
			msg: "User declined to consent to access the app."}
	case a.state == deviceApproved:
		a.state = deviceRedeemed
		return session{t: t, client: client, user: a.user, amr: []string{"pwd", "mfa"}}, a.scope, nil
	case now.Sub(last) < a.interval:
		a.interval += 5 * time.Second
		return session{}, "", &aadError{status: http.StatusBadRequest, code: "slow_down", aadsts: 70016,
			msg: "The client is polling too quickly and should back off."}
	}
	return session{}, "", &aadError{status: http.StatusBadRequest, code: "authorization_pending", aadsts: 70016,
		msg: "The provided request has not yet been authorized by the user. The user must input their code."}
}

// ErrNoDeviceCode is returned for a user code that is unknown, expired or
// already approved, declined or redeemed.
var ErrNoDeviceCode = errors.New("emulator: no pending device code with this user code")

// ApproveDeviceCode signs user (a UPN or object id of the code's tenant)
// in on the device code's page: the user consents to the client app, and
// the sign-in satisfies multifactor authentication. The client's next
// poll gets the tokens.
func (s *Server) ApproveDeviceCode(userCode, user string) error {
	s.devices.mu.Lock()
	defer s.devices.mu.Unlock()
	a, err := s.pendingLocked(userCode)
	if err != nil {
		return err
	}
	u := a.t.user(user)
	if u == nil {
		return fmt.Errorf("emulator: no user %q in tenant %s", user, a.t.ID)
	}
	a.state, a.user = deviceApproved, u
	s.world.consent.add(a.client, u)
	return nil
}

// DeclineDeviceCode makes the user decline the sign-in: the client's next
// poll gets authorization_declined.
func (s *Server) DeclineDeviceCode(userCode string) error {
	s.devices.mu.Lock()
	defer s.devices.mu.Unlock()
	a, err := s.pendingLocked(userCode)
	if err != nil {
		return err
	}
	a.state = deviceDeclined
	return nil
}

func (s *Server) pendingLocked(userCode string) (*deviceAuth, error) {
	a, ok := s.devices.byUser[strings.ToUpper(strings.TrimSpace(userCode))]
	if !ok || a.state != devicePending || !s.now().Before(a.expires) {
		return nil, ErrNoDeviceCode
	}
	return a, nil
}

// PendingDeviceCode is a device code waiting for its user.
type PendingDeviceCode struct {
	// UserCode is the code the user would type.
	UserCode string `json:"userCode"`
	// TenantID is the tenant of the request.
	TenantID string `json:"tenantId"`
	// ClientID is the app that asked.
	ClientID string `json:"clientId"`
	// Scope is the scope it asked for.
	Scope string `json:"scope"`
	// Expires is when the code expires.
	Expires time.Time `json:"expires"`
}

// PendingDeviceCodes lists the device codes waiting for a user, oldest
// first (for a test that cannot read what its client printed).
func (s *Server) PendingDeviceCodes() []PendingDeviceCode {
	s.devices.mu.Lock()
	defer s.devices.mu.Unlock()
	now := s.now()
	var list []*deviceAuth
	for _, a := range s.devices.byUser {
		if a.state == devicePending && now.Before(a.expires) {
			list = append(list, a)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].issued.Before(list[j].issued) })
	out := make([]PendingDeviceCode, 0, len(list))
	for _, a := range list {
		out = append(out, PendingDeviceCode{UserCode: a.userCode, TenantID: a.t.ID, ClientID: a.client.ClientID, Scope: a.scope, Expires: a.expires})
	}
	return out
}
