//go:build !production

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/devconfig"
	"github.com/embedgate/embedgate/internal/devpki"
	"github.com/embedgate/embedgate/server"
)

// The demo world: the emulator's built-in fixture and the policy written
// for it. The ids are the fixture's (emulator/demo.yaml).
const (
	devCaller       = "spiffe://embedgate.dev/ns/demo/sa/web-frontend"
	devServerID     = "spiffe://embedgate.dev/ns/platform/sa/embedgate" // the dev server certificate's SPIFFE ID
	devEntraTenant  = "c0ffee00-0000-4000-8000-000000000001"
	devClientID     = "c0ffee00-0000-4000-8000-0000000000a1"
	devClientSecret = "embedgate-dev-secret" // the emulator's demo secret; dev only
	devSalesReport  = "a1000000-0000-4000-8000-000000000001"
	devAASReport    = "a7000000-0000-4000-8000-000000000001" // Acme Models' live connection to Azure Analysis Services
)

// devPolicy is the demo policy: an RLS tenant with its own workspace, a
// tenant without RLS behind a service-principal profile, a tenant in a
// workspace shared by many customers, told apart by RLS, and a tenant served
// from every kind of model (README.md, "Models and identities"); and the dev
// caller may embed for the demo directory's users with their own access
// (user owns data).
const devPolicy = `# Embedgate dev policy (written by 'make run' if missing; edit it while the
# server runs: it is reloaded, and a bad edit is rejected with the old policy kept).
callers:
  - id: ` + devCaller + `
    tenants: [acme, globex, initech, acme-models]
    rate_limit:            # a token bucket per caller
      per_second: 20
      burst: 40
    user_owns_data:        # GenerateUserEmbedConfig: the demo directory's users, in any workspace (their own rights decide)
      entra_tenants: [` + devEntraTenant + `]
      workspaces: ["*"]
tenants:
  acme:        # own workspaces; Sales has RLS, Inventory has none, Invoices is paginated
    workspace_id: a0000000-0000-4000-8000-000000000001
    reports: [a1000000-0000-4000-8000-000000000001, a1000000-0000-4000-8000-000000000002, a1000000-0000-4000-8000-000000000003]
    dashboards: ["*"]
    workspaces:
      - id: a0000000-0000-4000-8000-000000000004      # Acme Finance
        reports: [a4000000-0000-4000-8000-000000000001] # Budget
    rls:
      roles: [Customer]
      username: "{user}"
      custom_data: "{tenant}"
      dataset_roles:       # the Budget model calls its role Region
        d4000000-0000-4000-8000-000000000001: [Region]
      without_rls:         # Inventory's model has no RLS on purpose; any other such dataset is refused
        - a1000000-0000-4000-8000-000000000002
    allow_edit: false
    allow_create: true
    max_lifetime: 60m
    default_lifetime: 30m
  globex:      # no RLS; its workspace is reached through a service-principal profile
    workspace_id: a0000000-0000-4000-8000-000000000002
    profile_id: f0000000-0000-4000-8000-000000000001
    reports: ["*"]
    allow_edit: true
    max_lifetime: 30m
  initech:     # one workspace shared by many customers: RLS keeps them apart
    workspace_id: a0000000-0000-4000-8000-000000000003
    reports: [a3000000-0000-4000-8000-000000000001]
    rls:
      roles: [Tenant]
      username: "{user}"
      custom_data: "{tenant}"
    max_lifetime: 60m
  acme-models: # one model of each kind (Acme Models); an identity per dataset where its kind needs another
    workspace_id: a0000000-0000-4000-8000-000000000007
    reports: ["*"]
    workspaces:
      - id: a0000000-0000-4000-8000-000000000001      # Acme Analytics: what the composite model and
        reports: [a1000000-0000-4000-8000-000000000003] # Customer Statements read, and Invoices
    rls:
      roles: [Customer]
      username: "{user}"
      custom_data: "{tenant}"
      datasets:
        # Azure Analysis Services: the service principal, the end user in customData
        d7000000-0000-4000-8000-000000000001: {username: service_principal, custom_data: "{user}", roles: [SalesReader]}
        # SQL Server Analysis Services: the end user's account, no customData, the server's roles
        d7000000-0000-4000-8000-000000000002: {custom_data: "", roles: []}
        # DirectQuery to Azure SQL with single sign-on: no RLS roles in the model
        d7000000-0000-4000-8000-000000000003: {roles: []}
      without_rls:         # the composite model and Executive Summary read models without RLS
        - a7000000-0000-4000-8000-000000000004
        - a7000000-0000-4000-8000-000000000006
    sso: ["*"]             # identity blobs for every single sign-on data source
    max_lifetime: 60m
`

