// Package pbiurl reads the ids of a Power BI item out of the address a
// browser shows for it, so that a developer can paste the URL of the
// report in front of them instead of looking up a workspace id and a
// report id. It knows the addresses of the Power BI service in each
// Microsoft cloud and the path shapes the service uses for reports,
// paginated reports and dashboards, in a workspace or in My workspace, and
// the embed URLs (reportEmbed, rdlEmbed, dashboardEmbed) its "Embed" menu
// hands out. It makes no network call.
package pbiurl

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Kind is the kind of item a URL names.
type Kind int

// The kinds of item.
const (
	// Report is a Power BI report (…/reports/<id>).
	Report Kind = iota + 1
	// PaginatedReport is a paginated (RDL) report (…/rdlreports/<id>).
	PaginatedReport
	// Dashboard is a dashboard (…/dashboards/<id>).
	Dashboard
)

// String names the kind as the messages say it.
func (k Kind) String() string {
	switch k {
	case Report:
		return "report"
	case PaginatedReport:
		return "paginated report"
	case Dashboard:
		return "dashboard"
	}
	return "item"
}

// Item is what a URL names.
type Item struct {
	Kind Kind
	// ID is the item's id, lower case.
	ID string
	// WorkspaceID is the workspace's id, lower case; "" for My workspace
	// (groups/me), which has no id in the REST API.
	WorkspaceID string
	// Cloud is the Microsoft cloud of the URL's host, as the server config
	// names clouds: public, usgov, usgovhigh, usgovdod or china.
	Cloud string
}

// MyWorkspace reports whether the item is in the signed-in user's My
// workspace.
func (it Item) MyWorkspace() bool { return it.WorkspaceID == "" }

// hosts are the addresses of the Power BI service, by cloud ("Power BI for
// US government customers": app.powerbigov.us, app.high.powerbigov.us,
// app.mil.powerbigov.us; "Power BI for China cloud": app.powerbi.cn), and
// the Microsoft Fabric portal, which opens the same items under the same
// paths.
var hosts = map[string]string{
	"app.powerbi.com":          "public",
	"app.fabric.microsoft.com": "public",
	"app.powerbigov.us":        "usgov",
	"app.high.powerbigov.us":   "usgovhigh",
	"app.mil.powerbigov.us":    "usgovdod",
	"app.powerbi.cn":           "china",
}

// Shape is what an unreadable URL is told: the addresses this package reads.
const Shape = `a Power BI address copied from the browser, such as
  https://app.powerbi.com/groups/<workspace id>/reports/<report id>/ReportSection…
  https://app.powerbi.com/groups/<workspace id>/rdlreports/<report id>
  https://app.powerbi.com/groups/<workspace id>/dashboards/<dashboard id>
  https://app.powerbi.com/groups/me/reports/<report id>   (My workspace)
  https://app.powerbi.com/reportEmbed?reportId=<report id>&groupId=<workspace id>
(the scheme may be left out; query parameters such as ?ctid= are ignored; the hosts of
the government and China clouds, app.powerbigov.us, app.high.powerbigov.us,
app.mil.powerbigov.us and app.powerbi.cn, and app.fabric.microsoft.com work too)`

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Error is a URL that names no item this package can read, with why.
type Error struct {
	URL    string
	Reason string
}

// Error says why, and shows the shape expected.
func (e *Error) Error() string {
	return fmt.Sprintf("cannot read %q: %s; expected %s", e.URL, e.Reason, Shape)
}

// ErrUnreadable matches every *Error (errors.Is).
var ErrUnreadable = errors.New("pbiurl: unreadable Power BI URL")

// Is matches ErrUnreadable.
func (e *Error) Is(target error) bool { return target == ErrUnreadable }

// Parse reads the item a Power BI URL names.
func Parse(raw string) (Item, error) {
	s := strings.TrimSpace(raw)
	fail := func(format string, args ...any) (Item, error) {
		return Item{}, &Error{URL: s, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail("it is empty")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fail("not a URL (%v)", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fail("scheme %q is not https", u.Scheme)
	}
	host := strings.ToLower(u.Hostname())
	cloud, ok := hosts[host]
	if !ok {
		return fail("%q is not an address of the Power BI service", u.Host)
	}
	segs := segments(u.Path)
	if len(segs) == 1 {
		switch strings.ToLower(segs[0]) {
		case "reportembed":
			return fromQuery(s, u, Report, "reportId", cloud)
		case "rdlembed":
			return fromQuery(s, u, PaginatedReport, "reportId", cloud)
		case "dashboardembed":
			return fromQuery(s, u, Dashboard, "dashboardId", cloud)
		case "view":
			return fail("a Publish to web link names no workspace or report (anyone with it can see the report; embed tokens are not needed)")
		}
	}
	if len(segs) >= 1 && strings.EqualFold(segs[0], "links") {
		return fail("a sharing link: open it in the browser and copy the address it leads to")
	}
	if len(segs) < 2 || !strings.EqualFold(segs[0], "groups") {
		return fail("the path does not start with /groups/<workspace id>/")
	}
	ws := strings.ToLower(segs[1])
	switch {
	case ws == "me":
		ws = ""
	case !uuidRE.MatchString(ws):
		return fail("%q is not a workspace id", segs[1])
	}
	if len(segs) < 4 {
		if len(segs) == 3 && kindOf(segs[2]) != 0 {
			return fail("the %s id is missing", kindOf(segs[2]))
		}
		return fail("a workspace, not an item in it: open the report, paginated report or dashboard and copy that address")
	}
	if strings.EqualFold(segs[2], "apps") {
		return fail("an app's copy of the item: open the item in its workspace and copy that address")
	}
	kind := kindOf(segs[2])
	if kind == 0 {
		return fail("%q items cannot be embedded with this command (reports, paginated reports and dashboards can)", segs[2])
	}
	id := segs[3]
	if !uuidRE.MatchString(id) {
		return fail("%q is not a %s id", id, kind)
	}
	return Item{Kind: kind, ID: strings.ToLower(id), WorkspaceID: ws, Cloud: cloud}, nil
}

// kindOf is the kind a path segment names, 0 for none.
func kindOf(seg string) Kind {
	switch strings.ToLower(seg) {
	case "reports":
		return Report
	case "rdlreports":
		return PaginatedReport
	case "dashboards":
		return Dashboard
	}
	return 0
}

// fromQuery reads an embed URL's ids: the item from idParam, the
// workspace from groupId (absent: My workspace).
func fromQuery(raw string, u *url.URL, kind Kind, idParam, cloud string) (Item, error) {
	q := u.Query()
	id, ws := queryValue(q, idParam), queryValue(q, "groupId")
	switch {
	case id == "":
		return Item{}, &Error{URL: raw, Reason: "the " + idParam + " parameter is missing"}
	case !uuidRE.MatchString(id):
		return Item{}, &Error{URL: raw, Reason: fmt.Sprintf("%s %q is not a %s id", idParam, id, kind)}
	case ws != "" && !uuidRE.MatchString(ws):
		return Item{}, &Error{URL: raw, Reason: fmt.Sprintf("groupId %q is not a workspace id", ws)}
	}
	return Item{Kind: kind, ID: strings.ToLower(id), WorkspaceID: strings.ToLower(ws), Cloud: cloud}, nil
}

// queryValue reads a parameter whatever the case of its name (the service
// writes reportId; hand-edited links vary).
func queryValue(q url.Values, name string) string {
	for k, v := range q {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
	}
	return ""
}

// segments splits a path, dropping empty segments (a trailing slash, a
// doubled one).
func segments(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
