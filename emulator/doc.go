// Package emulator is a local, faithful emulator of Entra ID (client
// credentials) and of the Power BI REST API calls used to embed content,
// served over HTTPS with a certificate authority it generates.
//
// It is an independent implementation written from the public API
// reference, not from the gateway's code: it shares no types with the rest
// of Embedgate, so a wrong field name in the gateway shows up as a failing
// call against the emulator instead of being copied into it.
//
// Entra and Power BI paths are served on one listener, so a client sets both
// its authority host and its Power BI API URL to [Server.URL]. Every minted
// embed token is recorded and can be inspected ([Server.LookupToken], the
// /_emulator/tokens routes); faults (latency, throttling, 5xx, dropped
// connections, short Entra tokens, an exhausted trial quota) can be set at
// start or at runtime; every route counts its calls.
package emulator
