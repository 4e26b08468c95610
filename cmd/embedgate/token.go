package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/embedgate/embedgate/internal/pbiurl"
	"github.com/embedgate/embedgate/powerbi"
	"github.com/embedgate/embedgate/server"
)

// defaultPublicClient is the app --device-login signs in as unless
// --client-id names another: the public client of Microsoft's Power BI
// Management PowerShell module (MicrosoftPowerBIMgmt,
// Connect-PowerBIServiceAccount; github.com/microsoft/powerbi-powershell).
// It is a Microsoft application in every tenant, allowed to ask for the
// Power BI service's delegated permissions and to use the device code flow,
// so that a developer needs no app registration of their own; a tenant
// that blocks it needs --client-id and --tenant.
const defaultPublicClient = "23d8f6bd-1eb0-4cc2-a08c-7bf525c67bcd"

// tokenAbout is what `embedgate token --help` says before its flags.
const tokenAbout = `usage: embedgate token --report-url URL [--report-url URL...] (--device-login | --config FILE) [flags]
       embedgate token --workspace-id ID --report-id ID [--report-id ID...] (--device-login | --config FILE) [flags]
       embedgate token --device-login --print-assertion SCOPE

Get an embed token for a quick test: paste the address the browser shows for a
report, a paginated report or a dashboard (app.powerbi.com, the government and
China clouds' hosts, app.fabric.microsoft.com; groups/me for My workspace). The
datasets are read from the reports. It prints the token, its id, its expiry,
the embed URLs and the exact request sent to Power BI (--json for scripts);
--html FILE also writes a page that embeds the items with the token, with
Microsoft's powerbi-client (built in: no CDN).

Sign in as yourself with --device-login: open the address it prints and enter
the code. The sign-in is cached (--cache-file, default
<user cache dir>/embedgate/msal-token-cache.json, private to you), so the next
run is silent. The default app is the public client of Microsoft's Power BI
Management PowerShell module (` + defaultPublicClient + `), which
needs no app registration; name your own with --client-id and --tenant. Power
BI mints no embed token for items in My workspace: for those you get your own
access token, to embed with tokenType Aad.

Or sign in as the service with --config FILE: the service principal of a server
config, as production does. With --tenant-key KEY --user USER the tenant's
policy decides (workspaces, row-level security, edit, lifetime) exactly as for
its callers, and the token minted is theirs.

--device-login with --config takes the config's endpoints and tenant (against
'make run': --config .dev/config.yaml); --cloud, --authority-host, --api-url and
--ca-file set or override them.

--print-assertion SCOPE prints only your access token for SCOPE (such as
api://<Embedgate's client id>/access_as_user): the user assertion of
GenerateUserEmbedConfig.

flags:
`

