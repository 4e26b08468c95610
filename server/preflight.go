package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/powerbi"
)

// Finding is one thing the preflight found that will make calls fail, named by
// tenant and item: what `embedgate check --online` prints, one per line, and
// what the server logs at start and on every policy reload.
type Finding struct {
	// Tenant is the tenant key; "" for what concerns every tenant (the
	// sign-in, the tenant setting for service principals).
	Tenant string
	// Subject is what the finding is about: "sign-in", "workspace <id>",
	// "report <id>", "dashboard <id>", "dataset <id> of report <id>".
	Subject string
	// Message says what is wrong and what to do.
	Message string
}

// String is the finding as one line.
func (f Finding) String() string {
	if f.Tenant == "" {
		return f.Subject + ": " + f.Message
	}
	return "tenant " + f.Tenant + ": " + f.Subject + ": " + f.Message
}

// PreflightGateway is what the preflight asks Power BI (powerbi.Client).
type PreflightGateway interface {
	CheckCredential(ctx context.Context) error
	Workspace(ctx context.Context, profileID, id string) (powerbi.WorkspaceInfo, error)
	ReportIDs(ctx context.Context, profileID, workspaceID string) ([]string, error)
	TrialUsage(ctx context.Context, profileID string) (int, error)
	Models(ctx context.Context, r powerbi.TokenRequest) ([]powerbi.Model, error)
	Plan(ctx context.Context, r powerbi.TokenRequest) (*powerbi.Plan, error)
}

// preflightUser is the end user the preflight plans tokens for: any user
// would do, since only the policy's templates depend on it.
const preflightUser = "preflight@embedgate.check"

// Preflight checks a production setup before callers do, with the real
// credential against the configured Power BI, and returns one finding per
// problem: Entra rejects the service principal; the tenant setting does not
// let service principals use the APIs; the principal (or the tenant's profile)
// is not a member of a workspace; a workspace is not on a dedicated capacity,
// so only trial tokens can be minted; a listed report or dashboard is not
// there (moved or deleted); a dataset's row-level security and the tenant's
// rls block disagree; the tenant's identity does not fit a dataset's kind of
// model, or its sso list a dataset without single sign-on; a report reads a
// dataset outside the tenant's workspaces; Entra refuses the identity blob of
// a single sign-on data source. It mints nothing: each item is planned as its
// token would be (Explain's path). RLS role names cannot be checked: Power BI's
// REST API does not list a model's roles to a service principal (Execute
// Queries refuses RLS models and INFO functions).
func Preflight(ctx context.Context, policy *authz.Policy, gw PreflightGateway) []Finding {
	return preflight(ctx, policy, policy.Tenants(), gw)
}

