package emulator

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"
)

// Defaults of the `embedgate emulator` subcommand.
const (
	DefaultCommandAddr = "127.0.0.1:8444"
	DefaultCertsDir    = ".dev/emulator"
)

// RunCommand is the `embedgate emulator` subcommand: it parses args
// (without the subcommand name), starts the emulator, prints its URL, the
// CA path and a curl example to stdout, and serves until ctx is done.
func RunCommand(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		addr     = fs.String("addr", DefaultCommandAddr, "listen address")
		fixture  = fs.String("fixture", "", "fixture file (YAML or JSON); empty = built-in demo fixture")
		certs    = fs.String("certs", DefaultCertsDir, "directory of ca.pem/ca-key.pem (reused, or generated there)")
		verbose  = fs.Bool("v", false, "log one line per request to stdout")
		cloud    = fs.String("cloud", CloudPublic, "the Power BI cloud played: public, usgov, usgovhigh, usgovdod or china")
		f        Faults
		lifetime time.Duration
	)
	fs.DurationVar(&f.EntraLatency, "entra-latency", 0, "added latency on Entra routes")
	fs.DurationVar(&f.PowerBILatency, "powerbi-latency", 0, "added latency on Power BI routes")
	fs.IntVar(&f.ThrottleEvery, "throttle-every", 0, "answer every Nth Power BI call with 429")
	fs.Float64Var(&f.ThrottleRate, "throttle-rate", 0, "answer this share (0..1) of Power BI calls with 429")
	fs.IntVar(&f.RetryAfterSeconds, "retry-after", 0, "Retry-After seconds on 429 (0 = 1)")
	fs.IntVar(&f.ServerErrorEvery, "server-error-every", 0, "answer every Nth Power BI call with a 5xx")
	fs.Float64Var(&f.ServerErrorRate, "server-error-rate", 0, "answer this share of Power BI calls with a 5xx")
	fs.IntVar(&f.EntraServerErrorEvery, "entra-error-every", 0, "answer every Nth Entra token call with a 5xx")
	fs.Float64Var(&f.EntraServerErrorRate, "entra-error-rate", 0, "answer this share of Entra token calls with a 5xx")
	fs.IntVar(&f.ServerErrorStatus, "server-error-status", 0, "status of injected 5xx (0 = 503)")
	fs.IntVar(&f.DropEvery, "drop-every", 0, "drop the connection on every Nth Power BI call")
	fs.Float64Var(&f.DropRate, "drop-rate", 0, "drop this share of Power BI calls")
	fs.IntVar(&f.EntraDropEvery, "entra-drop-every", 0, "drop every Nth Entra token call")
	fs.DurationVar(&lifetime, "token-lifetime", 0, "Entra access-token lifetime (0 = 3599s)")
	fs.BoolVar(&f.RandomTokenLifetime, "random-token-lifetime", false, "Entra access tokens live a random 60-90 minutes, as Entra's do")
	fs.BoolVar(&f.TrialExhausted, "trial-exhausted", false, "embed-token calls fail: trial quota used up")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("emulator: unexpected arguments %v", fs.Args())
	}
	f.TokenLifetime = lifetime

	cfg := Config{Addr: *addr, CertsDir: *certs, Faults: f, Cloud: *cloud}
	if *fixture != "" {
		fx, err := LoadFixture(*fixture)
		if err != nil {
			return err
		}
		cfg.Fixture = fx
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stdout, nil))
	}
	srv, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	caPath := "(in memory: GET " + srv.URL() + "/_emulator/ca.pem)"
	if *certs != "" {
		caPath = filepath.Join(*certs, caCertFile)
	}
	fmt.Fprintf(stdout, `Embedgate emulator (Entra ID + Power BI REST) listening on %[1]s
CA certificate: %[2]s
Entra authority host and Power BI API URL: %[1]s

Try it (demo fixture):
  TOKEN=$(curl -s --cacert %[2]s %[1]s/c0ffee00-0000-4000-8000-000000000001/oauth2/v2.0/token \
    -d grant_type=client_credentials -d client_id=c0ffee00-0000-4000-8000-0000000000a1 \
    -d client_secret=embedgate-dev-secret \
    --data-urlencode scope=https://analysis.windows.net/powerbi/api/.default | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -s --cacert %[2]s %[1]s/v1.0/myorg/GenerateToken -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    -d '{"reports":[{"id":"a1000000-0000-4000-8000-000000000002"}],"datasets":[{"id":"d1000000-0000-4000-8000-000000000002"}]}'
Admin: %[1]s/_emulator/counters, /_emulator/faults, /_emulator/tokens/{tokenId}
`, srv.URL(), caPath)
	<-ctx.Done()
	return srv.Close()
}
