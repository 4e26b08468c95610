package powerbi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"golang.org/x/sync/singleflight"
)

// opEntra names Entra token acquisition in errors and logs.
const opEntra = "EntraToken"

type credKind int

const (
	credSecret credKind = iota
	credCert
	credFederated
)

// msalApp is one generation of the MSAL confidential client, built from one
// version of the credential file. Its token cache serves every request until
// the file changes (or a forced refresh replaces it).
type msalApp struct {
	client confidential.Client
	cred   confidential.Credential
	digest [sha256.Size]byte // of the credential file it was built from
}

// credential owns the service principal's Entra token: one shared MSAL client
// (so that its cache and discovery metadata serve all requests), the token in
// use with its expiry (so that a mint can ask for one that outlives the embed
// token), coalesced acquisition (MSAL does not coalesce concurrent cold calls),
// and rotation of the secret or certificate file (Watch).
//
// The token in use is kept here rather than asked of MSAL on every call: MSAL
// serves a cached token until 5 minutes before it expires and never caches one
// that lives 5 minutes or less, so it would neither renew a token that is
// too old for the embed token being minted nor spare Entra when Entra issues
// short-lived tokens. The rules (token):
//
//   - a token is used while it outlives what the call needs (the embed token's
//     lifetime plus a minute, or nothing for metadata calls) and at least
//     entraSafety more;
//   - a token that does not outlive the need is renewed, but never before it
//     has served a quarter of its life and five minutes, so that whatever
//     Entra's token lifetime, renewals are spaced, never one per request (see
//     usable);
//   - concurrent callers share one acquisition.
type credential struct {
	cfg  resolved
	hc   *http.Client
	now  func() time.Time
	log  *slog.Logger
	kind credKind
	path string

	app atomic.Pointer[msalApp]
	mu  sync.Mutex // serialises reloads of the credential file
	sf  flight     // acquisitions, keyed by scope

	// pbi is the token for Power BI; sources are those for the data sources
	// whose identity blobs Embedgate sends (single sign-on), by scope. Each
	// scope has its own token in use and its own renewal state, under the
	// same rules.
	pbi       *scoped
	sourcesMu sync.Mutex
	sources   map[string]*scoped
	// authRenewed is when a Power BI 401/403 last forced a renewal (unix nanos
	// on the Client's clock): one per authRenewHold, so that a principal that
	// is genuinely not authorised costs one Entra call per hold, not per call.
	authRenewed atomic.Int64
}

// scoped is the token in use for one scope, and Entra's last refusal of it.
type scoped struct {
	scope string
	tok   atomic.Pointer[entraToken] // nil before the first
	// rejected remembers Entra's last refusal of the current client for
	// rejectionHold, so that a bad secret does not turn every request into a
	// token POST (and get the app throttled by Entra).
	rejected atomic.Pointer[rejection]
}

// entraToken is an Entra access token and when it expires, on the Client's
// clock.
type entraToken struct {
	value    string
	acquired time.Time
	expires  time.Time
	app      *msalApp // the client generation that acquired it
	// objectID is the token's oid claim: the service principal's object id.
	objectID string
}

// sameCredential reports whether a token acquired by a may serve while b is
// the client in use: both were built from the same credential file. A client
// replaced only to empty MSAL's cache (renew) keeps its tokens good.
func sameCredential(a, b *msalApp) bool { return a == b || a.digest == b.digest }

// life is how long the token was issued for.
func (t *entraToken) life() time.Duration { return t.expires.Sub(t.acquired) }

// Renewal rules of the token in use.
const (
	// entraSafety is the least remaining life a token is used with (or a
	// quarter of its life, if that is less): enough for the call and its
	// retries to reach Power BI before it expires.
	entraSafety = time.Minute
	// minRenewAge is the youngest a token is replaced at for a longer need.
	minRenewAge = 5 * time.Minute
	// mintMargin is added to an embed token's lifetime to get the remaining
	// life its Entra token needs, so that Power BI does not cut the embed token
	// short while the mint is under way.
	mintMargin = time.Minute
	// authRenewHold spaces renewals forced by Power BI refusing a token (401, or
	// a 403 other than the trial quota).
	authRenewHold = 30 * time.Second
)

