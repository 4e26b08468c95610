package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/internal/yamlfile"
	"github.com/embedgate/embedgate/powerbi"
	"github.com/embedgate/embedgate/sharedstate"
)

// Defaults for the server config.
const (
	// DefaultListen fits a pod: every interface, so that the Service and
	// the kubelet reach it. Dev mode binds loopback instead (DevListen).
	DefaultListen = "0.0.0.0:8443"
	// DevListen is where `embedgate serve --dev` listens: loopback only,
	// since its certificates and policy are throwaway demo ones.
	DevListen = "127.0.0.1:8443"
	// DefaultShutdownDelay is how long the server keeps accepting calls
	// after SIGTERM while it reports NOT_SERVING: time for the endpoints
	// controller, kube-proxy and clients' resolvers to stop sending it
	// traffic (a pod's usual "preStop sleep"). Set 0s outside Kubernetes.
	DefaultShutdownDelay = 5 * time.Second
	// DefaultShutdownGrace bounds, after the delay, how long in-flight
	// calls may run.
	DefaultShutdownGrace = 10 * time.Second
	DefaultLogFormat     = "json"
	DefaultLogLevel      = "info"
)

// Config is the server's YAML config file (`embedgate serve --config FILE`).
// Its key names are a contract with operators: extend beside them, never
// rename. Relative file paths are taken relative to the config file's folder,
// so a config and its files move together.
type Config struct {
	// Listen is the host:port of the gRPC listener (DefaultListen).
	Listen string `yaml:"listen"`
	// TLS is the listener's mTLS setup. Required, except in mesh mode where
	// the sidecar may forward over plaintext.
	TLS TLSConfig `yaml:"tls"`
	// Mesh is mesh mode: callers identified by a trusted sidecar's
	// x-forwarded-client-cert header (off by default).
	Mesh MeshConfig `yaml:"mesh"`
	// PowerBI is the gateway's Entra ID and Power BI setup.
	PowerBI powerbi.Config `yaml:"powerbi"`
	// PolicyFile is the authz policy, reloaded when it changes.
	PolicyFile string `yaml:"policy_file"`
	// ShutdownDelay is how long, after SIGTERM, the server keeps accepting
	// and serving calls while readiness and gRPC health say NOT_SERVING
	// (DefaultShutdownDelay; 0s stops accepting at once). A pod's
	// terminationGracePeriodSeconds must cover it plus ShutdownGrace.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// ShutdownGrace bounds how long in-flight calls may run once the
	// delay is over and the listener is closed (DefaultShutdownGrace);
	// calls still running then are cut. Long-lived streams (Health/Watch,
	// reflection) are ended at once, so they never hold the exit.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Log sets the log format and level.
	Log LogConfig `yaml:"log"`
	// AdminListen, if set, is the host:port of a plain-HTTP listener for
	// the platform: /healthz (liveness), /readyz (readiness), /metrics
	// (Prometheus) and, with Pprof, /debug/pprof/. Off by default (the
	// Helm chart sets it); bind it where only the kubelet and the scraper
	// reach it: it has no authentication.
	AdminListen string `yaml:"admin_listen"`
	// MetricsListen is the former name of AdminListen, still accepted
	// (with a deprecation warning) when AdminListen is not set.
	//
	// Deprecated: use AdminListen.
	MetricsListen string `yaml:"metrics_listen"`
	// Pprof serves Go's profiler at /debug/pprof/ on the admin listener
	// (default false): CPU, heap and goroutine profiles for an operator
	// chasing a problem. It needs AdminListen.
	Pprof bool `yaml:"pprof"`
	// Reflection, unless false, serves gRPC server reflection on the gRPC
	// port, so that grpcurl can list and describe the API without its
	// .proto files. Default true: the API is documented, not secret.
	Reflection *bool `yaml:"reflection"`
	// AuditFile, if set, receives the audit records (JSON lines, appended);
	// otherwise they go to the log marked stream=audit.
	AuditFile string `yaml:"audit_file"`
	// Preflight, unless false, checks the Power BI setup of the policy's
	// tenants at start and of the tenants a reload changed (what `embedgate
	// check --online` checks), logging what it finds as warnings and
	// counting it in embedgate_preflight_problems. Default true.
	Preflight *bool `yaml:"preflight"`
	// Limits bound connections, calls and sizes (LimitsConfig).
	Limits LimitsConfig `yaml:"limits"`
	// SharedState is Redis (or Valkey) shared by the replicas, so that
	// they mint a grant once and enforce one rate per caller; empty (the
	// default), both are per process.
	SharedState sharedstate.Config `yaml:"shared_state"`

	// warnings and fromEnv are what LoadConfig noticed: deprecated keys,
	// and the values it took from the environment (Warnings, Sources).
	warnings []yamlfile.Problem
	fromEnv  []yamlfile.Problem
}

