package powerbi

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/embedgate/embedgate/internal/yamlfile"
)

// Defaults applied by New when the config leaves a value zero.
const (
	// DefaultCloud is used when Config.Cloud is empty.
	DefaultCloud = "public"
	// DefaultTimeout bounds each upstream HTTP call (Entra or Power BI).
	DefaultTimeout = 10 * time.Second
	// DefaultMetadataTTL is how long report and dataset metadata are cached.
	DefaultMetadataTTL = 5 * time.Minute
	// EntraTokenLifetimeMax is the longest life of an Entra access token for
	// an app with Entra's defaults: a random 60 to 90 minutes ("Access
	// tokens", Microsoft identity platform). Power BI caps an embed token
	// at the remaining life of the Entra token that mints it, so a longer
	// embed token can never be had without a token lifetime policy.
	EntraTokenLifetimeMax = 90 * time.Minute
	// DefaultMaxConcurrency is the requests in flight per upstream host.
	// Power BI answers GenerateToken in a few hundred milliseconds, so 64
	// carry well over a hundred new tokens a second per replica.
	DefaultMaxConcurrency = 64
)

// Config is the `powerbi:` block of the server config. The yaml key names are
// a contract with operators; keep them.
type Config struct {
	// Cloud selects the Entra authority host, Power BI API URL and token scope:
	// public (default) | usgov | usgovhigh | usgovdod | china.
	Cloud string `yaml:"cloud"`
	// AuthorityHost overrides the cloud's Entra host (https only), e.g. for the
	// emulator. Entra instance discovery is turned off for hosts that are not a
	// Microsoft cloud's, since MSAL would otherwise ask login.microsoftonline.com
	// to validate them.
	AuthorityHost string `yaml:"authority_host"`
	// APIURL overrides the cloud's Power BI REST API base URL (https only).
	APIURL string `yaml:"api_url"`
	// CAFile adds root CAs (PEM) to the system pool for Entra and Power BI, for
	// TLS-inspecting proxies and the emulator.
	CAFile string `yaml:"ca_file"`
	// TenantID is the Entra tenant of the service principal (uuid or domain).
	TenantID string `yaml:"tenant_id"`
	// ClientID is the app registration (uuid).
	ClientID string `yaml:"client_id"`
	// ClientSecretFile holds the client secret value (trailing newline trimmed).
	// Exactly one of ClientSecretFile, CertificateFile, FederatedTokenFile.
	ClientSecretFile string `yaml:"client_secret_file"`
	// CertificateFile is a PEM with the CERTIFICATE and its unencrypted PKCS#8
	// or PKCS#1 RSA key.
	CertificateFile string `yaml:"certificate_file"`
	// FederatedTokenFile is a JWT issued by a trusted identity provider
	// (workload identity federation; AKS sets AZURE_FEDERATED_TOKEN_FILE),
	// re-read on every client assertion because it is rotated on disk.
	FederatedTokenFile string `yaml:"federated_token_file"`
	// AppIDURI is the Application ID URI of the app registration's exposed
	// API ("Expose an API"), when it is not api://<client_id>. Users' access
	// tokens for Embedgate's API (GenerateUserEmbedConfig) are accepted with
	// the client id or this URI as their audience.
	AppIDURI string `yaml:"app_id_uri"`
	// Timeout bounds each upstream call; 0 means DefaultTimeout. A token
	// mint shared by identical concurrent requests runs detached from their
	// cancellation and is bounded as a whole by three times Timeout.
	Timeout time.Duration `yaml:"timeout"`
	// MetadataTTL is how long report/dataset metadata are cached; 0 means
	// DefaultMetadataTTL.
	MetadataTTL time.Duration `yaml:"metadata_ttl"`
	// DisableTokenCache turns off embed-token reuse: with it set, every
	// GenerateToken / GenerateItemToken call makes its own POST and gets a
	// token of its own, even when identical calls run concurrently. By
	// default (false, so that the zero Config is production behaviour) a
	// token is reused for identical requests until RefreshAt, and identical
	// concurrent requests share one POST. It is a negative flag rather than
	// a `token_cache` *bool so that "unset" needs no third state.
	DisableTokenCache bool `yaml:"disable_token_cache"`
	// MaxConcurrency bounds the requests in flight to each upstream host
	// (Entra ID, Power BI); 0 means DefaultMaxConcurrency. A request beyond
	// it waits up to bulkheadWait for a slot, then fails with ErrOverloaded
	// without being sent: a slow Power BI cannot pile up goroutines and
	// connections behind it, and callers learn at once to retry.
	MaxConcurrency int `yaml:"max_concurrency"`
}

