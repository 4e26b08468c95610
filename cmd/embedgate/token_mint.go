package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/internal/devicelogin"
	"github.com/embedgate/embedgate/internal/pbiurl"
	"github.com/embedgate/embedgate/powerbi"
	"github.com/embedgate/embedgate/server"
)

// The three ways `embedgate token` gets a token: as the signed-in user
// (asUser; myWorkspace for My workspace), and as the service principal
// (asService), by the tenant's policy or by the flags.

// userTokenMargin is the least life a signed-in user's token is used with:
// MSAL's own margin, after which it renews silently.
const userTokenMargin = 5 * time.Minute

// quietLogger discards the gateway's own log: the command reports errors
// itself, with the API's words.
var quietLogger = slog.New(slog.DiscardHandler)

// asUser signs in with a device code and mints as the signed-in user (or,
// for My workspace, hands out the user's own token).
func (o *tokenOptions) asUser(ctx context.Context, pcfg powerbi.Config, rec *recorder, items []pbiurl.Item, stdout, stderr io.Writer) (*tokenOutput, error) {
	ep := pcfg.Endpoints()
	cacheFile := o.cacheFile
	if cacheFile == "" {
		var err error
		if cacheFile, err = devicelogin.DefaultCacheFile(); err != nil {
			return nil, fmt.Errorf("token: no cache folder (%v): set --cache-file", err)
		}
	}
	hc, err := pcfg.HTTPClient()
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	clientID := o.clientID
	if clientID == "" {
		clientID = defaultPublicClient
	}
	session, err := devicelogin.New(devicelogin.Config{Authority: ep.Authority, ClientID: clientID, InstanceDiscovery: ep.InstanceDiscovery,
		HTTPClient: hc, CacheFile: cacheFile, Account: o.account, Prompt: stderr})
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if o.printAssertion != "" {
		ar, err := session.Token(ctx, []string{o.printAssertion})
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		fmt.Fprintln(stdout, ar.AccessToken)
		return nil, nil
	}
	// Signed in once, before any call: the gateway asks for the token from
	// concurrent lookups, which must neither each start a device code
	// sign-in nor each ask MSAL.
	var (
		mu  sync.Mutex
		cur powerbi.UserToken
	)
	src := func(ctx context.Context) (powerbi.UserToken, error) {
		mu.Lock()
		defer mu.Unlock()
		if cur.Value != "" && time.Until(cur.ExpiresOn) > userTokenMargin {
			return cur, nil
		}
		ar, err := session.Token(ctx, []string{ep.Scope})
		if err != nil {
			return powerbi.UserToken{}, err
		}
		cur = powerbi.UserToken{Value: ar.AccessToken, ExpiresOn: ar.ExpiresOn}
		return cur, nil
	}
	first, err := session.Token(ctx, []string{ep.Scope})
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	cur = powerbi.UserToken{Value: first.AccessToken, ExpiresOn: first.ExpiresOn}
	signedInAs := first.Account.PreferredUsername
	gw, err := powerbi.NewAsUser(pcfg, src, powerbi.WithHTTPClient(rec.client), powerbi.WithLogger(quietLogger))
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	defer gw.Close()
	if items[0].MyWorkspace() {
		out, err := o.myWorkspace(ctx, gw, src, items)
		if out != nil {
			out.How = "signed in as " + signedInAs
		}
		return out, err
	}
	req := powerbi.TokenRequest{Items: gatewayItems(items), AllowEdit: o.allowEdit, Lifetime: o.lifetime, Identity: o.identity(items)}
	if err := openEveryModel(ctx, gw, &req); err != nil {
		return nil, apiError(err)
	}
	tok, err := gw.Issue(ctx, req)
	if err != nil {
		return nil, apiError(err)
	}
	return embedOutput(tok, "signed in as "+signedInAs), nil
}

// myWorkspace hands out the user's own access token and the reports' embed
// URLs, read as the user: Power BI mints no embed token for My workspace
// ("Generate an embed token"), and powerbi-client embeds them with tokenType
// Aad.
func (o *tokenOptions) myWorkspace(ctx context.Context, gw *powerbi.Client, src powerbi.UserTokenSource, items []pbiurl.Item) (*tokenOutput, error) {
	ids := make([]string, len(items))
	for i, it := range items {
		switch {
		case !it.MyWorkspace():
			return nil, errors.New("token: items of My workspace and of a workspace cannot share a token: ask for them separately")
		case it.Kind == pbiurl.Dashboard:
			return nil, errors.New("token: dashboards of My workspace are not supported: use the dashboard of a workspace")
		}
		ids[i] = it.ID
	}
	if o.allowEdit || o.lifetime > 0 || o.rlsUsername != "" {
		return nil, errors.New("token: items in My workspace are embedded with your own access token: --allow-edit, --lifetime and --rls-username do not apply")
	}
	tok, err := src(ctx)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	embedded, err := gw.ReportsAsUser(ctx, tok.Value, "", ids)
	if err != nil {
		return nil, apiError(err)
	}
	out := &tokenOutput{TokenType: "Aad", Token: tok.Value, Expiration: tok.ExpiresOn.UTC(),
		Note: "Power BI mints no embed token for My workspace: this is your own access token, for tokenType Aad"}
	for _, e := range embedded {
		out.Items = append(out.Items, itemOf(e))
	}
	return out, nil
}

