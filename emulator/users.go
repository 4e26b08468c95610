package emulator

import (
	"slices"
	"strings"
	"sync"
)

// myWorkspaceID is the group id of My workspace in web URLs
// (app.powerbi.com/groups/me/...); the REST API reaches it without a
// group.
const myWorkspaceID = "me"

// addUser indexes a user and builds their My workspace: on shared
// capacity, the user its only member (Admin).
func (w *world) addUser(t *Tenant, u *User) {
	w.users[strings.ToLower(u.UPN)] = u
	w.users[strings.ToLower(u.ObjectID)] = u
	w.userTenant[u] = t
	if u.MyWorkspace == nil {
		return
	}
	ws := &Workspace{ID: myWorkspaceID, Name: "My workspace", Capacity: CapacityShared,
		Reports: u.MyWorkspace.Reports, Datasets: u.MyWorkspace.Datasets}
	w.personal[ws] = u
	w.myWS[u] = ws
	w.roles[ws] = map[string]Role{userKey(u): RoleAdmin}
}

// user finds a user by UPN or object id, in any tenant.
func (w *world) user(id string) *User { return w.users[strings.ToLower(id)] }

func userKey(u *User) string { return "user:" + strings.ToLower(u.ObjectID) }

// licensed reports whether the user holds Power BI Pro or Premium Per
// User.
func (u *User) licensed() bool {
	l := strings.ToLower(u.License)
	return l == LicensePro || l == LicensePPU
}

// consents records consent given at run time: a user approving a device
// code consents to the client app.
type consents struct {
	mu    sync.Mutex
	given map[*App][]*User
}

func (c *consents) add(app *App, u *User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.given == nil {
		c.given = map[*App][]*User{}
	}
	if !slices.Contains(c.given[app], u) {
		c.given[app] = append(c.given[app], u)
	}
}

func (c *consents) has(app *App, u *User) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.given[app], u)
}

// consented reports whether the user (or an administrator, for every
// user) consented to the app.
func (w *world) consented(app *App, u *User) bool {
	if app.AdminConsent || w.consent.has(app, u) {
		return true
	}
	return containsFold(app.ConsentedUsers, u.UPN) || containsFold(app.ConsentedUsers, u.ObjectID)
}
