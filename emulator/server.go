package emulator

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultAddr is the listen address when Config.Addr is empty: loopback,
// any free port.
const DefaultAddr = "127.0.0.1:0"

// Config configures Start.
type Config struct {
	// Addr is the TCP listen address (default DefaultAddr).
	Addr string
	// Fixture is the emulated world (nil means DemoFixture()).
	Fixture *Fixture
	// CertsDir, if set, holds the CA as ca.pem and ca-key.pem: reused when
	// present, generated and written there otherwise. Empty keeps a fresh
	// CA in memory only.
	CertsDir string
	// Faults are the faults injected from the start.
	Faults Faults
	// Logger receives one record per request (nil discards). Tokens and
	// secrets are never logged.
	Logger *slog.Logger
	// Now is the clock used for token issue and expiry (nil means
	// time.Now). TLS certificates always use the real clock.
	Now func() time.Time
	// Cloud is the Power BI cloud the emulator plays: public (the
	// default), usgov, usgovhigh, usgovdod or china. Power BI accepts
	// only access tokens for that cloud's resource (the Cloud* constants).
	Cloud string
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	now     func() time.Time
	log     *slog.Logger
	world   *world
	ca      *authority
	signKey *rsa.PrivateKey
	kid     string
	url     string
	srv     *http.Server
	cloud   cloud

	counters counters
	faults   faultState
	tokens   tokenStore
	recorded recorder
	answers  answers
	gates    gates
	issued   issuedTokens
	trial    trialCounter
	refresh  refreshStore
	devices  deviceCodes

	closeOnce sync.Once
	closeErr  error
}

// Start validates cfg, prepares the CA, serving certificate and signing
// key, and serves HTTPS in the background. It returns once the listener is
// open. The server stops on Close or when ctx is done.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	fixture := cfg.Fixture
	if fixture == nil {
		fixture = DemoFixture()
	}
	if err := fixture.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("emulator: faults: %w", err)
	}
	cl, err := lookupCloud(cfg.Cloud)
	if err != nil {
		return nil, err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: addr %q: %w", addr, err)
	}
	ca, err := loadOrCreateCA(cfg.CertsDir)
	if err != nil {
		return nil, err
	}
	serving, err := ca.serving(host)
	if err != nil {
		return nil, err
	}
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("emulator: signing key: %w", err)
	}
	s := &Server{
		now:     cfg.Now,
		log:     cfg.Logger,
		world:   newWorld(fixture),
		ca:      ca,
		signKey: signKey,
		kid:     keyID(signKey),
		cloud:   cl,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.faults.set(cfg.Faults)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen: %w", err)
	}
	s.url = "https://" + publicAddr(ln.Addr().(*net.TCPAddr))
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// HTTP/1.1 only, so a dropped-connection fault can hijack the conn.
	tlsLn := tls.NewListener(ln, &tls.Config{
		Certificates: []tls.Certificate{serving},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	})
	go func() {
		if err := s.srv.Serve(tlsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("emulator stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = s.Close() })
	s.log.Info("emulator listening", "url", s.url)
	return s, nil
}

// publicAddr turns a wildcard listen address into a loopback one a client
// can dial.
func publicAddr(a *net.TCPAddr) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(a.Port))
}

func keyID(k *rsa.PrivateKey) string {
	sum := sha256.Sum256(k.N.Bytes())
	return base64.RawURLEncoding.EncodeToString(sum[:15])
}

// URL is the base URL, such as https://127.0.0.1:PORT, for both the Entra
// authority host and the Power BI API.
func (s *Server) URL() string { return s.url }

// CACertPEM is the PEM of the CA that signed the serving certificate.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.ca.certPEM...) }

// Close stops the server gracefully (waiting up to 5s for calls in
// flight). It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.closeErr = errors.Join(err, s.srv.Close())
		}
	})
	return s.closeErr
}

// Counters returns the number of calls per route name (the Route*
// constants), including refused calls; routes never called report 0.
func (s *Server) Counters() map[string]int64 { return s.counters.snapshot() }

// ResetCounters sets every route counter to 0.
func (s *Server) ResetCounters() { s.counters.reset() }

// SetFaults replaces the injected faults and restarts their "every Nth"
// sequences.
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// Faults returns the injected faults.
func (s *Server) Faults() Faults { return s.faults.get() }

// LookupToken returns what the embed token with this tokenId grants.
func (s *Server) LookupToken(tokenID string) (TokenInfo, bool) { return s.tokens.byID(tokenID) }

// routeKind says which family a route belongs to: it selects the request
// id header and the faults that apply.
type routeKind int

const (
	kindEntra routeKind = iota
	kindEntraToken
	kindPowerBI
	kindAdmin
	// kindEmbed is the browser side (embed pages and their calls): named
	// and counted, never faulted.
	kindEmbed
)

