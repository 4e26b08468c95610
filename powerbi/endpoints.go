package powerbi

import "strings"

// Endpoints are what a Config resolves to once its defaults apply: what
// `embedgate check` tells an operator the gateway will use.
type Endpoints struct {
	// Cloud is the cloud's name (public, usgov, ...).
	Cloud string
	// Authority is the Entra authority URL: the host and the tenant.
	Authority string
	// InstanceDiscovery is whether MSAL validates the authority with
	// Microsoft (on for the Microsoft clouds' hosts only).
	InstanceDiscovery bool
	// APIURL is the Power BI REST API's base URL.
	APIURL string
	// Scope is the token scope asked of Entra.
	Scope string
	// Credential names the kind of credential: "client secret",
	// "certificate" or "workload identity federation".
	Credential string
	// CredentialFile is the file it is read from.
	CredentialFile string
}

// Endpoints resolves c (a valid Config) without touching the network.
func (c Config) Endpoints() Endpoints {
	r := c.resolve()
	e := Endpoints{
		Cloud:             strings.ToLower(c.Cloud),
		Authority:         r.authorityHost + "/" + c.TenantID,
		InstanceDiscovery: r.discovery,
		APIURL:            r.apiURL,
		Scope:             r.scope,
	}
	if e.Cloud == "" {
		e.Cloud = DefaultCloud
	}
	switch {
	case c.ClientSecretFile != "":
		e.Credential, e.CredentialFile = "client secret", c.ClientSecretFile
	case c.CertificateFile != "":
		e.Credential, e.CredentialFile = "certificate", c.CertificateFile
	case c.FederatedTokenFile != "":
		e.Credential, e.CredentialFile = "workload identity federation", c.FederatedTokenFile
	}
	return e
}
