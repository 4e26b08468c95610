package pbiurl

import (
	"errors"
	"strings"
	"testing"
)

const (
	ws  = "f089354e-8366-4e18-aea3-4cb4a3a50b48"
	rep = "5b218778-e7a5-4d73-8187-f10824047715"
)

// TestParse reads the addresses the Power BI service shows, in every shape
// a developer copies them in.
func TestParse(t *testing.T) {
	t.Parallel()
	report := Item{Kind: Report, ID: rep, WorkspaceID: ws, Cloud: "public"}
	tests := []struct {
		name, url string
		want      Item
	}{
		{"report page", "https://app.powerbi.com/groups/" + ws + "/reports/" + rep + "/ReportSection", report},
		{"report page with ctid", "https://app.powerbi.com/groups/" + ws + "/reports/" + rep + "/ReportSection2?ctid=72f988bf-86f1-41af-91ab-2d7cd011db47", report},
		{"new page name and experience", "https://app.powerbi.com/groups/" + ws + "/reports/" + rep + "/5f2b1c9a0e3d4e8a9b7c?experience=power-bi", report},
		{"bookmark and source", "https://app.powerbi.com/groups/" + ws + "/reports/" + rep + "/ReportSection?bookmarkGuid=Bookmark1a2b3c&bookmarkUsage=1&ctid=72f988bf-86f1-41af-91ab-2d7cd011db47&pbi_source=linkShare", report},
		{"no scheme", "app.powerbi.com/groups/" + ws + "/reports/" + rep + "/ReportSection", report},
		{"trailing slash", "https://app.powerbi.com/groups/" + ws + "/reports/" + rep + "/", report},
		{"report without page", "https://app.powerbi.com/groups/" + ws + "/reports/" + rep, report},
		{"upper-case ids and path", "https://APP.POWERBI.COM/Groups/" + strings.ToUpper(ws) + "/Reports/" + strings.ToUpper(rep) + "/ReportSection", report},
		{"URL filter", "https://app.powerbi.com/groups/" + ws + "/reports/" + rep + "/ReportSection?filter=Store/Territory%20eq%20%27NC%27", report},
		{"surrounding spaces", "  https://app.powerbi.com/groups/" + ws + "/reports/" + rep + "/ReportSection \n", report},
		{"Fabric portal", "https://app.fabric.microsoft.com/groups/" + ws + "/reports/" + rep + "/ReportSection?experience=power-bi", report},
		{"My workspace report", "https://app.powerbi.com/groups/me/reports/" + rep + "/ReportSection", Item{Kind: Report, ID: rep, Cloud: "public"}},
		{"paginated report", "https://app.powerbi.com/groups/" + ws + "/rdlreports/" + rep, Item{Kind: PaginatedReport, ID: rep, WorkspaceID: ws, Cloud: "public"}},
		{"paginated report with parameters", "https://app.powerbi.com/groups/me/rdlreports/" + rep + "?rp:Salesperson=Tie+Bear&rp:State=Utah", Item{Kind: PaginatedReport, ID: rep, Cloud: "public"}},
		{"dashboard", "https://app.powerbi.com/groups/" + ws + "/dashboards/" + rep + "?ctid=72f988bf-86f1-41af-91ab-2d7cd011db47", Item{Kind: Dashboard, ID: rep, WorkspaceID: ws, Cloud: "public"}},
		{"dashboard tile focus", "https://app.powerbi.com/groups/" + ws + "/dashboards/" + rep + "/tiles/3f6c1f56-9c4d-4d6a-9b2e-1c0f1f4f1f1f/infocus", Item{Kind: Dashboard, ID: rep, WorkspaceID: ws, Cloud: "public"}},
		{"reportEmbed link", "https://app.powerbi.com/reportEmbed?reportId=" + rep + "&groupId=" + ws + "&autoAuth=true&ctid=72f988bf-86f1-41af-91ab-2d7cd011db47", report},
		{"reportEmbed in My workspace", "https://app.powerbi.com/reportEmbed?reportId=" + rep + "&autoAuth=true", Item{Kind: Report, ID: rep, Cloud: "public"}},
		{"rdlEmbed link", "https://app.powerbi.com/rdlEmbed?reportId=" + rep + "&groupId=" + ws, Item{Kind: PaginatedReport, ID: rep, WorkspaceID: ws, Cloud: "public"}},
		{"dashboardEmbed link", "https://app.powerbi.com/dashboardEmbed?dashboardId=" + rep + "&groupId=" + ws, Item{Kind: Dashboard, ID: rep, WorkspaceID: ws, Cloud: "public"}},
		{"GCC", "https://app.powerbigov.us/groups/" + ws + "/reports/" + rep + "/ReportSection", Item{Kind: Report, ID: rep, WorkspaceID: ws, Cloud: "usgov"}},
		{"GCC High", "https://app.high.powerbigov.us/groups/" + ws + "/reports/" + rep + "/ReportSection", Item{Kind: Report, ID: rep, WorkspaceID: ws, Cloud: "usgovhigh"}},
		{"GCC High embed link", "https://app.high.powerbigov.us/reportEmbed?reportId=" + rep + "&autoAuth=true&ctid=3ffbc5ec-b740-451c-ab2d-36a9f55bfa3c", Item{Kind: Report, ID: rep, Cloud: "usgovhigh"}},
		{"DoD", "https://app.mil.powerbigov.us/groups/" + ws + "/dashboards/" + rep, Item{Kind: Dashboard, ID: rep, WorkspaceID: ws, Cloud: "usgovdod"}},
		{"China", "https://app.powerbi.cn/groups/" + ws + "/rdlreports/" + rep, Item{Kind: PaginatedReport, ID: rep, WorkspaceID: ws, Cloud: "china"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.url)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.url, err)
			}
			if got != tc.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.url, got, tc.want)
			}
			if got.MyWorkspace() != (tc.want.WorkspaceID == "") {
				t.Errorf("MyWorkspace() = %v", got.MyWorkspace())
			}
		})
	}
}

