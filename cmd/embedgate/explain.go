package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/powerbi"
	"github.com/embedgate/embedgate/server"
)

const explainAbout = `usage: embedgate explain (--config FILE | --policy FILE) --caller SPIFFE_ID
                        --tenant KEY --user USER (--report-id ID ... | --dashboard-id ID [--tile-id ID])
                        [--allow-edit] [--allow-create] [--lifetime D] [--online]

Decide a request as the server would for the caller named, and print the
answer ExplainEmbedToken gives (as JSON, as grpcurl prints it): allowed or
denied, the reason and the policy rule, the lifetime, the row-level security
identity. Offline by default: the policy alone decides, and Power BI is not
asked. --online (with --config) also asks Power BI about the items with the
config's service principal, and shows each model's kind and the exact
GenerateToken request; nothing is minted. A request the API would refuse as
invalid, or a caller the policy does not list, prints the error the RPC would
return (INVALID_ARGUMENT, PERMISSION_DENIED), with exit status 1.

flags:
`

// repeated is a flag that may be given several times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// explainFlags are the request flags explain and test share.
type explainFlags struct {
	configFile, policyFile, caller string
	tenant, user, dashboard, tile  string
	reports                        repeated
	allowEdit, allowCreate, online bool
	lifetime                       time.Duration
}

func explain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	var f explainFlags
	fs.StringVar(&f.configFile, "config", "", "a server config: its policy_file (and, with --online, its powerbi block)")
	fs.StringVar(&f.policyFile, "policy", "", "a policy file, instead of a config (offline only)")
	fs.StringVar(&f.caller, "caller", "", "the caller's SPIFFE ID, as its client certificate would carry it")
	fs.StringVar(&f.tenant, "tenant", "", "the tenant key")
	fs.StringVar(&f.user, "user", "", "the end user")
	fs.Var(&f.reports, "report-id", "a report id (repeatable)")
	fs.StringVar(&f.dashboard, "dashboard-id", "", "a dashboard id (instead of reports)")
	fs.StringVar(&f.tile, "tile-id", "", "a tile of --dashboard-id")
	fs.BoolVar(&f.allowEdit, "allow-edit", false, "ask for an edit token")
	fs.BoolVar(&f.allowCreate, "allow-create", false, "ask for a token that may create reports")
	fs.DurationVar(&f.lifetime, "lifetime", 0, "the token lifetime asked (0: the tenant's default)")
	fs.BoolVar(&f.online, "online", false, "also ask Power BI, with the config's service principal")
	if done, err := parseFlags(fs, args, explainAbout, stdout, stderr); done {
		return err
	}
	var missing []string
	switch {
	case (f.configFile == "") == (f.policyFile == ""):
		missing = append(missing, "exactly one of --config or --policy")
	case f.online && f.configFile == "":
		missing = append(missing, "--config for --online")
	}
	if f.caller == "" {
		missing = append(missing, "--caller")
	}
	if len(missing) > 0 {
		return fmt.Errorf("explain: needs %s: %w", strings.Join(missing, ", "), errUsage)
	}
	policy, gw, err := loadForExplain(f.configFile, f.policyFile, f.online)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	if gw != nil {
		defer gw.Close()
	}
	resp, err := explainOne(ctx, policy, gw, f.caller, f.request())
	if _, isStatus := status.FromError(err); err != nil && isStatus {
		printStatus(stdout, err)
		return fmt.Errorf("explain: %s", status.Code(err))
	} else if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	// protojson varies its spacing on purpose; json.Indent gives the
	// stable form grpcurl prints.
	raw, err := protojson.Marshal(resp)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return err
	}
	fmt.Fprintln(stdout, out.String())
	return nil
}

// request is the API request the flags describe.
func (f explainFlags) request() *embedgatev1.ExplainEmbedTokenRequest {
	var lifetime *durationpb.Duration
	if f.lifetime != 0 {
		lifetime = durationpb.New(f.lifetime)
	}
	if f.dashboard != "" || f.tile != "" {
		return &embedgatev1.ExplainEmbedTokenRequest{Request: &embedgatev1.ExplainEmbedTokenRequest_DashboardEmbedToken{
			DashboardEmbedToken: &embedgatev1.GenerateDashboardEmbedTokenRequest{Tenant: f.tenant, User: f.user,
				DashboardId: f.dashboard, TileId: f.tile, Lifetime: lifetime}}}
	}
	return &embedgatev1.ExplainEmbedTokenRequest{Request: &embedgatev1.ExplainEmbedTokenRequest_EmbedToken{
		EmbedToken: &embedgatev1.GenerateEmbedTokenRequest{Tenant: f.tenant, User: f.user, ReportIds: f.reports,
			AllowEdit: f.allowEdit, AllowCreate: f.allowCreate, Lifetime: lifetime}}}
}

// loadForExplain reads the policy (from a config or on its own) and, for
// --online, builds the config's gateway.
func loadForExplain(configFile, policyFile string, online bool) (*authz.Policy, *powerbi.Client, error) {
	if policyFile != "" {
		p, err := authz.Load(policyFile)
		return p, nil, err
	}
	cfg, err := server.LoadConfig(configFile)
	if err != nil {
		return nil, nil, err
	}
	p, err := authz.Load(cfg.PolicyFile)
	if err != nil || !online {
		return p, nil, err
	}
	gw, err := powerbi.New(cfg.PowerBI, powerbi.WithLogger(slog.New(slog.DiscardHandler)))
	return p, gw, err
}

// explainOne validates req as the server does and explains it; a request
// the server would refuse as invalid returns that status as the error. A
// caller the policy does not list gets the real call's denial.
func explainOne(ctx context.Context, policy *authz.Policy, gw *powerbi.Client, caller string, req *embedgatev1.ExplainEmbedTokenRequest) (*embedgatev1.ExplainEmbedTokenResponse, error) {
	if err := server.ValidateRequest(req); err != nil {
		return nil, err
	}
	var g server.Gateway
	if gw != nil {
		g = gw
	}
	return server.Explain(ctx, policy, g, caller, req)
}

// printStatus prints a gRPC status as grpcurl does.
func printStatus(w io.Writer, err error) {
	st := status.Convert(err)
	fmt.Fprintf(w, "ERROR:\n  Code: %s\n  Message: %s\n", st.Code(), st.Message())
}
