// Package emulator is a local, faithful emulator of Entra ID (client
// credentials for service principals; device code, password, refresh and
// on-behalf-of grants for users) and of the Power BI REST API calls used
// to embed content, as a service principal or as a user, served over
// HTTPS with a certificate authority it generates.
//
// It is an independent implementation written from Microsoft's public
// documentation, not from the gateway's code: it shares no types with the
// rest of Embedgate, so a wrong field name in the gateway shows up as a
// failing call against the emulator instead of being copied into it.
//
// Entra and Power BI paths are served on one listener, so a client sets both
// its authority host and its Power BI API URL to [Server.URL]. The fixture
// describes the world: tenants and their admin setting for service
// principals, apps with secrets (which may expire), certificates,
// federated credentials and profiles, and workspaces with their capacity
// (dedicated, or shared with its trial tokens), the roles of each
// principal, and their reports, datasets (of every kind: imported, live
// connections to Analysis Services, DirectQuery with single sign-on,
// composite models) and dashboards; users with their licence, My
// workspace, consent and Conditional Access policies.
//
// Every minted embed token is recorded and can be inspected
// ([Server.LookupToken], the /_emulator/tokens routes); faults (latency,
// throttling, 5xx, dropped connections, short or random Entra lifetimes,
// an exhausted trial quota) can be set at start or at runtime. Tests get
// hooks: every request recorded per route ([Server.Requests]), canned
// answers ([Server.SetAnswer]), gates that hold calls ([Server.Gate]), and
// the Entra tokens issued ([Server.AccessTokens]); device codes are
// approved or declined for a user ([Server.ApproveDeviceCode]).
//
// The browser side is served too: the pages that embed URLs open
// (reportEmbed, rdlEmbed, dashboardEmbed) speak enough of Microsoft's
// powerbi-client postMessage protocol for powerbi.embed() to load them,
// raise loaded, rendered and error, and take setAccessToken; they show the
// item and the token's RLS identities, from the token store (embed.go).
package emulator
