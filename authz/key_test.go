package authz

import (
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// TestGrantKeyCoversEveryField: every field of a grant, at any depth,
// changes its Key: two grants that differ (two users' identities of one
// dataset, say) never share what is cached under it.
func TestGrantKeyCoversEveryField(t *testing.T) {
	t.Parallel()
	testkit.EachFieldChanges(t, func() Grant {
		return Grant{
			Caller: "spiffe://mesh.example/ns/web/sa/frontend", Tenant: "acme", WorkspaceID: "w1", ProfileID: "p1",
			Items:              []Item{{Kind: KindTile, ID: "t1", WorkspaceID: "w1", Parent: "d1"}},
			TargetWorkspaceIDs: []string{"w1"},
			Identity: &Identity{Username: "alice", CustomData: "acme", Roles: []string{"A"},
				DatasetRoles: map[string][]string{"ds1": {"EU"}}, WithoutRLS: []string{"r2"},
				Datasets: map[string]DatasetIdentity{"ds2": {Username: `CORP\alice`, CustomData: "acme", Roles: []string{"R"}}}},
			Workspaces: []string{"w1"}, SSO: []string{"ds3"}, AllowEdit: true,
			Lifetime: time.Hour, LifetimeClamped: true, Rule: "tenants.acme",
		}
	}, Grant.Key)
}
