package powerbi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	stamp  fileStamp
	digest [sha256.Size]byte
}

// fileStamp is the cheap change detector for credential files.
type fileStamp struct {
	modTime time.Time
	size    int64
}

// credential owns the service principal's Entra token: one shared MSAL client
// (so its cache serves all requests), singleflight around acquisition (MSAL does
// not coalesce concurrent cold calls), and rotation of the secret/certificate
// file, checked at most every credentialRecheck on use.
type credential struct {
	cfg  resolved
	hc   *http.Client
	now  func() time.Time
	log  *slog.Logger
	kind credKind
	path string

	app       atomic.Pointer[msalApp]
	lastCheck atomic.Int64 // unix nanos of the last rotation check
	mu        sync.Mutex   // serialises rotation checks
	sf        flight

	// rejected remembers Entra's last refusal of the current client for
	// rejectionHold, so that a bad secret does not turn every request into a
	// token POST (and get the app throttled by Entra).
	rejected atomic.Pointer[rejection]
}

// rejectionHold is how long a CredentialError is served without asking Entra
// again (unless the credential file changes).
const rejectionHold = 10 * time.Second

type rejection struct {
	app   *msalApp
	err   error
	until time.Time
}

func newCredential(cfg resolved, hc *http.Client, now func() time.Time, log *slog.Logger) (*credential, error) {
	c := &credential{cfg: cfg, hc: hc, now: now, log: log}
	switch {
	case cfg.ClientSecretFile != "":
		c.kind, c.path = credSecret, cfg.ClientSecretFile
	case cfg.CertificateFile != "":
		c.kind, c.path = credCert, cfg.CertificateFile
	default:
		c.kind, c.path = credFederated, cfg.FederatedTokenFile
	}
	st, err := os.Stat(c.path)
	if err != nil {
		return nil, &CredentialError{Description: err.Error()}
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return nil, &CredentialError{Description: err.Error()}
	}
	app, err := c.build(b, stampOf(st))
	if err != nil {
		return nil, err
	}
	c.app.Store(app)
	c.lastCheck.Store(now().UnixNano())
	return c, nil
}

func stampOf(st os.FileInfo) fileStamp { return fileStamp{st.ModTime(), st.Size()} }

// build turns one version of the credential file into an MSAL client. Errors
// name the file, never its content.
func (c *credential) build(content []byte, st fileStamp) (*msalApp, error) {
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
	return c.newApp(cred, st, sha256.Sum256(content))
}

func (c *credential) newApp(cred confidential.Credential, st fileStamp, digest [sha256.Size]byte) (*msalApp, error) {
	client, err := confidential.New(c.cfg.authorityHost+"/"+c.cfg.TenantID, c.cfg.ClientID, cred,
		confidential.WithHTTPClient(c.hc),
		confidential.WithInstanceDiscovery(c.cfg.discovery))
	if err != nil {
		return nil, &CredentialError{Description: "msal: " + err.Error()}
	}
	return &msalApp{client: client, cred: cred, stamp: st, digest: digest}, nil
}