// cloud holds the endpoints of one Microsoft cloud.
type cloud struct {
	authorityHost string // https://host
	apiURL        string
	scope         string
}

// clouds lists the Power BI national clouds (Learn: "Embed Power BI content
// for national/regional clouds").
var clouds = map[string]cloud{
	"public":    {"https://login.microsoftonline.com", "https://api.powerbi.com", "https://analysis.windows.net/powerbi/api/.default"},
	"usgov":     {"https://login.microsoftonline.com", "https://api.powerbigov.us", "https://analysis.usgovcloudapi.net/powerbi/api/.default"},
	"usgovhigh": {"https://login.microsoftonline.us", "https://api.high.powerbigov.us", "https://high.analysis.usgovcloudapi.net/powerbi/api/.default"},
	"usgovdod":  {"https://login.microsoftonline.us", "https://api.mil.powerbigov.us", "https://mil.analysis.usgovcloudapi.net/powerbi/api/.default"},
	"china":     {"https://login.chinacloudapi.cn", "https://api.powerbi.cn", "https://analysis.chinacloudapi.cn/powerbi/api/.default"},
}

// microsoftAuthorityHosts are hosts MSAL's instance discovery knows; any other
// authority host gets discovery turned off.
var microsoftAuthorityHosts = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoft.com":              true,
	"login.windows.net":                true,
	"sts.windows.net":                  true,
	"login.microsoftonline.us":         true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
}

var (
	uuidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	domainRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
)

// resolved is the Config with defaults applied and URLs normalised.
type resolved struct {
	Config
	authorityHost string // no trailing slash
	apiURL        string // no trailing slash
	scope         string
	discovery     bool
}

