package emulator

import (
	"fmt"
	"net/url"
	"strings"
)

// users checks a tenant's users and Conditional Access policies, and adds
// the users to the known principals.
func (v *validator) users(key string, t Tenant, known principalIDs) {
	if t.DeviceCodeInterval < 0 {
		v.addf("%s.device_code_interval: negative", key)
	}
	for i, u := range t.Users {
		ukey := fmt.Sprintf("%s.users[%d]", key, i)
		if at := strings.LastIndex(u.UPN, "@"); at <= 0 || at == len(u.UPN)-1 || strings.ContainsAny(u.UPN, " /") {
			v.addf("%s.upn: %q is not a user principal name (name@domain)", ukey, u.UPN)
		}
		v.unique(known.users, ukey+".upn", u.UPN)
		v.id(ukey+".object_id", u.ObjectID)
		v.unique(known.users, ukey+".object_id", u.ObjectID)
		switch strings.ToLower(u.License) {
		case "", LicenseFree, LicensePro, LicensePPU:
		default:
			v.addf("%s.license: %q is not free, pro or ppu", ukey, u.License)
		}
	}
	for i, p := range t.ConditionalAccess {
		pkey := fmt.Sprintf("%s.conditional_access[%d]", key, i)
		v.id(pkey+".id", p.ID)
		for j, u := range p.Users {
			if t.user(u) == nil {
				v.addf("%s.users[%d]: %q is no user of the tenant", pkey, j, u)
			}
		}
		for j, r := range p.Resources {
			if strings.TrimSpace(r) == "" {
				v.addf("%s.resources[%d]: empty", pkey, j)
			}
		}
	}
}

// appAPI checks the web API an app exposes.
func (v *validator) appAPI(key string, a App, seen map[string]bool) {
	api := a.API
	if api == nil {
		return
	}
	if api.IdentifierURI != "" {
		if u, err := url.Parse(api.IdentifierURI); err != nil || u.Scheme == "" {
			v.addf("%s.api.identifier_uri: %q is not a URI", key, api.IdentifierURI)
		}
	}
	v.unique(seen, key+".api.identifier_uri", a.apiURI())
	if len(api.Scopes) == 0 {
		v.addf("%s.api.scopes: at least one scope", key)
	}
	for i, sc := range api.Scopes {
		if sc == "" || strings.ContainsAny(sc, " /") {
			v.addf("%s.api.scopes[%d]: %q is not a scope name", key, i, sc)
		}
	}
	if api.AccessTokenVersion != 0 && api.AccessTokenVersion != 1 && api.AccessTokenVersion != 2 {
		v.addf("%s.api.access_token_version: %d is not 1 or 2", key, api.AccessTokenVersion)
	}
}

// apiURI is the Application ID URI of the app's API ("" without one).
func (a *App) apiURI() string {
	switch {
	case a.API == nil:
		return ""
	case a.API.IdentifierURI != "":
		return a.API.IdentifierURI
	}
	return "api://" + a.ClientID
}

// user finds a user of the tenant by UPN or object id.
func (t *Tenant) user(id string) *User {
	for i := range t.Users {
		if strings.EqualFold(t.Users[i].UPN, id) || strings.EqualFold(t.Users[i].ObjectID, id) {
			return &t.Users[i]
		}
	}
	return nil
}
