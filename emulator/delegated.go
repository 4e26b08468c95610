package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Delegated (user) tokens: the scopes a user flow asks for, the resource
// they name, consent and Conditional Access, as the Microsoft identity
// platform documents them ("Scopes and permissions", "Permissions and
// consent", "Microsoft identity platform access tokens").

// Resources the emulator knows besides the Power BI clouds and the APIs
// apps of the fixture expose.
const (
	resourceGraph = "https://graph.microsoft.com"
)

// powerBIScopes are the Power BI service's delegated permissions.
var powerBIScopes = []string{
	"App.Read.All", "Capacity.Read.All", "Capacity.ReadWrite.All", "Content.Create",
	"Dashboard.Read.All", "Dashboard.ReadWrite.All", "Dataflow.Read.All", "Dataflow.ReadWrite.All",
	"Dataset.Read.All", "Dataset.ReadWrite.All", "Gateway.Read.All", "Gateway.ReadWrite.All",
	"Report.Read.All", "Report.ReadWrite.All", "StorageAccount.Read.All", "StorageAccount.ReadWrite.All",
	"Tenant.Read.All", "Tenant.ReadWrite.All", "UserState.ReadWrite.All", "Workspace.Read.All", "Workspace.ReadWrite.All",
}

// powerBIDefaultScopes is what /.default grants for Power BI: the
// emulator's stand-in for the permissions an app registration lists
// (the fixture does not list them).
var powerBIDefaultScopes = []string{"Content.Create", "Dashboard.Read.All", "Dataset.ReadWrite.All", "Report.ReadWrite.All", "Workspace.Read.All"}

// knownResources are the Microsoft resources other than Power BI a user
// may get tokens for (any scope name).
var knownResources = []string{resourceGraph, AudienceAzureSQL, AudienceDatabricks}

// scopeGrant is a delegated scope request, resolved.
type scopeGrant struct {
	resource string // the audience
	api      *App   // the fixture app exposing it, if any
	scopes   []string
	defaults []string // the /.default scopes asked, as sent
	openid   bool
	offline  bool
}

// audience is the aud claim: a v2 token names the API's client id, a v1
// token its identifier URI.
func (g scopeGrant) audience() string {
	if g.api != nil {
		if g.api.API.AccessTokenVersion == 2 {
			return g.api.ClientID
		}
		return g.api.apiURI()
	}
	return g.resource
}

// scopeList is the response's scope: the granted scopes as full URIs,
// and a /.default scope as it was asked (MSAL refuses a response that
// leaves out a scope it asked for).
func (g scopeGrant) scopeList() string {
	var out []string
	for _, sc := range g.scopes {
		out = append(out, strings.TrimSuffix(g.resource, "/")+"/"+sc)
	}
	if g.resource == resourceGraph {
		out = slices.Clone(g.scopes)
	}
	return strings.Join(append(out, g.defaults...), " ")
}