func (c Config) resolve() resolved {
	r := resolved{Config: c}
	name := c.Cloud
	if name == "" {
		name = DefaultCloud
	}
	cl := clouds[strings.ToLower(name)]
	r.scope = cl.scope
	r.authorityHost = strings.TrimRight(cl.authorityHost, "/")
	if c.AuthorityHost != "" {
		r.authorityHost = strings.TrimRight(c.AuthorityHost, "/")
	}
	r.apiURL = cl.apiURL
	if c.APIURL != "" {
		r.apiURL = strings.TrimRight(c.APIURL, "/")
	}
	if u, err := url.Parse(r.authorityHost); err == nil {
		r.discovery = microsoftAuthorityHosts[strings.ToLower(u.Host)]
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.MetadataTTL == 0 {
		r.MetadataTTL = DefaultMetadataTTL
	}
	if r.MaxConcurrency == 0 {
		r.MaxConcurrency = DefaultMaxConcurrency
	}
	return r
}

// Validate returns every problem of the config (nil if none). It reads the
// credential and CA files to check they are usable, and never touches the
// network.
//
// Keys are relative to the block (client_id); the server config prefixes
// them.
func (c Config) Validate() []yamlfile.Problem {
	ps := c.ValidateEndpoints()
	add := func(key, format string, args ...any) {
		ps = append(ps, yamlfile.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	switch t := c.TenantID; {
	case t == "":
		add("tenant_id", "required")
	case isMultiTenantAlias(t):
		add("tenant_id", "%q is not a tenant: client credentials need the service principal's own tenant id or domain", t)
	case !uuidRE.MatchString(t) && !domainRE.MatchString(t):
		add("tenant_id", "must be a uuid or a domain name, got %q", t)
	}
	switch {
	case c.ClientID == "":
		add("client_id", "required")
	case !uuidRE.MatchString(c.ClientID):
		add("client_id", "must be a uuid (the application (client) id), got %q", c.ClientID)
	}
	if c.AppIDURI != "" {
		if u, err := url.Parse(c.AppIDURI); err != nil || u.Scheme == "" || strings.ContainsAny(c.AppIDURI, " \t\r\n") {
			add("app_id_uri", "must be the Application ID URI of the app registration (such as api://<client id>), got %q", c.AppIDURI)
		}
	}
	n := 0
	for _, f := range []string{c.ClientSecretFile, c.CertificateFile, c.FederatedTokenFile} {
		if f != "" {
			n++
		}
	}
	switch {
	case n == 0:
		add("client_secret_file", "one of client_secret_file, certificate_file or federated_token_file is required")
	case n > 1:
		add("client_secret_file", "set exactly one of client_secret_file, certificate_file or federated_token_file")
	}
	if c.ClientSecretFile != "" {
		if _, err := readSecret(c.ClientSecretFile); err != nil {
			add("client_secret_file", "%v", err)
		}
	}
	if c.CertificateFile != "" {
		if b, err := os.ReadFile(c.CertificateFile); err != nil {
			add("certificate_file", "cannot read: %v", err)
		} else if _, err := certCredential(b); err != nil {
			add("certificate_file", "%v", err)
		}
	}
	if c.FederatedTokenFile != "" {
		if _, err := readSecret(c.FederatedTokenFile); err != nil {
			add("federated_token_file", "%v", err)
		}
	}
	if c.MaxConcurrency < 0 {
		add("max_concurrency", "must not be negative (0 keeps the default, %d)", DefaultMaxConcurrency)
	}
	if c.Timeout < 0 {
		add("timeout", "must not be negative")
	}
	if c.MetadataTTL < 0 {
		add("metadata_ttl", "must not be negative")
	}
	return ps
}

// ValidateEndpoints returns the problems of the keys that say where Entra ID
// and Power BI are and how to reach them (cloud, authority_host, api_url,
// ca_file): all a Client that acts as a signed-in user needs (NewAsUser).
func (c Config) ValidateEndpoints() []yamlfile.Problem {
	var ps []yamlfile.Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, yamlfile.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	if c.Cloud != "" {
		if _, ok := clouds[strings.ToLower(c.Cloud)]; !ok {
			add("cloud", "unknown cloud %q (want public, usgov, usgovhigh, usgovdod or china)", c.Cloud)
		}
	}
	if c.AuthorityHost != "" {
		if msg := checkHTTPSURL(c.AuthorityHost, false); msg != "" {
			add("authority_host", "%s", msg)
		}
	}
	if c.APIURL != "" {
		if msg := checkHTTPSURL(c.APIURL, true); msg != "" {
			add("api_url", "%s", msg)
		}
	}
	if c.CAFile != "" {
		if b, err := os.ReadFile(c.CAFile); err != nil {
			add("ca_file", "cannot read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			add("ca_file", "no PEM certificate found in %s", c.CAFile)
		}
	}
	return ps
}

func isMultiTenantAlias(t string) bool {
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// checkHTTPSURL returns "" if s is an absolute https URL with a host, no query
// or fragment, and (unless pathOK) no path.
func checkHTTPSURL(s string, pathOK bool) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Sprintf("not a URL: %v", err)
	case u.Scheme != "https":
		return fmt.Sprintf("must be an https URL, got %q", s)
	case u.Host == "":
		return fmt.Sprintf("has no host: %q", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Sprintf("must not have user info, query or fragment: %q", s)
	case !pathOK && strings.Trim(u.Path, "/") != "":
		return fmt.Sprintf("must be scheme://host[:port] only (the tenant is appended), got %q", s)
	}
	return ""
}

// readSecret reads a secret-ish file: trailing whitespace (the newline editors
// and `echo` add) is trimmed and an empty value is an error. The error never
// contains the content.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n\t ")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// certCredential builds an MSAL credential from a PEM with a certificate and
// an unencrypted RSA key.
func certCredential(pemData []byte) (confidential.Credential, error) {
	certs, key, err := confidential.CertFromPEM(pemData, "")
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("invalid certificate PEM: %w", err)
	}
	cred, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("invalid certificate/key pair: %w", err)
	}
	return cred, nil
}

// errProblems turns Validate's output into one error for New.
func errProblems(ps []yamlfile.Problem) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = errors.New("powerbi." + p.String())
	}
	return fmt.Errorf("powerbi: invalid config: %w", errors.Join(errs...))
}