// routes builds the handler tree.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	e := func(pattern, route string, h http.HandlerFunc) {
		mux.Handle(pattern, s.wrap(route, kindEntra, h))
	}
	e("GET /{tenant}/v2.0/.well-known/openid-configuration", RouteOIDC, s.handleOIDC)
	e("GET /common/discovery/instance", RouteInstanceDiscovery, s.handleInstanceDiscovery)
	e("GET /{tenant}/discovery/v2.0/keys", RouteJWKS, s.handleJWKS)
	mux.Handle("POST /{tenant}/oauth2/v2.0/token", s.wrap(RouteEntraToken, kindEntraToken, s.handleEntraToken))
	e("POST /{tenant}/oauth2/v2.0/devicecode", RouteDeviceCode, s.handleDeviceCode)

	p := func(pattern, route string, h http.HandlerFunc) {
		mux.Handle(pattern, s.wrap(route, kindPowerBI, h))
	}
	const g = "/v1.0/myorg/groups/{group}"
	p("POST /v1.0/myorg/GenerateToken", RouteGenerateToken, s.handleGenerateTokenV2)
	p("GET /v1.0/myorg/groups", RouteGetGroups, s.handleGetGroups)
	p("GET /v1.0/myorg/reports", RouteGetMyReports, s.handleGetMyReports)
	p("GET /v1.0/myorg/reports/{report}", RouteGetMyReport, s.handleGetMyReport)
	p("GET /v1.0/myorg/datasets/{dataset}", RouteGetMyDataset, s.handleGetMyDataset)
	p("GET "+g, RouteGetGroup, s.handleGetGroup)
	p("GET "+g+"/reports", RouteGetReports, s.handleGetReports)
	p("GET "+g+"/reports/{report}", RouteGetReport, s.handleGetReport)
	p("GET "+g+"/datasets/{dataset}", RouteGetDataset, s.handleGetDataset)
	p("GET "+g+"/datasets/{dataset}/datasources", RouteGetDatasources, s.handleGetDatasources)
	p("GET "+g+"/reports/{report}/datasources", RouteGetReportDatasources, s.handleGetReportDatasources)
	p("GET "+g+"/dashboards", RouteGetDashboards, s.handleGetDashboards)
	p("GET "+g+"/dashboards/{dashboard}", RouteGetDashboard, s.handleGetDashboard)
	p("GET "+g+"/dashboards/{dashboard}/tiles", RouteGetTiles, s.handleGetTiles)
	p("GET "+g+"/dashboards/{dashboard}/tiles/{tile}", RouteGetTile, s.handleGetTile)
	p("POST "+g+"/reports/{report}/GenerateToken", RouteReportGenerateTokenInGroup, s.handleReportToken)
	p("POST "+g+"/reports/GenerateToken", RouteCreateReportTokenInGroup, s.handleCreateToken)
	p("POST "+g+"/dashboards/{dashboard}/GenerateToken", RouteDashboardGenerateTokenInGroup, s.handleDashboardToken)
	p("POST "+g+"/dashboards/{dashboard}/tiles/{tile}/GenerateToken", RouteTileGenerateTokenInGroup, s.handleTileToken)
	p("POST "+g+"/datasets/{dataset}/GenerateToken", RouteDatasetGenerateTokenInGroup, s.handleDatasetToken)
	// availableFeatures and availableFeatures(featureName='x') are one
	// path segment; the handler tells them apart.
	mux.Handle("GET /v1.0/myorg/{feature}", s.wrapFunc(func(r *http.Request) string {
		if isAvailableFeatures(r.PathValue("feature")) {
			return RouteAvailableFeatures
		}
		return RouteNotFound
	}, kindPowerBI, s.handleAvailableFeatures))

	// The pages embed URLs open, and what they ask (embed.go).
	b := func(pattern, route string, h http.HandlerFunc) {
		mux.Handle(pattern, s.wrap(route, kindEmbed, h))
	}
	b("GET /reportEmbed", RouteReportEmbed, s.handleEmbedPage(pageReport))
	b("GET /rdlEmbed", RouteRDLEmbed, s.handleEmbedPage(pagePaginated))
	b("GET /dashboardEmbed", RouteDashboardEmbed, s.handleEmbedPage(pageDashboard))
	b("GET /explore/reports/{report}", RouteExploreReport, s.handleExploreReport)
	b("GET /explore/dashboards/{dashboard}", RouteExploreDashboard, s.handleExploreDashboard)

	a := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.wrap("", kindAdmin, h)) }
	a("GET /_emulator/tokens", s.handleListTokens)
	a("GET /_emulator/tokens/{id}", s.handleGetToken)
	a("POST /_emulator/tokens/lookup", s.handleLookupToken)
	a("GET /_emulator/faults", s.handleGetFaults)
	a("PUT /_emulator/faults", s.handlePutFaults)
	a("GET /_emulator/counters", s.handleGetCounters)
	a("POST /_emulator/counters/reset", s.handleResetCounters)
	a("GET /_emulator/ca.pem", s.handleCAPEM)
	a("GET /_emulator/requests/{route}", s.handleGetRequests)
	a("POST /_emulator/requests/reset", s.handleResetRequests)
	a("PUT /_emulator/answers/{route}", s.handlePutAnswer)
	a("DELETE /_emulator/answers", s.handleClearAnswers)
	a("PUT /_emulator/gates/{route}", s.handlePutGate)
	a("GET /_emulator/gates/{route}", s.handleGetGate)
	a("DELETE /_emulator/gates/{route}", s.handleOpenGate)
	a("GET /_emulator/devicecodes", s.handleListDeviceCodes)
	a("POST /_emulator/devicecodes/{code}/approve", s.handleApproveDeviceCode)
	a("POST /_emulator/devicecodes/{code}/decline", s.handleDeclineDeviceCode)

	mux.Handle("/", s.wrap(RouteNotFound, kindAdmin, s.handleNotFound))
	return s.withRequestID(mux)
}