// buildFlavour is printed by `embedgate version`.
const buildFlavour = "development (serve --dev and emulator included)"

// devUsageNote completes the usage text; the production build says there
// what it leaves out.
const devUsageNote = ""

// emulatorAbout is what `embedgate emulator --help` says before its flags.
const emulatorAbout = `usage: embedgate emulator [flags]

Run the Entra ID + Power BI emulator alone, on HTTPS, for integration tests
of your own (fixture format, routes and faults: emulator/README.md).

`

// runEmulator is `embedgate emulator`.
func runEmulator(ctx context.Context, args []string, stdout io.Writer) error {
	if wantsHelp(args) {
		fmt.Fprint(stdout, emulatorAbout)
	}
	if err := emulator.RunCommand(ctx, args, stdout); !errors.Is(err, flag.ErrHelp) {
		return err
	}
	return nil
}

type devOptions struct {
	enabled bool
	dir     string
	listen  string
	grpcurl string
}

func devFlags(fs *flag.FlagSet) *devOptions {
	o := &devOptions{}
	fs.BoolVar(&o.enabled, "dev", false, "dev mode: embedded emulator, dev CA, demo policy")
	fs.StringVar(&o.dir, "dev-dir", ".dev", "dev mode: folder for the dev CA, certificates, config and policy")
	fs.StringVar(&o.listen, "dev-listen", server.DevListen, "dev mode: gRPC listen address (loopback: the dev certificates are throwaway)")
	fs.StringVar(&o.grpcurl, "grpcurl", "grpcurl", "dev mode: the grpcurl binary named in the printed example")
	return o
}

// serveDev runs the real server, configured through the same config file
// and validation as production, against the emulator started in-process.
func serveDev(ctx context.Context, o *devOptions, stdout, stderr io.Writer) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := writeDevPKI(dir); err != nil {
		return fmt.Errorf("dev PKI: %w", err)
	}
	// The emulator says only what goes wrong, so the server's own one line
	// per call stays readable.
	emuLogger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "emulator")
	emu, err := emulator.Start(ctx, emulator.Config{Logger: emuLogger})
	if err != nil {
		return fmt.Errorf("emulator: %w", err)
	}
	defer emu.Close()
	if err := writeDevConfig(dir, o.listen, emu); err != nil {
		return err
	}
	cfg, err := server.LoadConfig(filepath.Join(dir, "config.yaml"))
	if err != nil {
		return err
	}
	endpoints := filepath.Join(dir, "endpoints.json")
	_ = os.Remove(endpoints) // a stale one would name a listener that is gone
	return server.Run(ctx, cfg, server.RunOptions{
		Logger: logger,
		Ready: func(addr net.Addr) {
			// For scripts and tests: the addresses, machine-readable.
			// Written aside and renamed, so a reader never sees half of it.
			b, _ := json.Marshal(map[string]string{"grpc": addr.String(), "emulator": emu.URL(), "server_id": devServerID})
			err := os.WriteFile(endpoints+".tmp", append(b, '\n'), 0o600)
			if err == nil {
				err = os.Rename(endpoints+".tmp", endpoints)
			}
			if err != nil {
				logger.Error("cannot write "+endpoints, "error", err)
			}
			fmt.Fprint(stdout, devBanner(o.grpcurl, dir, addr.String(), emu.URL()))
		},
	})
}

