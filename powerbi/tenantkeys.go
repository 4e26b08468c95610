package powerbi

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The signing keys and issuers of the Entra tenants whose users' assertions
// Embedgate checks, from each tenant's OpenID metadata ("OpenID Connect on
// the Microsoft identity platform": {authority}/{tenant}/v2.0/.well-known/
// openid-configuration, its issuer and jwks_uri; and the v1.0 document at
// {authority}/{tenant}/.well-known/openid-configuration, whose issuer v1.0
// access tokens carry). Keys are kept for keysTTL; a token signed with a
// key not in the set refreshes it, at most once per keysRefreshHold (Entra
// rolls its keys and publishes the next one ahead of use).
const (
	keysTTL         = 24 * time.Hour
	keysRefreshHold = 5 * time.Minute
	// maxKeyTenants bounds the tenants kept (the policy bounds them first).
	maxKeyTenants = 256
)

// errUnknownKey is a token signed with a key the tenant does not publish.
var errUnknownKey = errors.New("powerbi: unknown signing key")

// tenantKeySet is one tenant's issuers and keys.
type tenantKeySet struct {
	issuers []string
	keys    map[string]*rsa.PublicKey // by kid
	fetched time.Time
}

// keyCache holds the tenants' key sets.
type keyCache struct {
	mu sync.Mutex
	m  map[string]*tenantKeySet
	sf flight
}

// tenantKeys returns tenant's key set, from cache while fresh.
func (cl *Client) tenantKeys(ctx context.Context, tenant string) (*tenantKeySet, error) {
	kc := &cl.keys
	kc.mu.Lock()
	ks := kc.m[tenant]
	kc.mu.Unlock()
	if ks != nil && cl.now().Sub(ks.fetched) < keysTTL {
		return ks, nil
	}
	return cl.fetchKeys(ctx, tenant, ks)
}

// signingKey is the key kid of the tenant, refreshing the set once when it
// is not there (and the set is older than keysRefreshHold).
func (cl *Client) signingKey(ctx context.Context, tenant string, ks *tenantKeySet, kid string) (*rsa.PublicKey, error) {
	if k := ks.keys[kid]; k != nil {
		return k, nil
	}
	if cl.now().Sub(ks.fetched) < keysRefreshHold {
		return nil, errUnknownKey
	}
	fresh, err := cl.fetchKeys(ctx, tenant, ks)
	if err != nil {
		return nil, err
	}
	if k := fresh.keys[kid]; k != nil {
		return k, nil
	}
	return nil, errUnknownKey
}

// fetchKeys reads the tenant's metadata and keys; concurrent fetches of one
// tenant share the calls. stale is the set being replaced (nil if none): a
// flight that already replaced it is not repeated.
func (cl *Client) fetchKeys(ctx context.Context, tenant string, stale *tenantKeySet) (*tenantKeySet, error) {
	kc := &cl.keys
	return shared(ctx, &kc.sf, tenant, "OpenIDMetadata", func(ctx context.Context) (*tenantKeySet, error) {
		kc.mu.Lock()
		cur := kc.m[tenant]
		kc.mu.Unlock()
		if cur != nil && cur != stale {
			return cur, nil
		}
		base := cl.cfg.authorityHost + "/" + url.PathEscape(tenant)
		var v2 struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		switch err := cl.getEntraJSON(ctx, base+"/v2.0/.well-known/openid-configuration", &v2); {
		case errors.Is(err, errNotServed):
			return nil, assertionInvalid("Entra ID has no tenant %s", tenant)
		case err != nil:
			return nil, err
		}
		if v2.Issuer == "" || !strings.HasPrefix(v2.JWKSURI, "https://") {
			return nil, &UnavailableError{Op: "OpenIDMetadata", Err: errors.New("the tenant's OpenID metadata has no issuer or jwks_uri")}
		}
		ks := &tenantKeySet{issuers: []string{substituteTenant(v2.Issuer, tenant)}, keys: map[string]*rsa.PublicKey{}, fetched: cl.now()}
		var v1 struct {
			Issuer string `json:"issuer"`
		}
		switch err := cl.getEntraJSON(ctx, base+"/.well-known/openid-configuration", &v1); {
		case err == nil && v1.Issuer != "":
			ks.issuers = append(ks.issuers, substituteTenant(v1.Issuer, tenant))
		case err != nil && !errors.Is(err, errNotServed):
			return nil, err
		}
		var jwks struct {
			Keys []struct {
				Kty string `json:"kty"`
				Kid string `json:"kid"`
				N   string `json:"n"`
				E   string `json:"e"`
			} `json:"keys"`
		}
		if err := cl.getEntraJSON(ctx, v2.JWKSURI, &jwks); err != nil {
			return nil, err
		}
		for _, k := range jwks.Keys {
			if pub := rsaKey(k.Kty, k.N, k.E); pub != nil && k.Kid != "" {
				ks.keys[k.Kid] = pub
			}
		}
		kc.mu.Lock()
		if kc.m == nil || len(kc.m) >= maxKeyTenants {
			kc.m = map[string]*tenantKeySet{}
		}
		kc.m[tenant] = ks
		kc.mu.Unlock()
		return ks, nil
	})
}

// substituteTenant fills the {tenantid} placeholder of a multi-tenant
// authority's issuer.
func substituteTenant(issuer, tenant string) string {
	return strings.ReplaceAll(issuer, "{tenantid}", tenant)
}

// rsaKey decodes a JWK's RSA public key; nil for anything else.
func rsaKey(kty, n, e string) *rsa.PublicKey {
	if kty != "RSA" {
		return nil
	}
	nb, err1 := base64.RawURLEncoding.DecodeString(n)
	eb, err2 := base64.RawURLEncoding.DecodeString(e)
	if err1 != nil || err2 != nil || len(nb) < 256 || len(eb) == 0 || len(eb) > 4 {
		return nil
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(new(big.Int).SetBytes(eb).Int64())}
}

// errNotServed is a metadata document Entra answers 404 (or 400) for.
var errNotServed = errors.New("powerbi: not served")

// getEntraJSON GETs one of Entra's public documents into v. A 400 or 404
// is errNotServed (an unknown tenant answers 400); other failures are
// *UnavailableError.
func (cl *Client) getEntraJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, cl.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return &UnavailableError{Op: "OpenIDMetadata", Err: err}
	}
	res, err := cl.hc.Do(req)
	if err != nil {
		return &UnavailableError{Op: "OpenIDMetadata", Err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	switch {
	case err != nil:
		return &UnavailableError{Op: "OpenIDMetadata", Status: res.StatusCode, Err: err}
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusBadRequest:
		return fmt.Errorf("%w: HTTP %d from %s", errNotServed, res.StatusCode, redactURL(req))
	case res.StatusCode/100 != 2:
		return &UnavailableError{Op: "OpenIDMetadata", Status: res.StatusCode, Err: fmt.Errorf("HTTP %d from %s", res.StatusCode, redactURL(req))}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &UnavailableError{Op: "OpenIDMetadata", Status: res.StatusCode, Err: fmt.Errorf("%s: %w", redactURL(req), err)}
	}
	return nil
}
