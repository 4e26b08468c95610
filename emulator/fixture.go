package emulator

import (
	"bytes"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Fixture is the emulated world: the Entra tenants with their service
// principals, and the Power BI workspaces with their content. See README.md
// for the file format.
type Fixture struct {
	Tenants    []Tenant    `yaml:"tenants" json:"tenants"`
	Workspaces []Workspace `yaml:"workspaces" json:"workspaces"`
}

// Tenant is an Entra ID tenant (directory).
type Tenant struct {
	// ID is the tenant GUID.
	ID string `yaml:"id" json:"id"`
	// Domains are extra names the tenant answers to in Entra URLs, such as
	// contoso.onmicrosoft.com.
	Domains []string `yaml:"domains" json:"domains"`
	// Apps are the service principals registered in the tenant.
	Apps []App `yaml:"apps" json:"apps"`
}

// App is an app registration with its service principal.
type App struct {
	// ClientID is the application (client) id.
	ClientID string `yaml:"client_id" json:"client_id"`
	// ObjectID is the service principal's object id (the oid claim).
	ObjectID string `yaml:"object_id" json:"object_id"`
	// Name is a display name, for humans.
	Name string `yaml:"name" json:"name"`
	// Secrets are the accepted client secrets.
	Secrets []string `yaml:"secrets" json:"secrets"`
	// Certificates are PEM certificates (inline PEM text) whose keys may
	// sign a client_assertion.
	Certificates []string `yaml:"certificates" json:"certificates"`
}

// Workspace is a Power BI workspace (group).
type Workspace struct {
	// ID is the workspace (group) id.
	ID string `yaml:"id" json:"id"`
	// Name is the workspace name.
	Name string `yaml:"name" json:"name"`
	// Members are the client ids of apps that are member or admin.
	Members []string `yaml:"members" json:"members"`
	// Profiles, if not empty, restricts the workspace to calls carrying one
	// of these X-PowerBI-Profile-Id values.
	Profiles []string `yaml:"profiles" json:"profiles"`
	// Reports are the workspace's reports.
	Reports []Report `yaml:"reports" json:"reports"`
	// Datasets are the workspace's datasets (semantic models).
	Datasets []Dataset `yaml:"datasets" json:"datasets"`
	// Dashboards are the workspace's dashboards.
	Dashboards []Dashboard `yaml:"dashboards" json:"dashboards"`
}

// Report is a Power BI report or, with Paginated, a paginated (RDL) report.
type Report struct {
	// ID is the report id.
	ID string `yaml:"id" json:"id"`
	// Name is the report name.
	Name string `yaml:"name" json:"name"`
	// DatasetID is the dataset the report reads; empty for paginated
	// reports. The dataset may live in another workspace.
	DatasetID string `yaml:"dataset_id" json:"dataset_id"`
	// Paginated marks an RDL report.
	Paginated bool `yaml:"paginated" json:"paginated"`
}

// Dataset is a Power BI dataset (semantic model) with its RLS settings.
type Dataset struct {
	// ID is the dataset id.
	ID string `yaml:"id" json:"id"`
	// Name is the dataset name.
	Name string `yaml:"name" json:"name"`
	// IdentityRequired is isEffectiveIdentityRequired: the model has RLS
	// and a service principal must send an effective identity for it.
	IdentityRequired bool `yaml:"identity_required" json:"identity_required"`
	// RolesRequired is isEffectiveIdentityRolesRequired: the identity must
	// name at least one role.
	RolesRequired bool `yaml:"roles_required" json:"roles_required"`
	// Roles are the RLS roles defined on the model.
	Roles []string `yaml:"roles" json:"roles"`
}

// Dashboard is a Power BI dashboard.
type Dashboard struct {
	// ID is the dashboard id.
	ID string `yaml:"id" json:"id"`
	// Name is the dashboard's display name.
	Name string `yaml:"name" json:"name"`
	// Tiles are the dashboard's tiles.
	Tiles []Tile `yaml:"tiles" json:"tiles"`
}

// Tile is a dashboard tile.
type Tile struct {
	// ID is the tile id.
	ID string `yaml:"id" json:"id"`
	// Title is the tile title.
	Title string `yaml:"title" json:"title"`
	// ReportID is the report the tile was pinned from (optional).
	ReportID string `yaml:"report_id" json:"report_id"`
	// DatasetID is the dataset the tile reads (optional).
	DatasetID string `yaml:"dataset_id" json:"dataset_id"`
}

//go:embed demo.yaml
var demoYAML []byte

// DemoFixture returns a fresh copy of the built-in demo fixture
// (emulator/demo.yaml), the world dev mode runs against.
func DemoFixture() *Fixture {
	f, err := ParseFixture(demoYAML)
	if err != nil {
		panic("emulator: demo.yaml is invalid: " + err.Error())
	}
	return f
}

// LoadFixture reads and validates a fixture file (YAML or JSON).
func LoadFixture(path string) (*Fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("emulator: read fixture: %w", err)
	}
	f, err := ParseFixture(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseFixture decodes a fixture strictly (unknown keys are errors) and
// validates it. A validation failure is a *FixtureError listing every
// problem.
func ParseFixture(data []byte) (*Fixture, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f Fixture
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FixtureError{Problems: []string{"fixture is empty"}}
		}
		return nil, fmt.Errorf("emulator: decode fixture: %w", err)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// FixtureError lists every problem found in a fixture, each prefixed with
// the key it concerns (for example "workspaces[1].reports[0].dataset_id").
type FixtureError struct {
	Problems []string
}

// Error implements error.
func (e *FixtureError) Error() string {
	return "emulator: invalid fixture:\n  " + strings.Join(e.Problems, "\n  ")
}

// Validate checks references, uniqueness and the RLS settings, and returns
// a *FixtureError with every problem, or nil.
func (f *Fixture) Validate() error {
	var v validator
	tenantIDs := map[string]bool{}
	appIDs := map[string]bool{}
	for i, t := range f.Tenants {
		key := fmt.Sprintf("tenants[%d]", i)
		v.id(key+".id", t.ID)
		v.unique(tenantIDs, key+".id", t.ID)
		for j, d := range t.Domains {
			if strings.TrimSpace(d) == "" || strings.ContainsAny(d, "/ ") {
				v.addf("%s.domains[%d]: %q is not a domain name", key, j, d)
			}
		}
		inTenant := map[string]bool{}
		for j, a := range t.Apps {
			akey := fmt.Sprintf("%s.apps[%d]", key, j)
			v.id(akey+".client_id", a.ClientID)
			v.unique(inTenant, akey+".client_id", a.ClientID)
			appIDs[strings.ToLower(a.ClientID)] = true
			v.id(akey+".object_id", a.ObjectID)
			if len(a.Secrets) == 0 && len(a.Certificates) == 0 {
				v.addf("%s: needs at least one of secrets, certificates", akey)
			}
			for k, s := range a.Secrets {
				if s == "" {
					v.addf("%s.secrets[%d]: empty secret", akey, k)
				}
			}
			for k, c := range a.Certificates {
				if _, err := parseCertPEM(c); err != nil {
					v.addf("%s.certificates[%d]: %v", akey, k, err)
				}
			}
		}
	}

	wsIDs := map[string]bool{}
	itemIDs := map[string]bool{}
	datasets := map[string]bool{}
	reports := map[string]Report{}
	for _, w := range f.Workspaces {
		for _, d := range w.Datasets {
			datasets[strings.ToLower(d.ID)] = true
		}
		for _, r := range w.Reports {
			reports[strings.ToLower(r.ID)] = r
		}
	}
	for i, w := range f.Workspaces {
		key := fmt.Sprintf("workspaces[%d]", i)
		v.id(key+".id", w.ID)
		v.unique(wsIDs, key+".id", w.ID)
		for j, m := range w.Members {
			if !appIDs[strings.ToLower(m)] {
				v.addf("%s.members[%d]: no app with client_id %q in any tenant", key, j, m)
			}
		}
		for j, p := range w.Profiles {
			v.id(fmt.Sprintf("%s.profiles[%d]", key, j), p)
		}
		for j, r := range w.Reports {
			rkey := fmt.Sprintf("%s.reports[%d]", key, j)
			v.id(rkey+".id", r.ID)
			v.unique(itemIDs, rkey+".id", r.ID)
			switch {
			case r.Paginated && r.DatasetID != "":
				v.addf("%s.dataset_id: a paginated report has no dataset", rkey)
			case !r.Paginated && r.DatasetID == "":
				v.addf("%s.dataset_id: required for a Power BI report (set paginated: true for RDL)", rkey)
			case r.DatasetID != "" && !datasets[strings.ToLower(r.DatasetID)]:
				v.addf("%s.dataset_id: unknown dataset %q", rkey, r.DatasetID)
			}
		}
		for j, d := range w.Datasets {
			dkey := fmt.Sprintf("%s.datasets[%d]", key, j)
			if d.ID == "" {
				v.addf("%s.id: required", dkey)
			}
			v.unique(itemIDs, dkey+".id", d.ID)
			if d.RolesRequired && !d.IdentityRequired {
				v.addf("%s.roles_required: needs identity_required", dkey)
			}
			if d.RolesRequired && len(d.Roles) == 0 {
				v.addf("%s.roles: roles_required needs at least one role", dkey)
			}
			if len(d.Roles) > 0 && !d.IdentityRequired {
				v.addf("%s.roles: a dataset with RLS roles needs identity_required", dkey)
			}
			for k, role := range d.Roles {
				if role == "" || len(role) > maxRoleLen || strings.Contains(role, ",") {
					v.addf("%s.roles[%d]: %q must be 1..%d characters without ','", dkey, k, role, maxRoleLen)
				}
			}
		}
		for j, d := range w.Dashboards {
			dkey := fmt.Sprintf("%s.dashboards[%d]", key, j)
			v.id(dkey+".id", d.ID)
			v.unique(itemIDs, dkey+".id", d.ID)
			for k, t := range d.Tiles {
				tkey := fmt.Sprintf("%s.tiles[%d]", dkey, k)
				v.id(tkey+".id", t.ID)
				v.unique(itemIDs, tkey+".id", t.ID)
				rep, known := reports[strings.ToLower(t.ReportID)]
				switch {
				case t.ReportID != "" && !known:
					v.addf("%s.report_id: unknown report %q", tkey, t.ReportID)
				case t.DatasetID != "" && !datasets[strings.ToLower(t.DatasetID)]:
					v.addf("%s.dataset_id: unknown dataset %q", tkey, t.DatasetID)
				case known && t.DatasetID != "" && !strings.EqualFold(t.DatasetID, rep.DatasetID):
					// The dashboard's RLS rules apply to its tiles'
					// datasets: a tile reads the dataset of its report.
					v.addf("%s.dataset_id: %q is not the dataset of report %q (%q)", tkey, t.DatasetID, rep.ID, rep.DatasetID)
				}
			}
		}
	}
	if len(v.problems) > 0 {
		return &FixtureError{Problems: v.problems}
	}
	return nil
}

type validator struct{ problems []string }

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) id(key, id string) {
	if id == "" {
		v.addf("%s: required", key)
		return
	}
	if !isUUID(id) {
		v.addf("%s: %q is not a uuid", key, id)
	}
}

func (v *validator) unique(seen map[string]bool, key, id string) {
	if id == "" {
		return
	}
	k := strings.ToLower(id)
	if seen[k] {
		v.addf("%s: duplicate id %q", key, id)
	}
	seen[k] = true
}

// parseCertPEM returns the first certificate of a PEM text.
func parseCertPEM(text string) (*x509.Certificate, error) {
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}