// TestParseRefuses: what is not the address of one item is refused with
// why, and the message shows the shape expected.
func TestParseRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, why string
	}{
		{"empty", "", "it is empty"},
		{"another site", "https://example.com/groups/" + ws + "/reports/" + rep, `"example.com" is not an address of the Power BI service`},
		{"retired Germany cloud", "https://app.powerbi.de/groups/" + ws + "/reports/" + rep, "not an address of the Power BI service"},
		{"the REST API, not the service", "https://api.powerbi.com/v1.0/myorg/groups/" + ws + "/reports/" + rep, "not an address of the Power BI service"},
		{"ftp", "ftp://app.powerbi.com/groups/" + ws + "/reports/" + rep, `scheme "ftp" is not https`},
		{"home page", "https://app.powerbi.com/home", "does not start with /groups/"},
		{"workspace only", "https://app.powerbi.com/groups/" + ws + "/list?experience=power-bi", "a workspace, not an item in it"},
		{"report id missing", "https://app.powerbi.com/groups/" + ws + "/reports/", "the report id is missing"},
		{"truncated report id", "https://app.powerbi.com/groups/" + ws + "/reports/5b218778-e7a5-4d73-8187", `"5b218778-e7a5-4d73-8187" is not a report id`},
		{"bad workspace id", "https://app.powerbi.com/groups/sales/reports/" + rep, `"sales" is not a workspace id`},
		{"semantic model", "https://app.powerbi.com/groups/" + ws + "/datasets/" + rep + "/details", `"datasets" items cannot be embedded`},
		{"app", "https://app.powerbi.com/groups/me/apps/" + ws + "/reports/" + rep + "/ReportSection", "an app's copy"},
		{"publish to web", "https://app.powerbi.com/view?r=eyJrIjoiYWJjIn0", "Publish to web"},
		{"sharing link", "https://app.powerbi.com/links/AbCdEf123?ctid=72f988bf-86f1-41af-91ab-2d7cd011db47", "sharing link"},
		{"embed link without id", "https://app.powerbi.com/reportEmbed?groupId=" + ws, "reportId parameter is missing"},
		{"embed link bad group", "https://app.powerbi.com/reportEmbed?reportId=" + rep + "&groupId=nope", `groupId "nope" is not a workspace id`},
		{"not a URL", "https://app.powerbi.com/groups/%zz", "not a URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.url)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tc.url, got)
			}
			if !errors.Is(err, ErrUnreadable) {
				t.Errorf("error %v is not ErrUnreadable", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.why) {
				t.Errorf("error %q does not say %q", msg, tc.why)
			}
			if !strings.Contains(msg, "https://app.powerbi.com/groups/<workspace id>/reports/<report id>") {
				t.Errorf("error %q does not show the expected shape", msg)
			}
		})
	}
}