// preflight reports whether the preflight runs (the default).
func (c *Config) preflight() bool { return c.Preflight == nil || *c.Preflight }

// reflection reports whether gRPC server reflection is served (the default).
func (c *Config) reflection() bool { return c.Reflection == nil || *c.Reflection }

// Warnings lists what LoadConfig accepted but an operator should change
// (deprecated keys), each with its key. `embedgate check` prints them and
// `serve` logs them.
func (c *Config) Warnings() []yamlfile.Problem { return c.warnings }

// Sources lists the values LoadConfig took from the environment rather
// than from the file (the AKS workload-identity variables), each with the
// key it filled; the message names the variable, never its value.
func (c *Config) Sources() []yamlfile.Problem { return c.fromEnv }

// TLSConfig is the listener's mTLS setup: callers must present a client
// certificate signed by the client CA; their identity is its SPIFFE ID.
type TLSConfig struct {
	// CertFile and KeyFile are the server's certificate and key (PEM).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile holds the CA certificates (PEM) that callers' certificates
	// must chain to.
	ClientCAFile string `yaml:"client_ca_file"`
	// TrustDomain, if set, accepts only SPIFFE IDs of this trust domain.
	TrustDomain string `yaml:"trust_domain"`
}

func (t TLSConfig) validate(add func(key, format string, args ...any)) {
	switch {
	case t.CertFile == "" || t.KeyFile == "":
		add("tls", "cert_file and key_file are required")
	default:
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			add("tls.cert_file", "cannot load the key pair: %v", err)
		}
	}
	if t.ClientCAFile == "" {
		add("tls.client_ca_file", "required: callers are authenticated by their client certificate")
	} else if _, err := loadPool(t.ClientCAFile); err != nil {
		add("tls.client_ca_file", "%v", err)
	}
}

// LogConfig selects the log format and level.
type LogConfig struct {
	// Format is "json" (production) or "text" (dev).
	Format string `yaml:"format"`
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
}

// ConfigError lists every problem found in a config.
type ConfigError struct {
	File     string
	Problems []yamlfile.Problem
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// LoadConfig reads, strictly decodes and completely validates a config file,
// including the policy file it names. On any problem it returns a
// *ConfigError listing all of them.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg := Config{
		Listen:        DefaultListen,
		ShutdownDelay: DefaultShutdownDelay,
		ShutdownGrace: DefaultShutdownGrace,
		Log:           LogConfig{Format: DefaultLogFormat, Level: DefaultLogLevel},
	}
	problems, ok := yamlfile.Decode(data, &cfg)
	if !ok {
		// Not YAML at all: nothing else can be checked.
		return nil, &ConfigError{File: path, Problems: problems}
	}
	cfg.resolvePaths(filepath.Dir(path))
	cfg.workloadIdentityFromEnv(os.LookupEnv)
	if cfg.MetricsListen != "" {
		if cfg.AdminListen == "" {
			cfg.AdminListen = cfg.MetricsListen
			cfg.warnings = append(cfg.warnings, yamlfile.Problem{Key: "metrics_listen",
				Message: "deprecated: rename it admin_listen (the same listener now also serves /healthz and /readyz)"})
		} else {
			problems = append(problems, yamlfile.Problem{Key: "metrics_listen", Message: "the former name of admin_listen: set only admin_listen"})
		}
	}
	decoded := make(map[string]bool, len(problems))
	for _, p := range problems {
		decoded[p.Key] = true
	}
	for _, p := range cfg.Validate() {
		if !decoded[p.Key] { // a value left out is already reported
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, &ConfigError{File: path, Problems: problems}
	}
	cfg.warnings = append(cfg.warnings, lifetimeWarnings(cfg.PolicyFile)...)
	return &cfg, nil
}

// lifetimeWarnings names the tenants whose max_lifetime Power BI can never
// honour with Entra's default token lifetimes: their tokens would always
// come back shorter than asked.
func lifetimeWarnings(policyFile string) []yamlfile.Problem {
	p, err := authz.Load(policyFile)
	if err != nil {
		return nil // reported by Validate
	}
	var ws []yamlfile.Problem
	for _, t := range p.Tenants() {
		if t.MaxLifetime > powerbi.EntraTokenLifetimeMax {
			ws = append(ws, yamlfile.Problem{Key: "policy_file", Message: fmt.Sprintf(
				"tenants.%s.max_lifetime %v cannot be honoured: Entra's tokens live at most %v by default, and Power BI cuts an embed token to the remaining life of the Entra token that mints it (the shortfall is logged, audited and counted)",
				t.Key, t.MaxLifetime, powerbi.EntraTokenLifetimeMax)})
		}
	}
	return ws
}