// asService mints with --config's service principal: by the tenant's
// policy with --tenant-key, else as the flags say.
func (o *tokenOptions) asService(ctx context.Context, pcfg powerbi.Config, rec *recorder, items []pbiurl.Item, stderr io.Writer) (*tokenOutput, error) {
	for _, it := range items {
		if it.MyWorkspace() {
			return nil, errors.New("token: a service principal has no My workspace: sign in with --device-login for items in yours")
		}
	}
	gw, err := powerbi.New(pcfg, powerbi.WithHTTPClient(rec.client), powerbi.WithLogger(quietLogger))
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	defer gw.Close()
	req := powerbi.TokenRequest{Items: gatewayItems(items), AllowEdit: o.allowEdit, Lifetime: o.lifetime, Identity: o.identity(items)}
	how := "as the service principal " + pcfg.ClientID
	if o.tenantKey != "" {
		policy, err := authz.Load(o.policyFile)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		refs := make([]authz.ItemRef, len(items))
		for i, it := range items {
			refs[i] = authz.ItemRef{Kind: authz.KindReport, ID: it.ID}
			if it.Kind == pbiurl.Dashboard {
				refs[i].Kind = authz.KindDashboard
			}
		}
		grant, tr, err := server.TenantTokenRequest(ctx, policy, gw, authz.Request{Tenant: o.tenantKey, User: o.user, Items: refs, AllowEdit: o.allowEdit, Lifetime: o.lifetime})
		if err != nil {
			return nil, apiError(err)
		}
		for i, it := range grant.Items {
			if items[i].WorkspaceID != "" && items[i].WorkspaceID != it.WorkspaceID {
				fmt.Fprintf(stderr, "note: the URL puts %s %s in workspace %s; tenant %s's policy places it in %s, which is used\n",
					items[i].Kind, it.ID, items[i].WorkspaceID, o.tenantKey, it.WorkspaceID)
			}
		}
		req = tr
		how = fmt.Sprintf("as the service principal %s, by tenant %s's policy (%s) for user %s", pcfg.ClientID, o.tenantKey, grant.Rule, o.user)
	} else if err := openEveryModel(ctx, gw, &req); err != nil {
		return nil, apiError(err)
	}
	tok, err := gw.Issue(ctx, req)
	switch {
	case o.tenantKey == "" && (errors.Is(err, powerbi.ErrIdentityRequired) || errors.Is(err, powerbi.ErrRolesRequired)):
		return nil, fmt.Errorf("token: %w; a service principal must name the effective identity of a dataset with row-level security: set --rls-username and --rls-roles", err)
	case err != nil:
		return nil, apiError(err)
	}
	return embedOutput(tok, how), nil
}

// openEveryModel lets the token open every dataset its reports read (a
// composite model's upstream datasets, a paginated report's datasets),
// which the gateway otherwise opens only on a policy's decision: without
// a policy, the developer's request is the decision. The identity of the
// flags applies to each as usual; no identity blob is sent.
func openEveryModel(ctx context.Context, gw *powerbi.Client, req *powerbi.TokenRequest) error {
	models, err := gw.Models(ctx, *req)
	if err != nil {
		return err
	}
	for _, m := range models {
		req.Models = append(req.Models, powerbi.ModelGrant{ID: m.ID})
	}
	return nil
}

// The identity goes to the datasets that enforce row-level security;
// those that enforce none get no identity (Power BI refuses one), as a
// developer testing a report expects, rather than a refusal: the requested
// reports are listed as carrying no RLS on purpose.
func (o *tokenOptions) identity(items []pbiurl.Item) *powerbi.Identity {
	if o.rlsUsername == "" {
		return nil
	}
	id := &powerbi.Identity{Username: o.rlsUsername, CustomData: o.custData}
	for _, r := range strings.Split(o.rlsRoles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			id.Roles = append(id.Roles, r)
		}
	}
	for _, it := range items {
		id.WithoutRLS = append(id.WithoutRLS, it.ID)
	}
	return id
}

// gatewayItems are the items in the gateway's terms.
func gatewayItems(items []pbiurl.Item) []powerbi.Item {
	out := make([]powerbi.Item, len(items))
	for i, it := range items {
		out[i] = powerbi.Item{Kind: powerbi.KindReport, ID: it.ID, WorkspaceID: it.WorkspaceID}
		if it.Kind == pbiurl.Dashboard {
			out[i].Kind = powerbi.KindDashboard
		}
	}
	return out
}

// apiError reports err as the API would (its message and reason), with the
// gateway's own words after them (Power BI's code and message, its
// RequestId): what a developer needs, and never a token.
func apiError(err error) error {
	st := server.StatusOf(err)
	reason := ""
	for _, d := range st.Details() {
		if info, ok := d.(interface{ GetReason() string }); ok {
			reason = info.GetReason()
		}
	}
	var d *authz.Denial
	if errors.As(err, &d) || st.Message() == err.Error() {
		return fmt.Errorf("token: %s [%s]", st.Message(), reason)
	}
	return fmt.Errorf("token: %s [%s]: %w", st.Message(), reason, err)
}
