// Package powerbi is Embedgate's gateway to Entra ID and the Power BI REST API
// (app owns data). It exists so that the rest of the service can ask for "one
// embed token for these items, with this RLS identity" and get back either a
// token or a typed error, while this package alone knows the wire formats, the
// service principal's credential and its rotation, the caches, and the retry
// rules.
//
// One request shape serves every item kind (TokenRequest, with Items of a Kind):
// Client.Models says what a token would open, dataset by dataset, with the kind
// of model each is (model.go), for the policy to decide on
// (TokenRequest.Models); Client.Issue mints, Client.Plan says what Issue would
// send. Per request it costs at most: zero Entra calls (the token in use is
// shared by every request; renewed only when it would not outlive the embed
// token, see credential.go; the identity blobs of single sign-on data sources
// likewise, one token per audience), zero metadata calls when the items,
// datasets and their data sources are cached (MetadataTTL, keyed by workspace
// + profile, concurrent misses coalesced), and one GenerateToken POST: V2 for
// all reports of the request, whatever their workspaces, with the datasets
// that composite models and paginated reports read; the V1 report route for a
// lone paginated report that reads no Power BI dataset; the V1 dashboard or
// tile route. Identical requests share a token: concurrent ones one POST,
// later ones the minted token until its RefreshAt (unless
// Config.DisableTokenCache), and with WithSharedTokens across the replicas
// of a fleet: one mint per grant and refresh window for all of them.
//
// Errors are classified by sentinels (ErrNotFound, ErrForbidden,
// ErrQuotaExceeded, ...) that the typed errors (*APIError, *ThrottledError,
// *CredentialError, *UnavailableError, *PreconditionError, *UnsupportedError,
// *LimitError)
// match with errors.Is; the server maps them to gRPC codes in one place. A
// caller's own cancellation or deadline is returned wrapped, so errors.Is(err,
// context.Canceled / context.DeadlineExceeded) holds.
//
// Nothing here logs or returns an access token (an identity blob is one), an
// embed token, a client secret, a key or an assertion: Plan shows each blob
// as RedactedBlob.
package powerbi

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Client mints embed tokens. It is safe for concurrent use; build one per
// process with New and share it.
type Client struct {
	cfg     resolved
	hc      *http.Client
	log     *slog.Logger
	now     func() time.Time
	backoff func(attempt int) time.Duration
	cred    *credential     // the service principal's; nil for a user's Client
	user    UserTokenSource // NewAsUser: the signed-in user's tokens
	tracer  trace.Tracer    // observe.go

	meta   metaCaches
	metaSF flight

	tokens *tokenCache // nil when Config.DisableTokenCache

	keys   keyCache     // users' tenants' signing keys (tenantkeys.go)
	mintSF flight       // identical concurrent mints, keyed by grantKey
	fleet  SharedTokens // nil: tokens are cached per process (shared.go)

	users userTokens             // users' On-Behalf-Of tokens (obo.go)
	oboSF flight                 // identical concurrent exchanges, keyed by assertion
	obo   atomic.Pointer[oboApp] // the On-Behalf-Of MSAL client
}

// Option customises New; the zero set of options is production behaviour.
type Option func(*options)

type options struct {
	logger  *slog.Logger
	hc      *http.Client
	now     func() time.Time
	backoff func(attempt int) time.Duration
	observe func(UpstreamCall)   // WithUpstreamObserver
	tp      trace.TracerProvider // WithTracerProvider
	shared  SharedTokens         // WithSharedTokens
}

// WithLogger sets the logger for upstream calls and credential events
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient replaces the tuned http.Client used for both Entra and Power
// BI (tests, or a proxy-specific transport). ca_file is then ignored.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// WithClock replaces time.Now for the metadata TTL, the Entra token's age and
// expiry, Retry-After dates, EmbedToken.Issued and the embed-token cache's
// refresh points, so that tests never sleep. MSAL's own cache keeps the real
// clock; the gateway decides renewals on this one.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New validates cfg and builds the Client: one http.Client (connection reuse,
// TLS 1.2+, system roots plus ca_file) and one MSAL confidential client from
// the credential file. It makes no network call; use CheckCredential for that.
func New(cfg Config, opts ...Option) (*Client, error) {
	if ps := cfg.Validate(); len(ps) > 0 {
		return nil, errProblems(ps)
	}
	o := options{logger: slog.Default(), now: time.Now, backoff: jitteredBackoff}
	for _, opt := range opts {
		opt(&o)
	}
	r := cfg.resolve()
	hc := o.hc
	if hc == nil {
		var err error
		if hc, err = newHTTPClient(r); err != nil {
			return nil, err
		}
	}
	hc = instrument(limited(hc, r.MaxConcurrency), o)
	cred, err := newCredential(r, hc, o.now, o.logger)
	if err != nil {
		return nil, err
	}
	return &Client{
		cfg:     r,
		hc:      hc,
		log:     o.logger,
		now:     o.now,
		backoff: o.backoff,
		cred:    cred,
		tracer:  newTracer(o.tp),
		meta:    newMetaCaches(),
		tokens:  newTokenCache(r.DisableTokenCache),
		fleet:   o.shared,
	}, nil
}

// Close closes the client's idle connections to Entra ID and Power BI.
// Calls still running finish; the client must not be used after.
func (cl *Client) Close() { cl.hc.CloseIdleConnections() }

// limited returns hc behind a bulkhead of max requests in flight per host.
func limited(hc *http.Client, max int) *http.Client {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c := *hc
	c.Transport = newBulkhead(base, max)
	return &c
}

// newHTTPClient builds the one client for every upstream call: keep-alive
// connections to the two hosts, HTTP/2 when offered, TLS 1.2 minimum, and the
// system roots plus ca_file.
func newHTTPClient(r resolved) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if r.CAFile != "" {
		b, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, err
		}
		pool.AppendCertsFromPEM(b)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	tr.ForceAttemptHTTP2 = true
	tr.MaxIdleConns = 64
	tr.MaxIdleConnsPerHost = 32
	tr.IdleConnTimeout = 90 * time.Second
	tr.TLSHandshakeTimeout = r.Timeout
	tr.ResponseHeaderTimeout = r.Timeout
	return &http.Client{Transport: tr, Timeout: r.Timeout}, nil
}