// tokenOptions are `embedgate token`'s flags.
type tokenOptions struct {
	reportURLs, reportIDs           listFlag
	workspaceID, dashboardID        string
	deviceLogin                     bool
	config                          string
	tenant, clientID, account       string
	cacheFile                       string
	cloud, authorityHost, apiURL    string
	caFile                          string
	tenantKey, user                 string
	rlsUsername, rlsRoles, custData string
	lifetime                        time.Duration
	allowEdit                       bool
	json                            bool
	html                            string
	printAssertion                  string

	policyFile string // --config's policy_file
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func tokenFlags(fs *flag.FlagSet) *tokenOptions {
	o := &tokenOptions{}
	fs.Var(&o.reportURLs, "report-url", "the address of a report, paginated report or dashboard, as the browser shows it (repeatable)")
	fs.StringVar(&o.workspaceID, "workspace-id", "", "the workspace of --report-id and --dashboard-id (\"me\": My workspace)")
	fs.Var(&o.reportIDs, "report-id", "a report id in --workspace-id (repeatable)")
	fs.StringVar(&o.dashboardID, "dashboard-id", "", "a dashboard id in --workspace-id")
	fs.BoolVar(&o.deviceLogin, "device-login", false, "sign in as yourself, with a device code")
	fs.StringVar(&o.config, "config", "", "a server config: its service principal (without --device-login), its endpoints and tenant")
	fs.StringVar(&o.tenant, "tenant", "", "--device-login: the Entra tenant (id or domain; default the config's tenant_id, else organizations)")
	fs.StringVar(&o.clientID, "client-id", "", "--device-login: the public client app (default "+defaultPublicClient+", Microsoft's Power BI PowerShell)")
	fs.StringVar(&o.account, "account", "", "--device-login: which cached account, when several are signed in")
	fs.StringVar(&o.cacheFile, "cache-file", "", "--device-login: the token cache file (default <user cache dir>/embedgate/msal-token-cache.json)")
	fs.StringVar(&o.cloud, "cloud", "", "public, usgov, usgovhigh, usgovdod or china (default: the config's, else the URL's)")
	fs.StringVar(&o.authorityHost, "authority-host", "", "the Entra ID host, https://host[:port] (an emulator)")
	fs.StringVar(&o.apiURL, "api-url", "", "the Power BI REST API's base URL (an emulator)")
	fs.StringVar(&o.caFile, "ca-file", "", "extra root CAs (PEM) for those endpoints")
	fs.StringVar(&o.tenantKey, "tenant-key", "", "--config: decide by this tenant's policy, as for its callers")
	fs.StringVar(&o.user, "user", "", "--tenant-key: the end user the policy builds the RLS identity from")
	fs.StringVar(&o.rlsUsername, "rls-username", "", "row-level security: the effective identity's username")
	fs.StringVar(&o.rlsRoles, "rls-roles", "", "row-level security: roles, comma-separated")
	fs.StringVar(&o.custData, "custom-data", "", "row-level security: customData (CUSTOMDATA() in the model)")
	fs.DurationVar(&o.lifetime, "lifetime", 0, "the token's lifetime, whole minutes (default Power BI's: the sign-in's remaining life)")
	fs.BoolVar(&o.allowEdit, "allow-edit", false, "a token that may edit the reports")
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.StringVar(&o.html, "html", "", "also write a page that embeds the items with the token to this file")
	fs.StringVar(&o.printAssertion, "print-assertion", "", "--device-login: print only your access token for this scope")
	return o
}

// token is `embedgate token`.
func token(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	o := tokenFlags(fs)
	if done, err := parseFlags(fs, args, tokenAbout, stdout, stderr); done {
		return err
	}
	if err := o.check(); err != nil {
		return fmt.Errorf("token: %w: %w", err, errUsage)
	}
	items, err := o.items()
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	pcfg, err := o.endpoints(items)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	rec, err := newRecorder(pcfg)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	var out *tokenOutput
	if o.deviceLogin {
		out, err = o.asUser(ctx, pcfg, rec, items, stdout, stderr)
	} else {
		out, err = o.asService(ctx, pcfg, rec, items, stderr)
	}
	if err != nil || out == nil {
		return err
	}
	out.Request = rec.sent()
	if err := out.print(stdout, o.json); err != nil {
		return err
	}
	if o.html != "" {
		if err := out.writePage(o.html); err != nil {
			return fmt.Errorf("token: --html: %w", err)
		}
		fmt.Fprintf(stderr, "Wrote %s: it holds the token, until %s.\n", o.html, out.Expiration.Format(time.RFC3339))
	}
	return nil
}

// check refuses flag combinations that mean nothing, naming the flags.
func (o *tokenOptions) check() error {
	userOnly := map[string]string{"--tenant": o.tenant, "--client-id": o.clientID, "--account": o.account, "--cache-file": o.cacheFile, "--print-assertion": o.printAssertion}
	rls := o.rlsUsername != "" || o.rlsRoles != "" || o.custData != ""
	switch {
	case !o.deviceLogin && o.config == "":
		return errors.New("sign in with --device-login (as yourself) or --config FILE (as the service's principal)")
	case o.printAssertion != "" && (len(o.reportURLs)+len(o.reportIDs) > 0 || o.dashboardID != "" || o.html != ""):
		return errors.New("--print-assertion prints a token for its scope only: leave out the items and --html")
	case o.tenantKey != "" && o.deviceLogin:
		return errors.New("--tenant-key applies the tenant's policy with the service principal of --config: leave out --device-login")
	case o.tenantKey != "" && o.user == "":
		return errors.New("--tenant-key needs --user: the end user the tenant's policy builds the RLS identity from")
	case o.user != "" && o.tenantKey == "":
		return errors.New("--user names the end user for --tenant-key's policy; without it, set the identity with --rls-username")
	case o.tenantKey != "" && rls:
		return errors.New("the tenant's policy decides row-level security: leave out --rls-username, --rls-roles and --custom-data")
	case o.rlsUsername == "" && (o.rlsRoles != "" || o.custData != ""):
		return errors.New("--rls-roles and --custom-data need --rls-username")
	case o.lifetime < 0 || (o.lifetime > 0 && o.lifetime < time.Minute):
		return errors.New("--lifetime is at least 1m")
	}
	if !o.deviceLogin {
		for name, v := range userOnly {
			if v != "" {
				return fmt.Errorf("%s is for --device-login", name)
			}
		}
	}
	return nil
}

// items are the items asked for, from the URLs and the ids; nil for
// --print-assertion.
func (o *tokenOptions) items() ([]pbiurl.Item, error) {
	if o.printAssertion != "" {
		return nil, nil
	}
	var items []pbiurl.Item
	for _, u := range o.reportURLs {
		it, err := pbiurl.Parse(u)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	if (len(o.reportIDs) > 0 || o.dashboardID != "") && o.workspaceID == "" {
		return nil, fmt.Errorf("--report-id and --dashboard-id need --workspace-id (\"me\" for My workspace), or use --report-url: %w", errUsage)
	}
	ws := strings.ToLower(o.workspaceID)
	if ws == "me" {
		ws = ""
	}
	for _, id := range o.reportIDs {
		items = append(items, pbiurl.Item{Kind: pbiurl.Report, ID: strings.ToLower(id), WorkspaceID: ws})
	}
	if o.dashboardID != "" {
		items = append(items, pbiurl.Item{Kind: pbiurl.Dashboard, ID: strings.ToLower(o.dashboardID), WorkspaceID: ws})
	}
	switch dashboards := countKind(items, pbiurl.Dashboard); {
	case len(items) == 0:
		return nil, fmt.Errorf("name what to embed with --report-url (or --workspace-id and --report-id): %w", errUsage)
	case dashboards > 0 && len(items) > 1:
		return nil, fmt.Errorf("a token embeds reports, or one dashboard: ask for the dashboard alone: %w", errUsage)
	}
	return items, nil
}

func countKind(items []pbiurl.Item, k pbiurl.Kind) int {
	n := 0
	for _, it := range items {
		if it.Kind == k {
			n++
		}
	}
	return n
}

// endpoints is the powerbi config the command reaches Entra ID and Power
// BI with: --config's block (with its credential), the flags over it, and
// the cloud of the URLs when nothing else names one.
func (o *tokenOptions) endpoints(items []pbiurl.Item) (powerbi.Config, error) {
	var c powerbi.Config
	if o.config != "" {
		cfg, err := server.LoadConfig(o.config)
		if err != nil {
			return c, err
		}
		c = cfg.PowerBI
		o.policyFile = cfg.PolicyFile
	}
	urlCloud := ""
	for _, it := range items {
		switch {
		case it.Cloud == "":
		case urlCloud == "":
			urlCloud = it.Cloud
		case urlCloud != it.Cloud:
			return c, fmt.Errorf("the URLs are of two clouds, %s and %s", urlCloud, it.Cloud)
		}
	}
	if o.cloud != "" {
		c.Cloud = o.cloud
	}
	custom := o.authorityHost != "" || o.apiURL != "" || c.AuthorityHost != "" || c.APIURL != ""
	switch {
	case c.Cloud == "" && urlCloud != "" && !custom:
		c.Cloud = urlCloud
	case urlCloud != "" && !custom && !strings.EqualFold(cloudOr(c.Cloud), urlCloud):
		return c, fmt.Errorf("the URL is in the %s cloud, and the %s cloud is configured: set --cloud %s", urlCloud, cloudOr(c.Cloud), urlCloud)
	}
	for _, f := range []struct {
		flag  string
		field *string
	}{{o.authorityHost, &c.AuthorityHost}, {o.apiURL, &c.APIURL}, {o.caFile, &c.CAFile}} {
		if f.flag != "" {
			*f.field = f.flag
		}
	}
	if o.deviceLogin {
		switch {
		case o.tenant != "":
			c.TenantID = o.tenant
		case c.TenantID == "":
			c.TenantID = "organizations"
		}
	}
	if ps := c.ValidateEndpoints(); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = p.String()
		}
		return c, errors.New(strings.Join(msgs, "; "))
	}
	return c, nil
}

func cloudOr(c string) string {
	if c == "" {
		return powerbi.DefaultCloud
	}
	return strings.ToLower(c)
}
