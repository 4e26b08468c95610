package authz

import (
	"crypto/sha256"

	"github.com/embedgate/embedgate/internal/keyhash"
)

// Key identifies a request: the sha256 of every field, each written with
// its length. Decide is a pure function of the policy and the request, so
// a cache of what a request leads to under one *Policy (its grant, and the
// decisions on the models that grant opens) may key on it. Two requests
// share a Key only if they are the same request, so no caller or user is
// ever handed another's grant. TestRequestKeyCoversEveryField changes every
// field by reflection and fails on one left out.
func (r Request) Key() [sha256.Size]byte {
	var buf [256]byte // on the stack unless the request is large
	b := keyhash.Str(buf[:0], r.Caller)
	b = keyhash.Str(b, r.Tenant)
	b = keyhash.Str(b, r.User)
	b = keyhash.Int(b, int64(len(r.Items)))
	for _, it := range r.Items {
		b = keyhash.Int(b, int64(it.Kind))
		b = keyhash.Str(b, it.ID)
		b = keyhash.Str(b, it.Parent)
	}
	b = keyhash.Bool(b, r.AllowEdit)
	b = keyhash.Bool(b, r.AllowCreate)
	b = keyhash.Int(b, int64(r.Lifetime))
	return sha256.Sum256(b)
}
