// Package devicelogin signs a person in to Entra ID from a terminal, with
// the device code flow of MSAL's public client ("Microsoft identity platform
// and the OAuth 2.0 device authorization grant flow"): the address and the
// code to enter there are written to a writer (stderr), and MSAL's token
// cache is kept in a file, so that the next run signs in silently with the
// refresh token instead of asking again. It is what `embedgate token
// --device-login` signs in with.
package devicelogin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/cache"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"
)

// Config says where and as which app to sign in.
type Config struct {
	// Authority is https://<Entra host>/<tenant>: a tenant id or domain, or
	// "organizations" for any work or school account.
	Authority string
	// ClientID is the public client app signed in with.
	ClientID string
	// InstanceDiscovery is MSAL's authority validation: on for Microsoft's
	// clouds, off for any other host (an emulator).
	InstanceDiscovery bool
	// HTTPClient reaches Entra ID (its roots trust the authority).
	HTTPClient *http.Client
	// CacheFile keeps MSAL's token cache between runs; "" keeps it in
	// memory only. It holds refresh tokens: it is written 0600, in a
	// folder made 0700.
	CacheFile string
	// Account picks one of several cached accounts, by user name; "" takes
	// the only one.
	Account string
	// Prompt receives the sign-in instructions (stderr).
	Prompt io.Writer
}

// DefaultCacheFile is where the token cache lives unless told otherwise:
// embedgate/msal-token-cache.json under the user's cache folder
// (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches
// on macOS, %LocalAppData% on Windows).
func DefaultCacheFile() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "embedgate", "msal-token-cache.json"), nil
}

// Session is a signed-in (or about to sign in) person.
type Session struct {
	cfg  Config
	pca  public.Client
	host string
	// tenant is the authority's tenant when it names one tenant; "" for
	// organizations and common.
	tenant string
}

// New builds the session's MSAL public client. It makes no network call.
func New(cfg Config) (*Session, error) {
	u, err := url.Parse(cfg.Authority)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("devicelogin: authority %q is not a URL", cfg.Authority)
	}
	opts := []public.Option{public.WithAuthority(cfg.Authority), public.WithInstanceDiscovery(cfg.InstanceDiscovery)}
	if cfg.HTTPClient != nil {
		opts = append(opts, public.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.CacheFile != "" {
		opts = append(opts, public.WithCache(&fileCache{path: cfg.CacheFile}))
	}
	pca, err := public.New(cfg.ClientID, opts...)
	if err != nil {
		return nil, fmt.Errorf("devicelogin: %w", err)
	}
	s := &Session{cfg: cfg, pca: pca, host: strings.ToLower(u.Host)}
	switch t := strings.ToLower(strings.Trim(u.Path, "/")); t {
	case "organizations", "common", "consumers":
	default:
		s.tenant = t
	}
	return s, nil
}

// Token returns an access token for scopes: silently, from the cache, for
// the account already signed in (MSAL redeems its refresh token when the
// access token has expired), else by the device code flow.
func (s *Session) Token(ctx context.Context, scopes []string) (public.AuthResult, error) {
	acc, err := s.account(ctx)
	if err != nil {
		return public.AuthResult{}, err
	}
	if acc != nil {
		ar, err := s.pca.AcquireTokenSilent(ctx, scopes, public.WithSilentAccount(*acc))
		if err == nil {
			return ar, nil
		}
		if ctx.Err() != nil {
			return public.AuthResult{}, ctx.Err()
		}
		fmt.Fprintf(s.prompt(), "The cached sign-in of %s cannot be used (%s); signing in again.\n", acc.PreferredUsername, firstLine(err))
	}
	dc, err := s.pca.AcquireTokenByDeviceCode(ctx, scopes)
	if err != nil {
		return public.AuthResult{}, fmt.Errorf("device code sign-in: %w", err)
	}
	fmt.Fprintln(s.prompt(), dc.Result.Message)
	ar, err := dc.AuthenticationResult(ctx)
	if err != nil {
		return public.AuthResult{}, fmt.Errorf("device code sign-in: %w", err)
	}
	return ar, nil
}

// account is the cached account to sign in silently as: of this authority
// (host, and tenant when it names one), and Config.Account when set; nil
// when there is none.
func (s *Session) account(ctx context.Context) (*public.Account, error) {
	all, err := s.pca.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	var match []public.Account
	for _, a := range all {
		switch {
		case !strings.EqualFold(a.Environment, s.host):
		case s.tenant != "" && !strings.EqualFold(a.Realm, s.tenant):
		case s.cfg.Account != "" && !strings.EqualFold(a.PreferredUsername, s.cfg.Account):
		default:
			match = append(match, a)
		}
	}
	switch len(match) {
	case 0:
		return nil, nil
	case 1:
		return &match[0], nil
	}
	names := make([]string, len(match))
	for i, a := range match {
		names[i] = a.PreferredUsername
	}
	return nil, fmt.Errorf("several accounts are signed in (%s): choose one with --account", strings.Join(names, ", "))
}

func (s *Session) prompt() io.Writer {
	if s.cfg.Prompt == nil {
		return io.Discard
	}
	return s.cfg.Prompt
}

// firstLine is the first line of err's message (MSAL's quote Entra's
// whole answer).
func firstLine(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// fileCache is MSAL's cache accessor for one file: read before each use
// of the cache, written after each change.
type fileCache struct {
	path string
}

// Replace loads the file into MSAL's cache; a missing file is an empty
// cache.
func (c *fileCache) Replace(ctx context.Context, u cache.Unmarshaler, _ cache.ReplaceHints) error {
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(b) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	return u.Unmarshal(b)
}

// Export writes MSAL's cache to the file, whole: to a temporary file in
// the same folder, then renamed over it, so that a reader never sees half
// of it.
func (c *fileCache) Export(ctx context.Context, m cache.Marshaler, _ cache.ExportHints) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	f, err := os.CreateTemp(dir, ".msal-cache-*")
	if err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("token cache: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("token cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	if err := os.Rename(f.Name(), c.path); err != nil {
		return fmt.Errorf("token cache: %w", err)
	}
	return nil
}