// current returns the MSAL client to use, first picking up a rotated
// credential file if the last check is older than credentialRecheck. A file
// that cannot be read or parsed keeps the previous client (and is logged).
func (c *credential) current() *msalApp {
	app := c.app.Load()
	if c.kind == credFederated {
		return app // the callback reads the file itself
	}
	now := c.now()
	if now.Sub(time.Unix(0, c.lastCheck.Load())) < credentialRecheck {
		return app
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(time.Unix(0, c.lastCheck.Load())) < credentialRecheck {
		return c.app.Load()
	}
	c.lastCheck.Store(now.UnixNano())
	app = c.app.Load()
	st, err := os.Stat(c.path)
	if err != nil {
		c.log.Warn("powerbi: credential file unreadable, keeping the loaded credential", "file", c.path, "error", err)
		return app
	}
	if stampOf(st) == app.stamp {
		return app
	}
	b, err := os.ReadFile(c.path)
	if err != nil {
		c.log.Warn("powerbi: credential file unreadable, keeping the loaded credential", "file", c.path, "error", err)
		return app
	}
	if sha256.Sum256(b) == app.digest {
		next := *app
		next.stamp = stampOf(st)
		c.app.Store(&next)
		return &next
	}
	next, err := c.build(b, stampOf(st))
	if err != nil {
		c.log.Warn("powerbi: rotated credential file is invalid, keeping the loaded credential", "file", c.path, "error", err)
		return app
	}
	c.app.Store(next)
	c.log.Info("powerbi: credential file changed, service principal credential reloaded", "file", c.path)
	return next
}

// token returns an Entra access token for Power BI, from MSAL's cache when it
// can. Concurrent callers share one acquisition.
func (c *credential) token(ctx context.Context) (string, error) {
	app := c.current()
	if rj := c.rejected.Load(); rj != nil && rj.app == app && c.now().Before(rj.until) {
		return "", rj.err
	}
	key := fmt.Sprintf("%p", app)
	return shared(ctx, &c.sf, key, opEntra, func(ctx context.Context) (string, error) {
		tok, err := c.acquire(ctx, app)
		if errors.Is(err, ErrCredential) {
			c.rejected.Store(&rejection{app: app, err: err, until: c.now().Add(rejectionHold)})
		}
		return tok, err
	})
}

// refresh returns a token other than stale, replacing the MSAL client (and so
// its cache) when the current one would still serve stale. MSAL has no way to
// evict one token; a new client with the same credential is the simple, safe
// way to force a round trip to Entra. Returns stale if Entra hands it back.
func (c *credential) refresh(ctx context.Context, stale string) (string, error) {
	sum := sha256.Sum256([]byte(stale))
	return shared(ctx, &c.sf, "refresh:"+hex.EncodeToString(sum[:]), opEntra, func(ctx context.Context) (string, error) {
		app := c.current()
		if tok, err := c.acquire(ctx, app); err != nil || tok != stale {
			return tok, err
		}
		fresh, err := c.newApp(app.cred, app.stamp, app.digest)
		if err != nil {
			return "", err
		}
		c.app.CompareAndSwap(app, fresh)
		return c.acquire(ctx, fresh)
	})
}

func (c *credential) acquire(ctx context.Context, app *msalApp) (string, error) {
	// A cold acquisition makes up to three calls (instance discovery, OIDC
	// metadata, token); each is bounded by the http.Client timeout.
	ctx, cancel := context.WithTimeout(ctx, 3*c.cfg.Timeout)
	defer cancel()
	ar, err := app.client.AcquireTokenByCredential(ctx, []string{c.cfg.scope})
	if err != nil {
		err = classifyEntra(err)
		var ce *CredentialError
		if errors.As(err, &ce) {
			c.log.Error("powerbi: entra rejected the service principal", "op", opEntra, "status", ce.Status,
				"entra_error", ce.Code, "aadsts", ce.ErrorCodes, "correlation_id", ce.CorrelationID, "error", ce.Description)
		} else {
			c.log.Warn("powerbi: entra token acquisition failed", "op", opEntra, "error", err)
		}
		return "", err
	}
	if ar.Metadata.TokenSource == confidential.TokenSource(0) {
		c.log.Debug("powerbi: entra token acquired", "op", opEntra, "expires_on", ar.ExpiresOn)
	}
	return ar.AccessToken, nil
}

// entraError is the OAuth error body of Entra (v2 endpoint).
type entraError struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	ErrorCodes    []int  `json:"error_codes"`
	CorrelationID string `json:"correlation_id"`
}

// classifyEntra maps an MSAL error to CredentialError (Entra said no) or
// UnavailableError (Entra could not be reached or failed).
func classifyEntra(err error) error {
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
		return &CredentialError{Status: status, Code: e.Error, ErrorCodes: e.ErrorCodes, Description: desc, CorrelationID: e.CorrelationID}
	}
	if isNetworkError(err) {
		return &UnavailableError{Op: opEntra, Err: err}
	}
	return &CredentialError{Description: err.Error()}
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
}

// shared runs fn once for all concurrent callers with the same key. fn runs on a
// context detached from any one caller's cancellation (so one impatient caller
// does not fail the others); each caller still returns as soon as its own ctx
// is done.
func shared[T any](ctx context.Context, f *flight, key, op string, fn func(context.Context) (T, error)) (T, error) {
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