// rejectionHold is how long a CredentialError is served without asking Entra
// again (unless the credential file changes).
const rejectionHold = 10 * time.Second

type rejection struct {
	app   *msalApp
	err   error
	until time.Time
}

func newCredential(cfg resolved, hc *http.Client, now func() time.Time, log *slog.Logger) (*credential, error) {
	c := &credential{cfg: cfg, hc: hc, now: now, log: log, pbi: &scoped{scope: cfg.scope}, sources: map[string]*scoped{}}
	switch {
	case cfg.ClientSecretFile != "":
		c.kind, c.path = credSecret, cfg.ClientSecretFile
	case cfg.CertificateFile != "":
		c.kind, c.path = credCert, cfg.CertificateFile
	default:
		c.kind, c.path = credFederated, cfg.FederatedTokenFile
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return nil, &CredentialError{Description: err.Error()}
	}
	app, err := c.build(b)
	if err != nil {
		return nil, err
	}
	c.app.Store(app)
	return c, nil
}

// build turns one version of the credential file into an MSAL client. Errors
// name the file, never its content.
func (c *credential) build(content []byte) (*msalApp, error) {
	var cred confidential.Credential
	var err error
	switch c.kind {
	case credSecret:
		s := strings.TrimRight(string(content), "\r\n\t ")
		if s == "" {
			return nil, &CredentialError{Description: c.path + " is empty"}
		}
		cred, err = confidential.NewCredFromSecret(s)
	case credCert:
		cred, err = certCredential(content)
	case credFederated:
		path := c.path
		// Re-read on every assertion: the platform rotates the file (AKS every
		// hour or so), and MSAL asks only when it needs a new Entra token.
		cred = confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) {
			s, err := readSecret(path)
			if err != nil {
				return "", fmt.Errorf("federated token file: %w", err)
			}
			return s, nil
		})
	}
	if err != nil {
		return nil, &CredentialError{Description: c.path + ": " + err.Error()}
	}
	return c.newApp(cred, sha256.Sum256(content))
}

func (c *credential) newApp(cred confidential.Credential, digest [sha256.Size]byte) (*msalApp, error) {
	client, err := confidential.New(c.cfg.authorityHost+"/"+c.cfg.TenantID, c.cfg.ClientID, cred,
		confidential.WithHTTPClient(c.hc),
		confidential.WithInstanceDiscovery(c.cfg.discovery))
	if err != nil {
		return nil, &CredentialError{Description: "msal: " + err.Error()}
	}
	return &msalApp{client: client, cred: cred, digest: digest}, nil
}

