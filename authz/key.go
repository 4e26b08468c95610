package authz

import (
	"crypto/sha256"

	"github.com/embedgate/embedgate/internal/keyhash"
)

// Key identifies a grant: the sha256 of every field, each written with its
// length. Two grants share a Key only if they are the same grant, so a
// cache of what a grant leads to (the decisions on its models, for one) may
// key on it; with the policy's version, since the same grant under another
// policy may decide its models otherwise. TestGrantKeyCoversEveryField
// changes every field by reflection and fails on one left out.
func (g Grant) Key() [sha256.Size]byte {
	var buf [512]byte  // on the stack unless the grant is large
	var keys [8]string // the same, for a map's keys
	b := keyhash.Str(buf[:0], g.Caller)
	b = keyhash.Str(b, g.Tenant)
	b = keyhash.Str(b, g.WorkspaceID)
	b = keyhash.Str(b, g.ProfileID)
	b = keyhash.Int(b, int64(len(g.Items)))
	for _, it := range g.Items {
		b = keyhash.Int(b, int64(it.Kind))
		b = keyhash.Str(b, it.ID)
		b = keyhash.Str(b, it.WorkspaceID)
		b = keyhash.Str(b, it.Parent)
	}
	b = keyhash.Strs(b, g.TargetWorkspaceIDs)
	b = keyhash.Bool(b, g.Identity != nil)
	if id := g.Identity; id != nil {
		b = keyhash.Str(b, id.Username)
		b = keyhash.Bool(b, id.ServicePrincipal)
		b = keyhash.Str(b, id.CustomData)
		b = keyhash.Strs(b, id.Roles)
		b = keyhash.Bool(b, id.DatasetRoles != nil)
		b = keyhash.Int(b, int64(len(id.DatasetRoles)))
		for _, ds := range keyhash.SortedKeys(keys[:0], id.DatasetRoles) {
			b = keyhash.Str(b, ds)
			b = keyhash.Strs(b, id.DatasetRoles[ds])
		}
		b = keyhash.Strs(b, id.WithoutRLS)
		b = keyhash.Bool(b, id.Datasets != nil)
		b = keyhash.Int(b, int64(len(id.Datasets)))
		for _, ds := range keyhash.SortedKeys(keys[:0], id.Datasets) {
			d := id.Datasets[ds]
			b = keyhash.Str(b, ds)
			b = keyhash.Bool(b, d.ServicePrincipal)
			b = keyhash.Str(b, d.Username)
			b = keyhash.Str(b, d.CustomData)
			b = keyhash.Strs(b, d.Roles)
		}
	}
	b = keyhash.Strs(b, g.Workspaces)
	b = keyhash.Strs(b, g.SSO)
	b = keyhash.Bool(b, g.AllowEdit)
	b = keyhash.Int(b, int64(g.Lifetime))
	b = keyhash.Bool(b, g.LifetimeClamped)
	b = keyhash.Str(b, g.Rule)
	return sha256.Sum256(b)
}
