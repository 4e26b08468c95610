package emulator

import (
	"maps"
	"sync"
)

// Route names: the keys of [Server.Counters] and of GET /_emulator/counters.
// Every call is counted under its route, including refused ones.
const (
	// RouteOIDC is GET /{tenant}/v2.0/.well-known/openid-configuration.
	RouteOIDC = "entra.openid-configuration"
	// RouteInstanceDiscovery is GET /common/discovery/instance.
	RouteInstanceDiscovery = "entra.instance-discovery"
	// RouteJWKS is GET /{tenant}/discovery/v2.0/keys.
	RouteJWKS = "entra.keys"
	// RouteEntraToken is POST /{tenant}/oauth2/v2.0/token.
	RouteEntraToken = "entra.token"
	// RouteDeviceCode is POST /{tenant}/oauth2/v2.0/devicecode.
	RouteDeviceCode = "entra.devicecode"

	// RouteGenerateToken is POST /v1.0/myorg/GenerateToken (V2).
	RouteGenerateToken = "powerbi.GenerateToken"
	// RouteGetGroups is GET /v1.0/myorg/groups (Get Groups).
	RouteGetGroups = "powerbi.GetGroups"
	// RouteGetGroup is GET /v1.0/myorg/groups/{g} (Get Group).
	RouteGetGroup = "powerbi.GetGroup"
	// RouteGetReport is GET /v1.0/myorg/groups/{g}/reports/{r}.
	RouteGetReport = "powerbi.GetReportInGroup"
	// RouteGetReports is GET /v1.0/myorg/groups/{g}/reports.
	RouteGetReports = "powerbi.GetReportsInGroup"
	// RouteGetDataset is GET /v1.0/myorg/groups/{g}/datasets/{d}.
	RouteGetDataset = "powerbi.GetDatasetInGroup"
	// RouteGetDatasources is GET /v1.0/myorg/groups/{g}/datasets/{d}/datasources.
	RouteGetDatasources = "powerbi.GetDatasourcesInGroup"
	// RouteGetReportDatasources is GET /v1.0/myorg/groups/{g}/reports/{r}/datasources.
	RouteGetReportDatasources = "powerbi.ReportsGetDatasourcesInGroup"
	// RouteGetMyReports is GET /v1.0/myorg/reports (My workspace).
	RouteGetMyReports = "powerbi.GetReports"
	// RouteGetMyReport is GET /v1.0/myorg/reports/{r} (My workspace).
	RouteGetMyReport = "powerbi.GetReport"
	// RouteGetMyDataset is GET /v1.0/myorg/datasets/{d} (My workspace).
	RouteGetMyDataset = "powerbi.GetDataset"
	// RouteGetDashboard is GET /v1.0/myorg/groups/{g}/dashboards/{d}.
	RouteGetDashboard = "powerbi.GetDashboardInGroup"
	// RouteGetDashboards is GET /v1.0/myorg/groups/{g}/dashboards.
	RouteGetDashboards = "powerbi.GetDashboardsInGroup"
	// RouteGetTiles is GET /v1.0/myorg/groups/{g}/dashboards/{d}/tiles.
	RouteGetTiles = "powerbi.GetTilesInGroup"
	// RouteGetTile is GET /v1.0/myorg/groups/{g}/dashboards/{d}/tiles/{t}.
	RouteGetTile = "powerbi.GetTileInGroup"
	// RouteReportGenerateTokenInGroup is POST .../groups/{g}/reports/{r}/GenerateToken.
	RouteReportGenerateTokenInGroup = "powerbi.ReportsGenerateTokenInGroup"
	// RouteCreateReportTokenInGroup is POST .../groups/{g}/reports/GenerateToken.
	RouteCreateReportTokenInGroup = "powerbi.ReportsGenerateTokenForCreateInGroup"
	// RouteDashboardGenerateTokenInGroup is POST .../groups/{g}/dashboards/{d}/GenerateToken.
	RouteDashboardGenerateTokenInGroup = "powerbi.DashboardsGenerateTokenInGroup"
	// RouteTileGenerateTokenInGroup is POST .../groups/{g}/dashboards/{d}/tiles/{t}/GenerateToken.
	RouteTileGenerateTokenInGroup = "powerbi.TilesGenerateTokenInGroup"
	// RouteDatasetGenerateTokenInGroup is POST .../groups/{g}/datasets/{d}/GenerateToken.
	RouteDatasetGenerateTokenInGroup = "powerbi.DatasetsGenerateTokenInGroup"
	// RouteAvailableFeatures is GET /v1.0/myorg/availableFeatures and
	// GET /v1.0/myorg/availableFeatures(featureName='...').
	RouteAvailableFeatures = "powerbi.GetAvailableFeatures"

	// RouteReportEmbed is GET /reportEmbed, the page a report's embedUrl opens.
	RouteReportEmbed = "embed.reportEmbed"
	// RouteRDLEmbed is GET /rdlEmbed, the page a paginated report's embedUrl opens.
	RouteRDLEmbed = "embed.rdlEmbed"
	// RouteDashboardEmbed is GET /dashboardEmbed, the page a dashboard's embedUrl opens.
	RouteDashboardEmbed = "embed.dashboardEmbed"
	// RouteExploreReport is GET /explore/reports/{r}: what an embed page
	// asks, with the embed token, about its report.
	RouteExploreReport = "embed.exploreReport"
	// RouteExploreDashboard is GET /explore/dashboards/{d}: the same for a
	// dashboard.
	RouteExploreDashboard = "embed.exploreDashboard"

	// RouteNotFound counts requests that matched no route.
	RouteNotFound = "notfound"
)

// allRoutes lists the counted routes, so Counters reports zeros too.
var allRoutes = []string{
	RouteOIDC, RouteInstanceDiscovery, RouteJWKS, RouteEntraToken, RouteDeviceCode,
	RouteGenerateToken, RouteGetGroups, RouteGetGroup, RouteGetReport, RouteGetReports, RouteGetDataset,
	RouteGetDatasources, RouteGetReportDatasources, RouteGetMyReports, RouteGetMyReport, RouteGetMyDataset,
	RouteGetDashboards, RouteGetDashboard, RouteGetTiles, RouteGetTile,
	RouteReportGenerateTokenInGroup,
	RouteCreateReportTokenInGroup, RouteDashboardGenerateTokenInGroup,
	RouteTileGenerateTokenInGroup, RouteDatasetGenerateTokenInGroup,
	RouteAvailableFeatures,
	RouteReportEmbed, RouteRDLEmbed, RouteDashboardEmbed, RouteExploreReport, RouteExploreDashboard,
	RouteNotFound,
}

// counters counts calls per route.
type counters struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *counters) inc(route string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[route]++
}

func (c *counters) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(allRoutes))
	for _, r := range allRoutes {
		out[r] = 0
	}
	maps.Copy(out, c.n)
	return out
}

func (c *counters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = nil
}
