package emulator

import (
	"fmt"
	"slices"
)

// The Power BI clouds, by the names Config.Cloud takes. Each has its own
// Entra resource for the Power BI API, the audience of the access tokens
// Power BI accepts ("Embed content for national clouds",
// learn.microsoft.com/power-bi/developer/embedded/embed-sample-for-customers-national-clouds).
// Entra issues tokens for any of them; the Power BI side accepts only its
// own cloud's.
const (
	CloudPublic    = "public"    // api.powerbi.com
	CloudUSGov     = "usgov"     // GCC: api.powerbigov.us
	CloudUSGovHigh = "usgovhigh" // GCC High: api.high.powerbigov.us
	CloudUSGovDoD  = "usgovdod"  // DoD: api.mil.powerbigov.us
	CloudChina     = "china"     // 21Vianet: api.powerbi.cn
)

// cloud is what the emulator plays for one cloud.
type cloud struct {
	name     string
	resource string // the Power BI API's Entra resource: the token audience
}

var clouds = []cloud{
	{CloudPublic, "https://analysis.windows.net/powerbi/api"},
	{CloudUSGov, "https://analysis.usgovcloudapi.net/powerbi/api"},
	{CloudUSGovHigh, "https://high.analysis.usgovcloudapi.net/powerbi/api"},
	{CloudUSGovDoD, "https://mil.analysis.usgovcloudapi.net/powerbi/api"},
	{CloudChina, "https://analysis.chinacloudapi.cn/powerbi/api"},
}

// lookupCloud finds a cloud by name ("" is public).
func lookupCloud(name string) (cloud, error) {
	if name == "" {
		name = CloudPublic
	}
	i := slices.IndexFunc(clouds, func(c cloud) bool { return c.name == name })
	if i < 0 {
		return cloud{}, fmt.Errorf("emulator: unknown cloud %q (want public, usgov, usgovhigh, usgovdod or china)", name)
	}
	return clouds[i], nil
}
