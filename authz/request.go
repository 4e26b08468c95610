package authz

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Kind is the kind of Power BI item a token embeds. A new kind is a new value here, its
// request field in fieldOf, its policy list in tenant.listed, and a case in the
// gateway's planning.
type Kind int

// The item kinds.
const (
	// KindReport is a Power BI report or a paginated report; a token embeds 1..50.
	KindReport Kind = iota + 1
	// KindDashboard is a dashboard, embedded alone.
	KindDashboard
	// KindTile is one tile of a dashboard (ItemRef.Parent), embedded alone.
	KindTile
)

// String names the kind as logs and errors say it.
func (k Kind) String() string {
	switch k {
	case KindReport:
		return "report"
	case KindDashboard:
		return "dashboard"
	case KindTile:
		return "tile"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// fieldOf names the request field of the i-th item of kind k, for BadRequest field
// violations; they are the API's field names.
func fieldOf(k Kind, i int) string {
	switch k {
	case KindReport:
		return "report_ids[" + strconv.Itoa(i) + "]"
	case KindDashboard:
		return "dashboard_id"
	case KindTile:
		return "tile_id"
	}
	return "items"
}

// ItemRef names one requested item: its kind and uuid (any case), and for a tile the
// dashboard it is on.
type ItemRef struct {
	Kind Kind
	ID   string
	// Parent is a tile's dashboard; "" for other kinds.
	Parent string
}

// Request is what a caller asks for, as the server authenticated and parsed it.
type Request struct {
	// Caller is the authenticated SPIFFE ID (the client certificate's URI SAN).
	Caller string
	// Tenant is the tenant key the caller acts for.
	Tenant string
	// User is the end user; the source of the RLS username, and recorded for audit.
	User string
	// Items are the items to embed: 1..MaxReportIDs reports, or one dashboard, or one
	// tile.
	Items []ItemRef
	// AllowEdit asks for an edit token (reports only).
	AllowEdit bool
	// AllowCreate asks for a token that may create and save-as reports (reports only).
	AllowCreate bool
	// Lifetime is the requested token lifetime; 0 = the tenant's default.
	Lifetime time.Duration
}

// Reports returns the report refs of ids, in order: the items of a report request.
func Reports(ids ...string) []ItemRef {
	refs := make([]ItemRef, len(ids))
	for i, id := range ids {
		refs[i] = ItemRef{Kind: KindReport, ID: id}
	}
	return refs
}

// checkRequest reports what is malformed in the request itself, independent of the
// tenant's entry. These are the domain's invariants; the API's protovalidate rules say
// the same (a test compares the two), so a request that reached Decide through the
// server fails here only if the rules drifted.
func checkRequest(r Request) *Denial {
	switch {
	case r.User == "":
		return invalid("request", "user", "user is required")
	case !utf8.ValidString(r.User):
		return invalid("request", "user", "user must be valid UTF-8")
	case utf8.RuneCountInString(r.User) > MaxUsernameLength:
		return invalid("request", "user", fmt.Sprintf("user must be at most %d characters", MaxUsernameLength))
	case !validUser(r.User):
		return invalid("request", "user", "user must not contain whitespace, separators, control or invisible formatting characters")
	case len(r.Items) == 0:
		return invalid("request", "report_ids", "at least one report id, or a dashboard_id, is required")
	case r.Lifetime < 0:
		return invalid("request", "lifetime", "lifetime must not be negative")
	case r.Lifetime > 0 && r.Lifetime < MinLifetime:
		return invalid("request", "lifetime", fmt.Sprintf("lifetime must be at least %v", MinLifetime))
	}
	kind := r.Items[0].Kind
	for _, it := range r.Items[1:] {
		if it.Kind != kind {
			return invalid("request", fieldOf(it.Kind, 0), fmt.Sprintf("a token embeds reports, or one dashboard, or one tile: %ss and %ss cannot be mixed", kind, it.Kind))
		}
	}
	switch kind {
	case KindReport:
		if len(r.Items) > MaxReportIDs {
			return invalid("request", "report_ids", fmt.Sprintf("at most %d report ids are allowed", MaxReportIDs))
		}
	case KindDashboard, KindTile:
		switch {
		case len(r.Items) > 1:
			return invalid("request", fieldOf(kind, 0), fmt.Sprintf("a %s is embedded alone: one per token", kind))
		case r.AllowEdit:
			return invalid("request", "allow_edit", "edit tokens are for reports only, not dashboards or tiles")
		case r.AllowCreate:
			return invalid("request", "allow_create", "create tokens are for reports only, not dashboards or tiles")
		}
	default:
		return invalid("request", "items", fmt.Sprintf("unknown item kind %v", kind))
	}
	seen := make(map[string]int, len(r.Items))
	for i, it := range r.Items {
		if it.Kind == KindTile {
			if it.Parent == "" {
				return invalid("request", "tile_id", "tile_id needs the dashboard_id of its dashboard")
			}
			if !isUUID(it.Parent) {
				return invalid("request", "dashboard_id", fmt.Sprintf("dashboard id %q is not a uuid", it.Parent))
			}
		}
		if !isUUID(it.ID) {
			return invalid("request", fieldOf(it.Kind, i), fmt.Sprintf("%s id %q is not a uuid", it.Kind, it.ID))
		}
		lower := strings.ToLower(it.ID)
		if j, dup := seen[lower]; dup {
			return invalid("request", fieldOf(it.Kind, i), fmt.Sprintf("%s id %s is repeated (%s)", it.Kind, lower, fieldOf(it.Kind, j)))
		}
		seen[lower] = i
	}
	return nil
}

// invalid builds an ErrInvalidRequest denial.
func invalid(rule, field, msg string) *Denial {
	return &Denial{Reason: ErrInvalidRequest, Rule: rule, Field: field, Message: msg}
}

// validUser is UserPattern.MatchString for valid UTF-8, without a regular
// expression on every request (TestValidUserIsUserPattern holds the two
// equal over every rune).
func validUser(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < utf8.RuneSelf {
			if r <= ' ' || r == 0x7f { // space, and the C0 controls and DEL
				return false
			}
			continue
		}
		if unicode.In(r, unicode.Z, unicode.C) {
			return false
		}
	}
	return true
}