// CheckOnline is `embedgate check --online`: the preflight of cfg's policy,
// with cfg's credential against cfg's Power BI, and shared state's Redis.
func CheckOnline(ctx context.Context, cfg *Config) ([]Finding, error) {
	policy, err := authz.Load(cfg.PolicyFile)
	if err != nil {
		return nil, err
	}
	gw, err := powerbi.New(cfg.PowerBI, powerbi.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	defer gw.Close()
	findings := Preflight(ctx, policy, gw)
	if cfg.SharedState.Enabled() {
		findings = append(findings, checkSharedState(ctx, cfg.SharedState)...)
	}
	return findings, nil
}

// preflight is Preflight for some tenants of the policy.
func preflight(ctx context.Context, policy *authz.Policy, tenants []authz.Tenant, gw PreflightGateway) []Finding {
	if err := gw.CheckCredential(ctx); err != nil {
		return []Finding{{Subject: "sign-in", Message: err.Error()}}
	}
	var (
		out         []Finding
		switchNoted bool
	)
	add := func(tenant, subject, msg string) {
		out = append(out, Finding{Tenant: tenant, Subject: subject, Message: msg})
	}
	// access reports the refusals that concern the principal rather than an
	// item; the tenant setting is reported once for all tenants.
	access := func(tenant, subject string, err error) bool {
		switch {
		case errors.Is(err, powerbi.ErrPrincipalNotAllowed):
			if !switchNoted {
				switchNoted = true
				add("", "tenant setting", `Power BI's tenant setting "Service principals can use Fabric APIs" does not allow Embedgate's service principal: a Power BI administrator must enable it for a security group the principal is in`)
			}
		case errors.Is(err, powerbi.ErrNotAuthorized), errors.Is(err, powerbi.ErrForbidden):
			add(tenant, subject, "Embedgate's service principal (or the tenant's profile) may not use it: make it Member or Admin of the workspace ("+err.Error()+")")
		default:
			return false
		}
		return true
	}
	for _, t := range tenants {
		for _, w := range t.Workspaces {
			subject := "workspace " + w.ID
			info, err := gw.Workspace(ctx, t.ProfileID, w.ID)
			if err != nil {
				if !access(t.Key, subject, err) {
					add(t.Key, subject, "could not be read: "+err.Error())
				}
				continue
			}
			if !info.Member {
				who := "Embedgate's service principal"
				if t.ProfileID != "" {
					who = "the tenant's service-principal profile " + t.ProfileID
				}
				add(t.Key, subject, who+" has no role in it, or it does not exist: add it as Member or Admin")
				continue
			}
			if !info.DedicatedCapacity {
				usage := "usage unknown"
				if u, err := gw.TrialUsage(ctx, t.ProfileID); err == nil {
					usage = fmt.Sprintf("%d%% used", u)
				}
				add(t.Key, subject, "is not on a dedicated capacity: only a limited number of trial embed tokens can be minted ("+usage+"); assign it to a Power BI Embedded or Fabric capacity")
			}
			reports := w.Reports
			if w.AllReports {
				ids, err := gw.ReportIDs(ctx, t.ProfileID, w.ID)
				if err != nil {
					if !access(t.Key, subject, err) {
						add(t.Key, subject, "its reports could not be listed: "+err.Error())
					}
				}
				reports = append(reports, ids...)
			}
			for _, id := range reports {
				checkItem(ctx, policy, gw, t, authz.ItemRef{Kind: authz.KindReport, ID: id}, add, access)
			}
			for _, id := range w.Dashboards {
				checkItem(ctx, policy, gw, t, authz.ItemRef{Kind: authz.KindDashboard, ID: id}, add, access)
			}
		}
	}
	return out
}

// checkItem plans the token of one item, as Explain does, and reports why it
// would fail.
func checkItem(ctx context.Context, policy *authz.Policy, gw PreflightGateway, t authz.Tenant, item authz.ItemRef,
	add func(tenant, subject, msg string), access func(tenant, subject string, err error) bool) {
	subject := item.Kind.String() + " " + item.ID
	grant, err := policy.GrantFor(t.Key, preflightUser, []authz.ItemRef{item})
	if err != nil {
		add(t.Key, subject, "the policy cannot grant it: "+err.Error())
		return
	}
	r, models, err := decidedRequest(ctx, gw, grant)
	if err == nil {
		_, err = gw.Plan(ctx, r)
	}
	var (
		pre   *powerbi.PreconditionError
		d     *authz.Denial
		cred  *powerbi.CredentialError
		limit *powerbi.LimitError
	)
	switch {
	case err == nil:
	case access(t.Key, subject, err):
	case errors.Is(err, powerbi.ErrNotFound):
		add(t.Key, subject, "not found in its workspace (moved or deleted?)")
	case errors.As(err, &d) && errors.Is(err, authz.ErrDatasetNotAllowed):
		m := modelOf(models, d.Dataset)
		add(t.Key, "dataset "+d.Dataset+" of "+subject, fmt.Sprintf("read by %s, is in workspace %q, none of the tenant's: calls are refused (DATASET_NOT_ALLOWED); if that workspace is the tenant's, list it under workspaces, else fix the model", m.ReadBy, m.WorkspaceID))
	case errors.As(err, &d):
		// The policy does not fit a dataset's kind of model: the message
		// names the dataset and what to change, the rule where.
		add(t.Key, subject, fmt.Sprintf("%s: calls are refused (%s, %s)", d.Message, reasonOf(errorStatus(err)), d.Rule))
	case errors.As(err, &cred) && cred.Resource != "":
		add(t.Key, subject, "Entra refuses Embedgate's service principal the identity blob of its single sign-on data source ("+cred.Resource+"): "+err.Error())
	case errors.As(err, &limit):
		add(t.Key, subject, limit.Error()+" (TOKEN_LIMIT_EXCEEDED)")
	case errors.As(err, &pre):
		on := "dataset " + pre.DatasetID + " of " + subject
		switch m := modelOf(models, pre.DatasetID); {
		case errors.Is(err, powerbi.ErrRLSNotEnforced):
			add(t.Key, on, "enforces no row-level security, and the tenant has an rls block: calls are refused (RLS_NOT_ENFORCED); restore the model's roles, or list it under rls.without_rls")
		case errors.Is(err, powerbi.ErrRolesRequired):
			add(t.Key, on, "requires RLS roles, and the tenant's rls block gives it none")
		case !t.RLS && len(m.SSO) > 0:
			add(t.Key, on, "requires an effective identity, the tenant has no rls block, and its single sign-on data source gets no identity blob: calls are refused; list the dataset under sso, or give the tenant an rls block")
		case !t.RLS:
			add(t.Key, on, "requires an effective identity (row-level security), and the tenant has no rls block: calls are refused")
		default:
			add(t.Key, on, err.Error())
		}
	case errors.Is(err, powerbi.ErrUnsupported):
		// Embeddable, alone (a paginated report): nothing to report.
	default:
		add(t.Key, subject, "could not be checked: "+err.Error())
	}
}

// modelOf finds a model by id.
func modelOf(models []powerbi.Model, id string) powerbi.Model {
	for _, m := range models {
		if strings.EqualFold(m.ID, id) {
			return m
		}
	}
	return powerbi.Model{ID: id}
}

// watchPreflight runs the preflight at start and, after every policy reload,
// for the tenants whose entries the reload changed; it logs each finding as a
// warning and sets the metric to the problems of the policy in force. It never
// blocks serving: findings are what callers will meet, not reasons to refuse
// a policy.
func watchPreflight(ctx context.Context, store interface {
	Current() *authz.Policy
	Subscribe() <-chan string
}, gw PreflightGateway, m *Metrics, logger *slog.Logger) {
	reloads := store.Subscribe()
	checked := map[string]string{}  // tenant -> digest checked
	found := map[string][]Finding{} // tenant ("" = every tenant) -> findings
	for {
		policy := store.Current()
		var todo []authz.Tenant
		current := map[string]bool{}
		for _, t := range policy.Tenants() {
			current[t.Key] = true
			if checked[t.Key] != t.Digest {
				todo = append(todo, t)
			}
		}
		for key := range found {
			if key != "" && !current[key] {
				delete(found, key) // a tenant the reload removed
				delete(checked, key)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		findings := preflight(rctx, policy, todo, gw)
		cancel()
		if ctx.Err() != nil {
			return
		}
		delete(found, "")
		for _, t := range todo {
			checked[t.Key] = t.Digest
			delete(found, t.Key)
		}
		for _, f := range findings {
			found[f.Tenant] = append(found[f.Tenant], f)
			logger.Warn("preflight: "+f.String(), "policy_version", policy.Version())
		}
		if len(found[""]) > 0 {
			clear(checked) // the sign-in or the tenant setting failed: check everything next time
		}
		total := 0
		for _, fs := range found {
			total += len(fs)
		}
		if total == 0 {
			logger.Info("preflight: every tenant of the policy can be served", "policy_version", policy.Version(), "tenants_checked", len(todo))
		}
		m.preflight(total)
		select {
		case <-ctx.Done():
			return
		case <-reloads:
		}
	}
}