// writeDevPKI keeps the dev CA across runs (so a pasted grpcurl command keeps
// working) and issues fresh server and caller certificates from it.
func writeDevPKI(dir string) error {
	caFile, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	ca, err := devpki.LoadCA(caFile, caKey)
	if errors.Is(err, fs.ErrNotExist) {
		if ca, err = devpki.NewCA("Embedgate dev CA"); err == nil {
			err = ca.WriteFiles(caFile, caKey)
		}
	}
	if err != nil {
		return err
	}
	// An X.509-SVID as in a SPIFFE mesh, with names for clients that check
	// those instead (grpcurl).
	srv, err := ca.IssueServerSVID(devServerID, "localhost", "127.0.0.1", "::1")
	if err != nil {
		return err
	}
	if err := srv.WriteFiles(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")); err != nil {
		return err
	}
	caller, err := ca.IssueClient(devCaller)
	if err != nil {
		return err
	}
	return caller.WriteFiles(filepath.Join(dir, "caller.pem"), filepath.Join(dir, "caller-key.pem"))
}

func writeDevConfig(dir, listen string, emu *emulator.Server) error {
	return devconfig.Folder{
		Dir:          dir,
		Comment:      "# Embedgate dev config, written by 'make run' on every start.\n",
		Listen:       listen,
		EmulatorURL:  emu.URL(),
		EmulatorCA:   emu.CACertPEM(),
		TenantID:     devEntraTenant,
		ClientID:     devClientID,
		ClientSecret: devClientSecret,
		Policy:       devPolicy,
		KeepPolicy:   true,
		Extra: `shutdown_delay: 0s   # no load balancer to wait for: Ctrl-C stops at once
log:
  format: text
`,
	}.Write()
}

func devBanner(grpcurl, dir, addr, emuURL string) string {
	tls := fmt.Sprintf("-cacert %s -cert %s -key %s",
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "caller.pem"), filepath.Join(dir, "caller-key.pem"))
	var b strings.Builder
	fmt.Fprintf(&b, "\nEmbedgate (dev mode) is serving on %s; the Entra ID + Power BI emulator on %s.\n", addr, emuURL)
	fmt.Fprintf(&b, "Config: %s  Policy (edit me, hot-reloaded): %s\n\n", filepath.Join(dir, "config.yaml"), filepath.Join(dir, "policy.yaml"))
	fmt.Fprintf(&b, "Mint an embed token for tenant acme (row-level security applied by policy):\n\n")
	fmt.Fprintf(&b, "  %s %s -d '{\"tenant\":\"acme\",\"user\":\"alice@acme.example\",\"report_ids\":[\"%s\"]}' %s embedgate.v1.EmbedTokenService/GenerateEmbedToken\n\n",
		grpcurl, tls, devSalesReport, addr)
	fmt.Fprintf(&b, "Mint one for a live connection to Azure Analysis Services (tenant acme-models; the username is Embedgate's service principal, the end user travels in customData):\n\n")
	fmt.Fprintf(&b, "  %s %s -d '{\"tenant\":\"acme-models\",\"user\":\"alice@acme.example\",\"report_ids\":[\"%s\"]}' %s embedgate.v1.EmbedTokenService/GenerateEmbedToken\n\n",
		grpcurl, tls, devAASReport, addr)
	fmt.Fprintf(&b, "Ask why (no token minted):\n\n")
	fmt.Fprintf(&b, "  %s %s -d '{\"embed_token\":{\"tenant\":\"acme\",\"user\":\"alice@acme.example\",\"report_ids\":[\"%s\"]}}' %s embedgate.v1.EmbedTokenService/ExplainEmbedToken\n\n",
		grpcurl, tls, devSalesReport, addr)
	fmt.Fprintf(&b, "List the services:  %s %s %s list\n\nCtrl-C to stop.\n", grpcurl, tls, addr)
	return b.String()
}
