package powerbi

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// WorkspaceInfo is what Power BI tells the principal about one workspace
// (Groups - Get Groups).
type WorkspaceInfo struct {
	ID   string
	Name string
	// Member is false when the workspace is not among the principal's: it is
	// not a member (or the workspace does not exist).
	Member bool
	// DedicatedCapacity is isOnDedicatedCapacity: without a capacity (A, EM,
	// P or F SKU) only a limited, undisclosed number of trial embed tokens
	// can be minted (Power BI Embedded FAQ).
	DedicatedCapacity bool
}

// Workspace looks a workspace up among those the principal (or profile) has
// a role in: Get Groups with $filter=id eq '...'.
func (cl *Client) Workspace(ctx context.Context, profileID, id string) (WorkspaceInfo, error) {
	var groups struct {
		Value []struct {
			ID                    string `json:"id"`
			Name                  string `json:"name"`
			IsOnDedicatedCapacity bool   `json:"isOnDedicatedCapacity"`
		} `json:"value"`
	}
	u := cl.cfg.apiURL + "/v1.0/myorg/groups?" + url.Values{"$filter": {fmt.Sprintf("id eq '%s'", id)}}.Encode()
	if err := cl.getJSON(ctx, "GetGroups", u, profileID, &groups); err != nil {
		return WorkspaceInfo{}, err
	}
	for _, g := range groups.Value {
		if strings.EqualFold(g.ID, id) {
			return WorkspaceInfo{ID: id, Name: g.Name, Member: true, DedicatedCapacity: g.IsOnDedicatedCapacity}, nil
		}
	}
	return WorkspaceInfo{ID: id}, nil
}

// CheckAccess asks Power BI whether it accepts Embedgate's Entra token at
// all: Get Groups for one workspace, which needs no membership anywhere. A
// token Power BI refuses is renewed and tried once more (as every call
// is); a refusal after that is ErrNotAuthorized, or ErrPrincipalNotAllowed
// when the tenant setting keeps service principals out: no tenant can be
// served. Readiness follows it.
func (cl *Client) CheckAccess(ctx context.Context) error {
	u := cl.cfg.apiURL + "/v1.0/myorg/groups?" + url.Values{"$top": {"1"}}.Encode()
	var groups struct{}
	return cl.getJSON(ctx, "GetGroups", u, "", &groups)
}

// ReportIDs lists the reports of a workspace (Get Reports In Group), for
// checks of a tenant granted "*".
func (cl *Client) ReportIDs(ctx context.Context, profileID, workspaceID string) ([]string, error) {
	var reports struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	u := cl.cfg.apiURL + "/v1.0/myorg/groups/" + url.PathEscape(workspaceID) + "/reports"
	if err := cl.getJSON(ctx, "GetReports", u, profileID, &reports); err != nil {
		return nil, err
	}
	ids := make([]string, len(reports.Value))
	for i, r := range reports.Value {
		ids[i] = r.ID
	}
	return ids, nil
}

// TrialUsage is how much of its embed trial tokens the principal (or
// profile) has used, in percent: availableFeatures(featureName='embedTrial')
// (Move to production). It matters only for workspaces on shared capacity.
func (cl *Client) TrialUsage(ctx context.Context, profileID string) (int, error) {
	var f struct {
		AdditionalInfo struct {
			Usage int `json:"usage"`
		} `json:"additionalInfo"`
	}
	u := cl.cfg.apiURL + "/v1.0/myorg/availableFeatures(featureName='embedTrial')"
	if err := cl.getJSON(ctx, "GetAvailableFeature", u, profileID, &f); err != nil {
		return 0, err
	}
	return f.AdditionalInfo.Usage, nil
}