// reload reads the credential file again after Watch saw it change, and
// replaces the MSAL client (and so drops its cached token) when the content
// changed. A file that cannot be read or parsed keeps the previous client (and
// is logged): a rotation caught half-written is picked up by its next event.
func (c *credential) reload() {
	if c.kind == credFederated {
		return // the assertion callback reads the file itself
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	app := c.app.Load()
	b, err := os.ReadFile(c.path)
	if err != nil {
		c.log.Warn("powerbi: credential file unreadable, keeping the loaded credential", "file", c.path, "error", err)
		return
	}
	if sha256.Sum256(b) == app.digest {
		return
	}
	next, err := c.build(b)
	if err != nil {
		c.log.Warn("powerbi: rotated credential file is invalid, keeping the loaded credential", "file", c.path, "error", err)
		return
	}
	c.app.Store(next)
	c.log.Info("powerbi: credential file changed, service principal credential reloaded", "file", c.path)
}

// token returns an Entra access token for Power BI that outlives need when
// Entra's token lifetimes allow it (see credential for the rules).
func (c *credential) token(ctx context.Context, need time.Duration) (*entraToken, error) {
	return c.tokenIn(ctx, c.pbi, need)
}

// sourceToken returns an access token for a data source's resource
// (audience), acquired by the service principal with scope
// <audience>/.default: the identity blob of a single sign-on data source. It
// is kept and renewed under the same rules as the Power BI token, on its
// own.
func (c *credential) sourceToken(ctx context.Context, audience string, need time.Duration) (*entraToken, error) {
	scope := strings.TrimSuffix(audience, "/.default") + "/.default"
	c.sourcesMu.Lock()
	sc, ok := c.sources[scope]
	if !ok {
		sc = &scoped{scope: scope}
		c.sources[scope] = sc
	}
	c.sourcesMu.Unlock()
	return c.tokenIn(ctx, sc, need)
}

func (c *credential) tokenIn(ctx context.Context, sc *scoped, need time.Duration) (*entraToken, error) {
	app := c.app.Load()
	if t := sc.tok.Load(); t != nil && sameCredential(t.app, app) && usable(t, c.now(), need) {
		return t, nil
	}
	if rj := sc.rejected.Load(); rj != nil && sameCredential(rj.app, app) && c.now().Before(rj.until) {
		return nil, rj.err
	}
	return shared(ctx, &c.sf, "token|"+sc.scope, opEntra, func(ctx context.Context) (*entraToken, error) {
		// Another flight may have renewed it between our check and this one.
		if t := sc.tok.Load(); t != nil && sameCredential(t.app, app) && usable(t, c.now(), need) {
			return t, nil
		}
		return c.renew(ctx, sc, app)
	})
}

// usable reports whether t may serve a call that needs it to outlive need.
// A token that does not is renewed, but never while it is younger than a
// quarter of its life or minRenewAge: so that when Entra issues tokens too
// short for the need, each is used until it nears expiry, one Entra call per
// token, never one per request; and when Entra's tokens are long enough (60
// to 90 minutes by default) an embed token is cut short by at most a quarter
// of the Entra token's life, and only when its lifetime is close to that life.
func usable(t *entraToken, now time.Time, need time.Duration) bool {
	life := t.life()
	left := t.expires.Sub(now)
	switch {
	case left < min(entraSafety, life/4):
		return false
	case left >= need:
		return true
	}
	return now.Sub(t.acquired) < max(life/4, minRenewAge)
}

// renewAfterRefusal replaces stale, which Power BI refused (403 TokenExpired,
// 401, or a 403 other than the quota), with a new token; at most once per
// authRenewHold. ok is false when the hold forbids it: the caller reports
// Power BI's refusal as it is.
func (c *credential) renewAfterRefusal(ctx context.Context, stale *entraToken) (t *entraToken, ok bool, err error) {
	if cur := c.pbi.tok.Load(); cur != nil && cur.value != stale.value {
		return cur, true, nil // renewed since the refused call was made
	}
	now := c.now()
	if last := c.authRenewed.Load(); last != 0 && now.Sub(time.Unix(0, last)) < authRenewHold {
		return nil, false, nil
	}
	t, err = shared(ctx, &c.sf, "token|"+c.pbi.scope, opEntra, func(ctx context.Context) (*entraToken, error) {
		if cur := c.pbi.tok.Load(); cur != nil && cur.value != stale.value {
			return cur, nil
		}
		c.authRenewed.Store(c.now().UnixNano())
		return c.renew(ctx, c.pbi, c.app.Load())
	})
	return t, err == nil, err
}

// renew acquires a new token and makes it the one in use. MSAL answers from
// its cache while its token has more than 5 minutes left, so when it hands
// back the token being replaced, a new client (with an empty cache and the
// same credential) asks Entra: MSAL has no way to evict one token.
func (c *credential) renew(ctx context.Context, sc *scoped, app *msalApp) (*entraToken, error) {
	t, err := c.acquire(ctx, sc, app)
	if err == nil {
		if old := sc.tok.Load(); old != nil && old.value == t.value {
			fresh, ferr := c.newApp(app.cred, app.digest)
			if ferr != nil {
				return nil, ferr
			}
			c.app.CompareAndSwap(app, fresh)
			t, err = c.acquire(ctx, sc, fresh)
		}
	}
	if err != nil {
		if errors.Is(err, ErrCredential) {
			sc.rejected.Store(&rejection{app: app, err: err, until: c.now().Add(rejectionHold)})
		}
		return nil, err
	}
	sc.tok.Store(t)
	return t, nil
}

func (c *credential) acquire(ctx context.Context, sc *scoped, app *msalApp) (*entraToken, error) {
	// A cold acquisition makes up to three calls (instance discovery, OIDC
	// metadata, token); each is bounded by the http.Client timeout.
	ctx, cancel := context.WithTimeout(ctx, 3*c.cfg.Timeout)
	defer cancel()
	ar, err := app.client.AcquireTokenByCredential(ctx, []string{sc.scope})
	if err != nil {
		err = classifyEntra(err, c.kind, c.path)
		var ce *CredentialError
		if errors.As(err, &ce) {
			if sc != c.pbi {
				ce.Resource = strings.TrimSuffix(sc.scope, "/.default")
			}
			c.log.Error("powerbi: entra rejected the service principal", "op", opEntra, "scope", sc.scope, "status", ce.Status,
				"entra_error", ce.Code, "aadsts", ce.ErrorCodes, "correlation_id", ce.CorrelationID, "error", ce.Description, "hint", ce.Hint)
		} else {
			c.log.Warn("powerbi: entra token acquisition failed", "op", opEntra, "scope", sc.scope, "error", err)
		}
		return nil, err
	}
	// MSAL reports the expiry on the real clock; the Client's clock may be a
	// test's, so the remaining life carries over, not the instant.
	now := c.now()
	t := &entraToken{value: ar.AccessToken, acquired: now, expires: now.Add(time.Until(ar.ExpiresOn)), app: app,
		objectID: objectIDOf(ar.AccessToken)}
	if ar.Metadata.TokenSource == confidential.TokenSource(0) {
		c.log.Debug("powerbi: entra token acquired", "op", opEntra, "scope", sc.scope, "expires_in", t.life().Round(time.Second).String())
	}
	return t, nil
}

// entraError is the OAuth error body of Entra (v2 endpoint).
type entraError struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	CorrelationID string `json:"correlation_id"`
}

