package authz

import (
	"fmt"
	"slices"
	"strings"
)

// A token opens datasets of several kinds of model, and who the user is depends
// on the kind (Microsoft documents each with a service principal, under "Power BI
// embedded analytics"). The gateway learns the kinds from Power BI; Grant.Models
// decides, from the policy alone, what each dataset gets:
//
//   - a cloud model (imported or DirectQuery): the rls block's identity, or its
//     rls.datasets entry;
//   - a live connection to Azure Analysis Services: the username must be the
//     service principal's object id (username: service_principal); the end user
//     travels in custom_data;
//   - a live connection to SQL Server Analysis Services: the username must be a
//     user the server knows (a fixed account, or a template of the end user) with
//     only letters, digits and . - _ ! # ^ ~ \ @; no custom_data;
//   - a single sign-on data source (DirectQuery to Azure SQL Database or Azure
//     Databricks): an identity blob if the tenant's sso list names the dataset (or
//     is "*"); naming a dataset without one is a mistake, refused;
//   - a dataset read by a composite model or a paginated report: only from one of
//     the tenant's workspaces, since the token grants it xmlaPermissions ReadOnly.

// ModelKind is the kind of model a dataset is, as far as its effective identity
// goes.
type ModelKind int

// The model kinds.
const (
	// ModelCloud is a model hosted by Power BI (imported or DirectQuery).
	ModelCloud ModelKind = iota + 1
	// ModelAAS is a live connection to Azure Analysis Services.
	ModelAAS
	// ModelSSAS is a live connection to SQL Server Analysis Services through an
	// on-premises data gateway.
	ModelSSAS
)

// Model is one dataset a token opens, or a paginated report's own data sources,
// as Power BI describes it.
type Model struct {
	// ID is the dataset's id, or the paginated report's.
	ID string
	// WorkspaceID is where it lives; "" when it was found in none of the tenant's
	// workspaces.
	WorkspaceID string
	// Paginated marks a paginated report.
	Paginated bool
	// Kind is a dataset's kind; 0 for a paginated report.
	Kind ModelKind
	// IdentityRequired is isEffectiveIdentityRequired.
	IdentityRequired bool
	// SSO: it has a data source that can take an identity blob.
	SSO bool
	// ReadBy is the composite model or paginated report whose reading makes the
	// token open this dataset; "" for a requested report's (or tile's) own dataset.
	ReadBy string
	// Reports are the requested reports on it, directly or through ReadBy.
	Reports []string
}

// ModelGrant is the policy's decision for one Model.
type ModelGrant struct {
	// ID is the Model's id.
	ID string
	// Identity is its effective identity where it differs from Grant.Identity's
	// for its datasets (its kind, or rls.datasets, decides it); nil: the rls
	// block's identity rules apply (for a cloud model, Grant.Identity, with its
	// dataset_roles and without_rls).
	Identity *DatasetIdentity
	// SSO: send an identity blob for each of its single sign-on data sources.
	SSO bool
}

// Models decides, for the models a grant's token opens, what each gets, or
// refuses the token with a *Denial: ErrDatasetNotAllowed, ErrIdentityKind,
// ErrSSONotApplicable, or ErrInvalidRequest (a user an on-premises model cannot
// take). It is pure: the same grant and models always decide alike.
func (g *Grant) Models(models []Model) ([]ModelGrant, error) {
	out := make([]ModelGrant, 0, len(models))
	for _, m := range models {
		mg, d := g.model(m)
		if d != nil {
			d.Dataset = m.ID
			return nil, d
		}
		out = append(out, mg)
	}
	return out, nil
}

func (g *Grant) model(m Model) (ModelGrant, *Denial) {
	id := strings.ToLower(m.ID)
	mg := ModelGrant{ID: m.ID}
	on := "dataset " + m.ID
	if m.Paginated {
		on = "paginated report " + m.ID
	}
	if len(m.Reports) > 0 && !m.Paginated {
		on += " of report " + m.Reports[0]
	}
	if m.ReadBy != "" && !slices.Contains(g.Workspaces, strings.ToLower(m.WorkspaceID)) {
		return mg, &Denial{Reason: ErrDatasetNotAllowed, Rule: g.Rule + ".workspaces",
			Message: fmt.Sprintf("report %s reads a dataset (with DirectQuery, or as a paginated report's source) that is in none of the tenant's workspaces: nothing was minted", first(m.Reports))}
	}
	switch listed := slices.Contains(g.SSO, id); {
	case listed && !m.SSO:
		return mg, &Denial{Reason: ErrSSONotApplicable, Rule: g.Rule + ".sso",
			Message: on + " has no single sign-on data source (Azure SQL Database, Azure Databricks): the tenant's sso list must not name it"}
	case m.SSO && (listed || slices.Contains(g.SSO, Wildcard)):
		mg.SSO = true
	}
	if m.Paginated || !m.IdentityRequired || g.Identity == nil {
		return mg, nil
	}
	di, own := g.Identity.datasetIdentity(id)
	rule := g.Rule + ".rls"
	if own {
		rule += ".datasets." + id
	}
	switch m.Kind {
	case ModelAAS:
		if !di.ServicePrincipal {
			return mg, &Denial{Reason: ErrIdentityKind, Rule: rule + ".username",
				Message: on + " is a live connection to Azure Analysis Services: Power BI requires the service principal's object id as the username, and the tenant's policy sends another; set its username to " + ServicePrincipal + " (the end user goes in custom_data)"}
		}
	case ModelSSAS:
		switch {
		case di.ServicePrincipal:
			return mg, &Denial{Reason: ErrIdentityKind, Rule: rule + ".username",
				Message: on + " is a live connection to SQL Server Analysis Services: the username must be a user the server knows, not the service principal; set its username to an account or to a template of the end user"}
		case di.CustomData != "":
			return mg, &Denial{Reason: ErrIdentityKind, Rule: rule + ".custom_data",
				Message: on + ` is a live connection to SQL Server Analysis Services, which takes no customData: set its custom_data to ""`}
		case !onPremUsername(di.Username):
			return mg, invalid(rule+".username", "user",
				on+` is on premises: its username may hold only letters, digits and . - _ ! # ^ ~ \ @`)
		}
	}
	if own || m.Kind != ModelCloud {
		mg.Identity = &di
	}
	return mg, nil
}

// onPremUsername applies the EffectiveIdentity schema's rule for on-premises
// models: letters, digits and . - _ ! # ^ ~ \ @ only.
func onPremUsername(name string) bool {
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(`.-_!#^~\@`, r):
		default:
			return false
		}
	}
	return true
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
