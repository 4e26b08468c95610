package server

import (
	"fmt"
	"os"
	"strings"

	"github.com/embedgate/embedgate/authz"
)

// Summary says, one line per topic, what a loaded config will use: the
// cloud and its endpoints, the credential and where each powerbi value
// came from, the listeners, the policy (version and size), the preflight,
// the audit stream, the drain and tracing. `embedgate check` prints it,
// so that an operator sees what the defaults and the environment made of
// the file. It fails only when the OTEL_* variables are invalid (serve
// would refuse to start).
func (c *Config) Summary() (string, error) {
	var b strings.Builder
	line := func(topic, format string, args ...any) {
		fmt.Fprintf(&b, "  %-12s %s\n", topic+":", fmt.Sprintf(format, args...))
	}
	onOff := func(on bool) string {
		if on {
			return "on"
		}
		return "off"
	}
	e := c.PowerBI.Endpoints()
	line("cloud", "%s", e.Cloud)
	line("authority", "%s (instance discovery %s)", e.Authority, onOff(e.InstanceDiscovery))
	line("power bi", "%s (scope %s)", e.APIURL, e.Scope)
	line("credential", "%s, %s; client_id %s", e.Credential, e.CredentialFile, c.PowerBI.ClientID)
	for _, s := range c.Sources() {
		line("environment", "%s %s", s.Key, s.Message)
	}
	transport := "mTLS, callers' certificates from " + c.TLS.ClientCAFile
	if c.TLS.TrustDomain != "" {
		transport += ", trust domain " + c.TLS.TrustDomain
	}
	if c.Mesh.Enabled {
		transport = "mesh mode (callers from " + c.Mesh.Self + "'s sidecar)"
		if c.TLS != (TLSConfig{}) {
			transport += " over mTLS"
		} else {
			transport += ", plaintext from the sidecar"
		}
	}
	line("listen", "%s, %s; reflection %s", c.Listen, transport, onOff(c.reflection()))
	if c.AdminListen != "" {
		paths := "/healthz /readyz /metrics"
		if c.Pprof {
			paths += " /debug/pprof/"
		}
		line("admin", "%s (plain HTTP: %s)", c.AdminListen, paths)
	} else {
		line("admin", "off (no admin_listen: no /healthz, /readyz or /metrics)")
	}
	if p, err := authz.Load(c.PolicyFile); err == nil {
		line("policy", "%s, version %s: %d tenants, %d callers", c.PolicyFile, p.Version(), len(p.Tenants()), p.Callers())
	}
	line("preflight", "%s", onOff(c.preflight()))
	if c.AuditFile != "" {
		line("audit", "%s", c.AuditFile)
	} else {
		line("audit", "the log, stream=audit")
	}
	line("shutdown", "NOT_SERVING, %s delay, then %s grace", c.ShutdownDelay, c.ShutdownGrace)
	line("shared", "%s", sharedStateSummary(c.SharedState))
	t, err := tracingFromEnv(os.LookupEnv)
	if err != nil {
		return b.String(), err
	}
	line("tracing", "%s", t)
	return b.String(), nil
}