// classifyEntra maps an MSAL error to CredentialError (Entra said no, with a
// hint for the operator) or UnavailableError (Entra could not be reached or
// failed).
func classifyEntra(err error, kind credKind, path string) error {
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		var body []byte
		if ce.Resp.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(ce.Resp.Body, 64<<10))
			ce.Resp.Body = io.NopCloser(bytes.NewReader(body))
		}
		var e entraError
		_ = json.Unmarshal(body, &e)
		desc := e.Description
		if i := strings.IndexAny(desc, "\r\n"); i >= 0 {
			desc = desc[:i] // drop the Trace ID / Correlation ID / Timestamp lines
		}
		status := ce.Resp.StatusCode
		if status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout {
			return &UnavailableError{Op: opEntra, Status: status, Err: fmt.Errorf("entra: %s %s", e.Error, desc)}
		}
		if desc == "" && e.Error == "" {
			desc = fmt.Sprintf("HTTP %d from %s", status, redactURL(ce.Req))
		}
		return &CredentialError{Status: status, Code: e.Error, ErrorCodes: e.ErrorCodes, Description: desc,
			CorrelationID: e.CorrelationID, Hint: entraHint(e.ErrorCodes, kind, path)}
	}
	if errors.Is(err, ErrOverloaded) {
		return fmt.Errorf("powerbi: %s: %w", opEntra, ErrOverloaded)
	}
	if isNetworkError(err) {
		return &UnavailableError{Op: opEntra, Err: err}
	}
	return &CredentialError{Description: err.Error()}
}