func (c *Config) resolvePaths(dir string) {
	for _, p := range append([]*string{
		&c.TLS.CertFile, &c.TLS.KeyFile, &c.TLS.ClientCAFile, &c.PolicyFile, &c.AuditFile,
		&c.PowerBI.CAFile, &c.PowerBI.ClientSecretFile, &c.PowerBI.CertificateFile, &c.PowerBI.FederatedTokenFile,
	}, c.SharedState.Files()...) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// Validate checks the whole config, the files it names and the policy, and
// returns every problem found (nil when there are none). It does no network
// I/O. `embedgate check` and `embedgate serve` both call it.
func (c *Config) Validate() []yamlfile.Problem {
	var ps []yamlfile.Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, yamlfile.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "want host:port: %v", err)
	}
	if c.AdminListen != "" {
		key := "admin_listen"
		if c.AdminListen == c.MetricsListen {
			key = "metrics_listen"
		}
		if _, port, err := net.SplitHostPort(c.AdminListen); err != nil {
			add(key, "want host:port: %v", err)
		} else if c.AdminListen == c.Listen && port != "0" {
			add(key, "must differ from listen")
		}
	}
	if c.Pprof && c.AdminListen == "" {
		add("pprof", "needs admin_listen: the profiler is served there")
	}
	c.Mesh.validate(add)
	if c.Mesh.Enabled && c.TLS == (TLSConfig{}) {
		// Plaintext from the sidecar: identities come only from the header.
	} else {
		c.TLS.validate(add)
	}
	if c.TLS.TrustDomain != "" {
		if _, err := spiffeid.TrustDomainFromString(c.TLS.TrustDomain); err != nil {
			add("tls.trust_domain", "%v", err)
		}
	}
	ps = append(ps, yamlfile.Prefixed("powerbi", c.PowerBI.Validate())...)
	ps = append(ps, c.Limits.validate()...)
	ps = append(ps, yamlfile.Prefixed("shared_state", c.SharedState.Validate())...)
	if c.PolicyFile == "" {
		add("policy_file", "required")
	} else if _, err := authz.Load(c.PolicyFile); err != nil {
		var ve *authz.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				add("policy_file", "%s", p.String())
			}
		} else {
			add("policy_file", "%v", err)
		}
	}
	if c.ShutdownDelay < 0 {
		add("shutdown_delay", "must not be negative")
	}
	if c.ShutdownGrace <= 0 {
		add("shutdown_grace", "must be positive")
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		add("log.format", "want json or text, got %q", c.Log.Format)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		add("log.level", "%v", err)
	}
	return ps
}

// loadPool reads a PEM bundle of CA certificates.
func loadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}

// The variables the AKS workload identity webhook injects into a pod
// labelled azure.workload.identity/use: "true" (and that Azure's SDKs read).
const (
	envClientID           = "AZURE_CLIENT_ID"
	envTenantID           = "AZURE_TENANT_ID"
	envFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
	envAuthorityHost      = "AZURE_AUTHORITY_HOST"
)

// workloadIdentityFromEnv fills the powerbi keys the file leaves empty from
// the AKS workload-identity variables: client_id, tenant_id, authority_host
// (the webhook writes it with a trailing slash, which is dropped), and
// federated_token_file when the file names no credential at all. A key the
// file sets always wins. Paths from the environment are taken as they are.
func (c *Config) workloadIdentityFromEnv(lookup func(string) (string, bool)) {
	p := &c.PowerBI
	fill := func(key string, field *string, env string, use func(string) string) {
		if *field != "" {
			return
		}
		v, ok := lookup(env)
		if v = strings.TrimSpace(v); !ok || v == "" {
			return
		}
		*field = use(v)
		c.fromEnv = append(c.fromEnv, yamlfile.Problem{Key: "powerbi." + key, Message: "from " + env})
	}
	same := func(v string) string { return v }
	fill("client_id", &p.ClientID, envClientID, same)
	fill("tenant_id", &p.TenantID, envTenantID, same)
	fill("authority_host", &p.AuthorityHost, envAuthorityHost, func(v string) string { return strings.TrimRight(v, "/") })
	if p.ClientSecretFile == "" && p.CertificateFile == "" {
		fill("federated_token_file", &p.FederatedTokenFile, envFederatedTokenFile, same)
	}
}
