package powerbi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxItems is Power BI's cap on reports, datasets and target workspaces per V2
// token.
const maxItems = 50

// minting is a planned GenerateToken call and what to forget if Power BI
// rejects it.
type minting struct {
	plan   *Plan  // what Plan returns: identity blobs redacted
	body   []byte // the body as sent
	op     string
	forget func()
}

// newMinting marshals body (as sent) and redacted (for the Plan) for a POST to
// u.
func newMinting(op, u, profile string, body, redacted any, o *opened, planned []PlannedModel) *minting {
	b, _ := json.Marshal(body) // cannot fail: the bodies hold strings, ints and bools only
	rb, _ := json.Marshal(redacted)
	return &minting{op: op, forget: o.forget, body: b,
		plan: &Plan{Method: http.MethodPost, URL: u, ProfileID: profile, Body: rb, Items: o.items, Datasets: planned}}
}

// plan builds the one GenerateToken call for r, by the kind of its items:
// reports go on the V2 route together (a lone paginated report that reads no
// Power BI dataset on its V1 route, as the official samples do); a dashboard
// or a tile on its own V1 route. Metadata comes from cache or the Get calls;
// RLS preconditions are checked before anything is minted.
func (cl *Client) plan(ctx context.Context, r TokenRequest) (*minting, error) {
	if err := checkRequest(r); err != nil {
		return nil, err
	}
	o, err := cl.open(ctx, r)
	if err != nil {
		return nil, err
	}
	ip := cl.newIdentityPlan(ctx, r)
	switch {
	case o.v1 != "":
		return cl.planItem(r, o, ip)
	case o.reports == 1 && len(o.paginated) > 0 && len(o.models) == 1 && !ip.sendsBlobs(o.models[0]):
		return cl.planPaginated(r, o, ip)
	default:
		return cl.planReports(r, o, ip)
	}
}

// checkRequest refuses what the server never sends; it guards the package's
// own invariants (one kind, counts, ids).
func checkRequest(r TokenRequest) error {
	switch {
	case len(r.Items) == 0:
		return invalidRequest("no items")
	case len(r.TargetWorkspaceIDs) > maxItems:
		return &LimitError{What: "target workspaces", Count: len(r.TargetWorkspaceIDs)}
	case r.Lifetime < 0:
		return invalidRequest("negative lifetime %s", r.Lifetime)
	case slices.Contains(r.TargetWorkspaceIDs, ""):
		return invalidRequest("empty target workspace id")
	}
	kind := r.Items[0].Kind
	switch kind {
	case KindReport:
		if len(r.Items) > maxItems {
			return &LimitError{What: "reports", Count: len(r.Items)}
		}
	case KindDashboard, KindTile:
		switch {
		case len(r.Items) > 1:
			return invalidRequest("a %s is embedded alone", kind)
		case r.AllowEdit || r.TargetWorkspaceIDs != nil:
			return invalidRequest("a %s is embedded for viewing only", kind)
		case kind == KindTile && r.Items[0].DashboardID == "":
			return invalidRequest("tile %s without its dashboard", r.Items[0].ID)
		}
	default:
		return invalidRequest("unknown item kind %v", kind)
	}
	for _, it := range r.Items {
		switch {
		case it.Kind != kind:
			return invalidRequest("items of kinds %v and %v in one token", kind, it.Kind)
		case it.ID == "":
			return invalidRequest("empty %s id", it.Kind)
		case it.WorkspaceID == "":
			return invalidRequest("no workspace id for %s %s", it.Kind, it.ID)
		}
	}
	return nil
}

// planReports plans one V2 POST for every report, whatever their
// workspaces: each Power BI report's dataset, each paginated report's
// datasets and each composite model's upstream datasets (the last two with
// xmlaPermissions ReadOnly), at most maxItems datasets; a paginated report is
// never editable.
func (cl *Client) planReports(r TokenRequest, o *opened, ip *identityPlan) (*minting, error) {
	body := &generateTokenRequestV2{Datasets: []datasetRef{}, LifetimeInMinutes: lifetimeMinutes(r.Lifetime)}
	paginated := map[string]bool{}
	for _, i := range o.paginated {
		paginated[strings.ToLower(o.items[i].ID)] = true
	}
	for _, id := range distinctFold(itemIDs(r.Items)) {
		body.Reports = append(body.Reports, reportRef{ID: id, AllowEdit: r.AllowEdit && !paginated[strings.ToLower(id)]})
	}
	for _, m := range o.models {
		if m.Paginated {
			continue
		}
		ref := datasetRef{ID: m.ID}
		if m.XMLA {
			ref.XmlaPermissions = xmlaReadOnly
		}
		body.Datasets = append(body.Datasets, ref)
	}
	if len(body.Datasets) > maxItems {
		return nil, &LimitError{What: "datasets", Count: len(body.Datasets)}
	}
	if err := ip.build(o.models, true); err != nil {
		return nil, err
	}
	body.Identities, body.DatasourceIdentities = ip.identities, ip.sources
	if r.TargetWorkspaceIDs != nil {
		body.TargetWorkspaces = []workspaceRef{}
		for _, id := range distinctFold(r.TargetWorkspaceIDs) {
			body.TargetWorkspaces = append(body.TargetWorkspaces, workspaceRef{ID: id})
		}
	}
	redacted := *body
	redacted.Identities, redacted.DatasourceIdentities = ip.redacted()
	return newMinting("GenerateToken", cl.cfg.apiURL+"/v1.0/myorg/GenerateToken", r.ProfileID, body, &redacted, o, ip.planned), nil
}

// planPaginated plans the V1 report route the official samples use for a
// lone paginated report that reads no Power BI dataset.
func (cl *Client) planPaginated(r TokenRequest, o *opened, ip *identityPlan) (*minting, error) {
	if err := ip.build(o.models, false); err != nil {
		return nil, err
	}
	it := o.items[0]
	body := generateTokenRequestV1{AccessLevel: accessView, LifetimeInMinutes: lifetimeMinutes(r.Lifetime), Identities: ip.identities}
	return newMinting("GenerateReportToken", cl.groupURL(it.WorkspaceID, "reports", it.ID, "GenerateToken"), r.ProfileID, body, body, o, ip.planned), nil
}

// planItem plans the V1 route of a dashboard or a tile. Power BI allows a
// dashboard token one identity per role set, and refuses more than one
// identity on the other V1 routes.
func (cl *Client) planItem(r TokenRequest, o *opened, ip *identityPlan) (*minting, error) {
	if err := ip.build(o.models, false); err != nil {
		return nil, err
	}
	it := o.items[0]
	if it.Kind == KindTile && len(ip.identities) > 1 {
		return nil, &UnsupportedError{ReportID: it.ReportID, Reason: "tile " + it.ID + " needs identities with different role sets (DatasetRoles), and a tile token carries at most one"}
	}
	body := generateTokenRequestV1{AccessLevel: accessView, LifetimeInMinutes: lifetimeMinutes(r.Lifetime), Identities: ip.identities}
	redacted := body
	redacted.Identities, _ = ip.redacted()
	return newMinting(o.op, o.v1, r.ProfileID, body, redacted, o, ip.planned), nil
}

// lifetimeMinutes is lifetimeInMinutes for d: whole minutes, at least 1; 0
// (not sent) for no lifetime.
func lifetimeMinutes(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return max(1, int(d/time.Minute))
}

// distinctFold returns ids without case-insensitive repeats, in order.
func distinctFold(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if k := strings.ToLower(id); !seen[k] {
			seen[k] = true
			out = append(out, id)
		}
	}
	return out
}