// resolveScopes reads a user flow's scope parameter: OIDC scopes, and
// scopes of exactly one resource (a bare name is Microsoft Graph's).
func (s *Server) resolveScopes(t *Tenant, raw string) (scopeGrant, *aadError) {
	var g scopeGrant
	var names []string
	resource := ""
	for _, sc := range strings.Fields(raw) {
		switch strings.ToLower(sc) {
		case "openid":
			g.openid = true
			continue
		case "offline_access":
			g.offline = true
			continue
		case "profile", "email":
			continue
		}
		res, name := resourceGraph, sc
		if i := strings.LastIndex(sc, "/"); i >= 0 {
			res, name = sc[:i], sc[i+1:]
		}
		if resource != "" && !sameResource(resource, res) {
			return g, &aadError{status: http.StatusBadRequest, code: "invalid_scope", aadsts: 28000, msg: fmt.Sprintf(
				"Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", raw)}
		}
		resource = res
		names = append(names, name)
		if name == ".default" {
			g.defaults = append(g.defaults, sc)
		}
	}
	if resource == "" {
		resource, names = resourceGraph, []string{"User.Read"}
	}
	g.resource = resource
	invalid := func(name string) *aadError {
		return &aadError{status: http.StatusBadRequest, code: "invalid_scope", aadsts: 70011, msg: fmt.Sprintf(
			"The provided value for the input parameter 'scope' is not valid. The scope %s/%s is not valid.", strings.TrimSuffix(resource, "/"), name)}
	}
	switch {
	case s.isPowerBIResource(resource):
		for _, n := range names {
			if n == ".default" {
				g.scopes = appendNewFold(g.scopes, powerBIDefaultScopes...)
				continue
			}
			i := slices.IndexFunc(powerBIScopes, func(p string) bool { return strings.EqualFold(p, n) })
			if i < 0 {
				return g, invalid(n)
			}
			g.scopes = appendNewFold(g.scopes, powerBIScopes[i])
		}
	case t.apiApp(resource) != nil:
		g.api = t.apiApp(resource)
		g.resource = g.api.apiURI()
		for _, n := range names {
			if n == ".default" {
				g.scopes = appendNewFold(g.scopes, g.api.API.Scopes...)
				continue
			}
			if !containsFold(g.api.API.Scopes, n) {
				return g, invalid(n)
			}
			g.scopes = appendNewFold(g.scopes, n)
		}
	case slices.ContainsFunc(knownResources, func(k string) bool { return sameResource(k, resource) }):
		for _, n := range names {
			if n == ".default" {
				n = "user_impersonation"
				if resource == resourceGraph {
					n = "User.Read"
				}
			}
			g.scopes = appendNewFold(g.scopes, n)
		}
	default:
		return g, &aadError{status: http.StatusBadRequest, code: "invalid_resource", aadsts: 500011, msg: fmt.Sprintf(
			"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
			resource, t.ID)}
	}
	return g, nil
}

func (s *Server) isPowerBIResource(resource string) bool {
	return slices.ContainsFunc(clouds, func(c cloud) bool { return sameResource(c.resource, resource) })
}

// apiApp finds the app of the tenant whose API is resource (by
// identifier URI or client id).
func (t *Tenant) apiApp(resource string) *App {
	for i := range t.Apps {
		a := &t.Apps[i]
		if a.API != nil && (sameResource(a.apiURI(), resource) || strings.EqualFold(a.ClientID, resource)) {
			return a
		}
	}
	return nil
}

func appendNewFold(list []string, add ...string) []string {
	for _, s := range add {
		if !containsFold(list, s) {
			list = append(list, s)
		}
	}
	return list
}

// userGate applies what stands between a user and a delegated token:
// consent to the client app (AADSTS65001), then the Conditional Access
// policies that require MFA for this user and resource (AADSTS50076 with
// a claims challenge naming the policies) when the sign-in did not
// satisfy MFA. interaction is the error string of the MFA refusal:
// interaction_required for on-behalf-of, as the OBO page's example;
// invalid_grant for the password grant.
func (s *Server) userGate(t *Tenant, client *App, u *User, g scopeGrant, amr []string, interaction string) *aadError {
	if g.api != client && !s.world.consented(client, u) {
		return &aadError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 65001, suberror: "consent_required", msg: fmt.Sprintf(
			"The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.",
			client.ClientID, client.Name)}
	}
	if slices.Contains(amr, "mfa") {
		return nil
	}
	var ids []string
	for _, p := range t.ConditionalAccess {
		users := len(p.Users) == 0 || containsFold(p.Users, u.UPN) || containsFold(p.Users, u.ObjectID)
		res := len(p.Resources) == 0 || slices.ContainsFunc(p.Resources, func(r string) bool {
			return sameResource(r, g.resource) || sameResource(r, g.audience())
		})
		if users && res {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	claims, _ := json.Marshal(map[string]any{"access_token": map[string]any{"polids": map[string]any{"essential": true, "values": ids}}})
	e := &aadError{status: http.StatusBadRequest, code: interaction, aadsts: 50076, claims: string(claims), msg: fmt.Sprintf(
		"Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.",
		g.resource)}
	if interaction == "invalid_grant" {
		e.suberror = "basic_action"
	}
	return e
}

// clientInfo is the client_info MSAL builds the account's home id from.
func clientInfo(u *User, t *Tenant) string {
	b, _ := json.Marshal(map[string]string{"uid": u.ObjectID, "utid": t.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}
