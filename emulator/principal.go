package emulator

import "strings"

// principalName is the name a live connection to Azure Analysis Services
// compares the effective identity with: the service principal's object
// id, or the profile's id when the call acts as a profile.
func (c *caller) principalName() string {
	if c.user != nil {
		return c.user.UPN
	}
	if c.profileID != "" {
		return c.profileID
	}
	return c.objectID
}

// is reports whether id names the principal the call acts as: the
// profile, or else the app by client or object id.
func (c *caller) is(id string) bool {
	if c.user != nil {
		return strings.EqualFold(id, c.user.UPN) || strings.EqualFold(id, c.user.ObjectID)
	}
	if c.profileID != "" {
		return strings.EqualFold(id, c.profileID)
	}
	return strings.EqualFold(id, c.app.ClientID) || strings.EqualFold(id, c.app.ObjectID)
}

// isAny reports whether any entry of list names the caller.
func (c *caller) isAny(list []string) bool {
	for _, id := range list {
		if c.is(id) {
			return true
		}
	}
	return false
}

// mayOmitIdentity reports whether the caller may leave out the identity
// of an RLS dataset. A service principal never may; a master user may for
// cloud RLS, SSO and on-premises Analysis Services (its own identity
// applies), and for Azure Analysis Services without RLS roles ("Generate
// an embed token", the RLS table; "Embed a report with an Azure Analysis
// Services (AAS) database": the username is "Optional if no RLS").
func (c *caller) mayOmitIdentity(d *Dataset) bool {
	if c.user == nil {
		return false
	}
	kind, _ := d.live()
	return kind != liveAAS || len(d.Roles) == 0
}
