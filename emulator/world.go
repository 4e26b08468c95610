package emulator

import (
	"crypto/x509"
	"slices"
	"strings"
)

// world indexes a validated fixture for lookups by id. It is read-only
// after construction, so handlers share it without locks.
type world struct {
	tenants    map[string]*Tenant // by lower-case id and domain
	certs      map[*App][]*x509.Certificate
	federated  map[*App][]federatedKey
	appTenant  map[*App]*Tenant
	profiles   map[string][]*App // lower-case profile id -> the apps that own it
	declared   map[string]bool   // profiles an app declares (the others come from members)
	roles      map[*Workspace]map[string]Role
	workspaces map[string]*Workspace
	ordered    []*Workspace // in fixture order
	reports    map[string]placed[Report]
	datasets   map[string]placed[Dataset]
	dashboards map[string]placed[Dashboard]
	users      map[string]*User // by lower-case UPN and object id
	userTenant map[*User]*Tenant
	personal   map[*Workspace]*User // My workspaces and their owners
	myWS       map[*User]*Workspace
	consent    consents // granted at run time (device code approvals)
}

// placed is an item with the workspace that holds it.
type placed[T any] struct {
	ws   *Workspace
	item *T
}

func newWorld(f *Fixture) *world {
	w := &world{
		tenants:    map[string]*Tenant{},
		certs:      map[*App][]*x509.Certificate{},
		federated:  map[*App][]federatedKey{},
		appTenant:  map[*App]*Tenant{},
		profiles:   map[string][]*App{},
		declared:   map[string]bool{},
		roles:      map[*Workspace]map[string]Role{},
		workspaces: map[string]*Workspace{},
		reports:    map[string]placed[Report]{},
		datasets:   map[string]placed[Dataset]{},
		dashboards: map[string]placed[Dashboard]{},
		users:      map[string]*User{},
		userTenant: map[*User]*Tenant{},
		personal:   map[*Workspace]*User{},
		myWS:       map[*User]*Workspace{},
	}
	for i := range f.Tenants {
		t := &f.Tenants[i]
		w.tenants[strings.ToLower(t.ID)] = t
		for _, d := range t.Domains {
			w.tenants[strings.ToLower(d)] = t
		}
		for j := range t.Users {
			w.addUser(t, &t.Users[j])
		}
		for j := range t.Apps {
			a := &t.Apps[j]
			w.appTenant[a] = t
			for _, c := range a.Certificates {
				if cert, err := parseCertPEM(c); err == nil {
					w.certs[a] = append(w.certs[a], cert)
				}
			}
			for _, fc := range a.FederatedCredentials {
				if key, err := parseKeyPEM(fc.SigningKey); err == nil {
					w.federated[a] = append(w.federated[a], federatedKey{fc, key})
				}
			}
			for _, p := range a.Profiles {
				w.profiles[strings.ToLower(p.ID)] = []*App{a}
				w.declared[strings.ToLower(p.ID)] = true
			}
		}
	}
	for i := range f.Workspaces {
		ws := &f.Workspaces[i]
		w.workspaces[strings.ToLower(ws.ID)] = ws
		w.ordered = append(w.ordered, ws)
		w.roles[ws] = w.accessOf(ws)
		w.addItems(ws)
	}
	for ws := range w.personal {
		w.addItems(ws)
	}
	return w
}

// addItems indexes a workspace's reports, datasets and dashboards.
func (w *world) addItems(ws *Workspace) {
	for j := range ws.Reports {
		w.reports[strings.ToLower(ws.Reports[j].ID)] = placed[Report]{ws, &ws.Reports[j]}
	}
	for j := range ws.Datasets {
		w.datasets[strings.ToLower(ws.Datasets[j].ID)] = placed[Dataset]{ws, &ws.Datasets[j]}
	}
	for j := range ws.Dashboards {
		w.dashboards[strings.ToLower(ws.Dashboards[j].ID)] = placed[Dashboard]{ws, &ws.Dashboards[j]}
	}
}