// entraHint says what an operator does about the AADSTS errors a service
// principal most often meets (Microsoft Entra authentication and
// authorization error codes).
func entraHint(codes []int, kind credKind, path string) string {
	for _, code := range codes {
		switch code {
		case 7000215:
			return "Entra refused the client secret: " + path + " must hold the secret's Value (shown once, when it is created), not its Secret ID"
		case 7000222:
			return "the client secret in " + path + " has expired: create a new secret in the app registration and write its value there"
		case 70021:
			iss, sub, aud := assertionClaims(path)
			return fmt.Sprintf("no federated identity credential of the app matches the token in %s (issuer %q, subject %q, audience %q): add one with exactly that issuer and subject", path, iss, sub, aud)
		case 700016:
			return "Entra has no app with this client_id in this tenant: check powerbi.tenant_id, powerbi.client_id and powerbi.cloud"
		case 90002:
			return "Entra does not know this tenant: check powerbi.tenant_id and powerbi.cloud"
		case 700027:
			if kind == credCert {
				return "the certificate in " + path + " is not registered on the app (or its key does not match): upload it under Certificates & secrets"
			}
		}
	}
	return ""
}

// assertionClaims reads the issuer, subject and audience of the federated
// token in path without verifying it (only to name them in a hint; the token
// itself is never logged).
func assertionClaims(path string) (iss, sub, aud string) {
	raw, err := readSecret(path)
	if err != nil {
		return "", "", ""
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
	}
	if !jwtClaims(raw, &c) {
		return "", "", ""
	}
	var auds []string
	if json.Unmarshal(c.Aud, &auds) != nil {
		var one string
		_ = json.Unmarshal(c.Aud, &one)
		auds = []string{one}
	}
	return c.Iss, c.Sub, strings.Join(auds, ",")
}

// objectIDOf reads the oid claim of an access token Entra issued to the
// service principal: its object id, the username Power BI requires in the
// effective identity for Azure Analysis Services. Entra's access tokens for
// Power BI are JWTs; "" when the token is not one, or has no oid.
func objectIDOf(accessToken string) string {
	var c struct {
		OID string `json:"oid"`
	}
	jwtClaims(accessToken, &c)
	return c.OID
}

// jwtClaims decodes the payload of a JWT into v, without verifying it.
func jwtClaims(raw string, v any) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return false
	}
	return json.Unmarshal(payload, v) == nil
}

func redactURL(r *http.Request) string {
	if r == nil || r.URL == nil {
		return "entra"
	}
	return r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
}

func isNetworkError(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// flight is a singleflight.Group that also counts the callers waiting on it,
// which makes coalescing observable (tests, debugging).
type flight struct {
	g       singleflight.Group
	waiting atomic.Int64

	mu    sync.Mutex
	byKey map[string]int // callers waiting, per key
}

// callers is how many callers wait for key's flight right now.
func (f *flight) callers(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byKey[key]
}

func (f *flight) join(key string, d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byKey == nil {
		f.byKey = map[string]int{}
	}
	if f.byKey[key] += d; f.byKey[key] == 0 {
		delete(f.byKey, key)
	}
}

// shared runs fn once for all concurrent callers with the same key. fn runs on a
// context detached from any one caller's cancellation (so one impatient caller
// does not fail the others); each caller still returns as soon as its own ctx
// is done.
func shared[T any](ctx context.Context, f *flight, key, op string, fn func(context.Context) (T, error)) (T, error) {
	if err := ctx.Err(); err != nil {
		// The caller has gone: start nothing on its behalf. (A flight
		// already under way goes on for the callers still waiting.)
		var zero T
		return zero, fmt.Errorf("powerbi: %s: %w", op, err)
	}
	f.join(key, 1)
	defer f.join(key, -1)
	ch := f.g.DoChan(key, func() (any, error) {
		return fn(context.WithoutCancel(ctx))
	})
	f.waiting.Add(1)
	defer f.waiting.Add(-1)
	select {
	case res := <-ch:
		if res.Err != nil {
			var zero T
			return zero, res.Err
		}
		return res.Val.(T), nil
	case <-ctx.Done():
		var zero T
		return zero, fmt.Errorf("powerbi: %s: %w", op, ctx.Err())
	}
}