// statusWriter records the status for the access log; Unwrap keeps
// http.ResponseController (and so Hijack) working.
type statusWriter struct {
	http.ResponseWriter
	status int
	route  string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequestID gives every response its request id header (RequestId for
// Power BI and admin paths, x-ms-request-id for Entra paths) and logs one
// record per request.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newUUID()
		// Set without canonicalising, so the names go out spelled as the
		// real services spell them.
		if isEntraPath(r.URL.Path) {
			w.Header()["x-ms-request-id"] = []string{id}
		} else {
			w.Header()["RequestId"] = []string{id}
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "emulator request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", sw.route), slog.Int("status", sw.status),
			slog.String("request_id", id), slog.Duration("duration", time.Since(start)))
	})
}

type requestIDKey struct{}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// isEntraPath reports whether a path belongs to the Entra side.
func isEntraPath(p string) bool {
	switch p {
	case "/", "/reportEmbed", "/rdlEmbed", "/dashboardEmbed":
		return false
	}
	return !strings.HasPrefix(p, "/v1.0/") && !strings.HasPrefix(p, "/_emulator/") && !strings.HasPrefix(p, "/explore/")
}

func (s *Server) wrap(route string, kind routeKind, h http.HandlerFunc) http.Handler {
	return s.wrapFunc(func(*http.Request) string { return route }, kind, h)
}

// wrapFunc runs the test hooks of a named route, in this order: count,
// record, wait at the gate, answer with a canned answer. Then it injects
// the faults of its kind and calls h.
func (s *Server) wrapFunc(route func(*http.Request) string, kind routeKind, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := route(r)
		if sw, ok := w.(*statusWriter); ok {
			sw.route = name
		}
		if name != "" {
			s.counters.inc(name)
			s.recorded.add(record(r, name, s.now()))
			if g, ok := s.gates.lookup(name); ok && !g.pass(r.Context()) {
				return
			}
			if a, ok := s.answers.take(name); ok {
				a.write(w)
				return
			}
		}
		var (
			delay  time.Duration
			action faultAction
			f      Faults
		)
		switch kind {
		case kindEntra:
			delay, action, f = s.faults.decideEntra(false)
		case kindEntraToken:
			delay, action, f = s.faults.decideEntra(true)
		case kindPowerBI:
			delay, action, f = s.faults.decidePowerBI()
		}
		if delay > 0 && !wait(r.Context(), delay) {
			return
		}
		switch action {
		case faultDrop:
			dropConnection(w)
			return
		case faultThrottle:
			w.Header().Set("Retry-After", fmt.Sprint(f.retryAfter()))
			writePBIError(w, http.StatusTooManyRequests, "TooManyRequests",
				fmt.Sprintf("Rate limit is exceeded. Try again in %d seconds.", f.retryAfter()))
			return
		case faultServerError:
			if kind == kindPowerBI {
				writePBIError(w, f.serverErrorStatus(), "ServiceUnavailable", "The service is temporarily unavailable (injected fault).")
			} else {
				// [unk] the exact AADSTS code of a transient Entra outage.
				s.entraError(w, r, f.serverErrorStatus(), "temporarily_unavailable", 90033,
					"A transient error has occurred. Please try again.")
			}
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), routeNameKey{}, name)))
	})
}

type routeNameKey struct{}

// routeName is the route a request was matched to.
func routeName(r *http.Request) string {
	name, _ := r.Context().Value(routeNameKey{}).(string)
	return name
}

// wait blocks for d or until ctx is done; false means ctx ended first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dropConnection closes the connection without writing a response.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1.0/") {
		errNotFound.write(w) // [unk] what Power BI answers a path it does not serve
		return
	}
	http.NotFound(w, r)
}