// accessOf resolves a workspace's access to roles by principal key. The
// format before Access reads: members are Members, unless the workspace
// lists profiles, which are then Members instead, owned by the members
// unless an app declares them.
func (w *world) accessOf(ws *Workspace) map[string]Role {
	roles := map[string]Role{}
	grant := func(key string, r Role) {
		if r.rank() > roles[key].rank() {
			roles[key] = r
		}
	}
	var members []*App
	for _, m := range ws.Members {
		if a := w.appByID(m); a != nil {
			members = append(members, a)
		}
	}
	if len(ws.Profiles) == 0 {
		for _, a := range members {
			grant(appKey(a), RoleMember)
		}
	}
	for _, p := range ws.Profiles {
		id := strings.ToLower(p)
		if !w.declared[id] {
			w.profiles[id] = appendNew(w.profiles[id], members...)
		}
		grant(profileKey(p), RoleMember)
	}
	for _, ac := range ws.Access {
		role, _ := parseRole(string(ac.Role))
		if a := w.appByID(ac.Principal); a != nil {
			grant(appKey(a), role)
		} else if u := w.user(ac.Principal); u != nil {
			grant(userKey(u), role)
		} else {
			grant(profileKey(ac.Principal), role)
		}
	}
	return roles
}

func appendNew(list []*App, add ...*App) []*App {
	for _, a := range add {
		if !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	return list
}

// appByID finds an app by client id or object id, in any tenant.
func (w *world) appByID(id string) *App {
	for a := range w.appTenant {
		if strings.EqualFold(a.ClientID, id) || strings.EqualFold(a.ObjectID, id) {
			return a
		}
	}
	return nil
}

// ownsProfile reports whether profile id belongs to app.
func (w *world) ownsProfile(app *App, id string) bool {
	return slices.Contains(w.profiles[strings.ToLower(id)], app)
}

// tenant finds a tenant by GUID or domain.
func (w *world) tenant(idOrDomain string) *Tenant {
	return w.tenants[strings.ToLower(idOrDomain)]
}

// app finds an app of a tenant by client id.
func (t *Tenant) app(clientID string) *App {
	for i := range t.Apps {
		if strings.EqualFold(t.Apps[i].ClientID, clientID) {
			return &t.Apps[i]
		}
	}
	return nil
}

func (w *world) workspace(id string) *Workspace { return w.workspaces[strings.ToLower(id)] }

// reportIn finds a report inside one workspace.
func (w *world) reportIn(ws *Workspace, id string) *Report {
	p, ok := w.reports[strings.ToLower(id)]
	if !ok || p.ws != ws {
		return nil
	}
	return p.item
}

func (w *world) datasetIn(ws *Workspace, id string) *Dataset {
	p, ok := w.datasets[strings.ToLower(id)]
	if !ok || p.ws != ws {
		return nil
	}
	return p.item
}

func (w *world) dashboardIn(ws *Workspace, id string) *Dashboard {
	p, ok := w.dashboards[strings.ToLower(id)]
	if !ok || p.ws != ws {
		return nil
	}
	return p.item
}

func (d *Dashboard) tile(id string) *Tile {
	for i := range d.Tiles {
		if strings.EqualFold(d.Tiles[i].ID, id) {
			return &d.Tiles[i]
		}
	}
	return nil
}

// tileDatasetID is the dataset a tile reads: its own dataset_id, else the
// dataset of the Power BI report it was pinned from ("" for neither).
func (w *world) tileDatasetID(t *Tile) string {
	if t.DatasetID != "" {
		return t.DatasetID
	}
	if p, ok := w.reports[strings.ToLower(t.ReportID)]; ok {
		return p.item.DatasetID
	}
	return ""
}

// containsFold reports whether list holds s, ignoring case.
func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}
