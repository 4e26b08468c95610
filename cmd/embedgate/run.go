package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/embedgate/embedgate/internal/buildinfo"
	"github.com/embedgate/embedgate/internal/logwriter"
	"github.com/embedgate/embedgate/server"
)

const usage = `usage: embedgate <command> [flags]

commands:
  serve --config FILE     run the service
  serve --dev             run the service with an embedded emulator (what 'make run' does)
  check --config FILE     validate a config and its policy; list every problem
        [--online]        and check them against Entra ID and Power BI
  emulator [flags]        run the Entra ID + Power BI emulator alone (see emulator/README.md)
  version                 print the version, commit, date and Go version
`

// defaultGCPercent is serve's GOGC when the environment sets none.
const defaultGCPercent = 400

// errUsage marks a command line that could not be understood.
var errUsage = errors.New("see 'embedgate help'")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage+devUsageNote)
		return errUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, stderr)
	case "check":
		return check(ctx, args, stdout, stderr)
	case "emulator":
		return runEmulator(ctx, args, stdout)
	case "version":
		printVersion(stdout)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage+devUsageNote)
		return nil
	default:
		fmt.Fprint(stderr, usage+devUsageNote)
		return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
	}
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "the config file")
	dev := devFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if dev.enabled {
		if *configFile != "" {
			return fmt.Errorf("serve: --dev and --config exclude each other: %w", errUsage)
		}
		return serveDev(ctx, dev, stdout, stderr)
	}
	if *configFile == "" {
		return fmt.Errorf("serve: --config FILE is required (or --dev): %w", errUsage)
	}
	cfg, err := server.LoadConfig(*configFile)
	if err != nil {
		return err
	}
	// The heap is small and short-lived per call: collect less often than
	// Go's default unless the operator says otherwise (GOGC; GOMEMLIMIT stays
	// the ceiling).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	// Records are written in batches; whatever is buffered goes out when Run
	// returns, after the last call has drained.
	out := logwriter.New(stderr)
	defer out.Close()
	logger, err := server.NewLogger(out, cfg.Log)
	if err != nil {
		return err
	}
	return server.Run(ctx, cfg, server.RunOptions{Logger: logger})
}

func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "the config file")
	online := fs.Bool("online", false, "also sign in and check, against Power BI, every workspace, item and RLS dataset of the policy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *configFile == "" {
		return fmt.Errorf("check: --config FILE is required: %w", errUsage)
	}
	cfg, err := server.LoadConfig(*configFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK\n", *configFile)
	if !*online {
		return nil
	}
	findings, err := server.CheckOnline(ctx, cfg)
	if err != nil {
		return err
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) > 0 {
		return fmt.Errorf("check --online: %d problem(s) found", len(findings))
	}
	fmt.Fprintln(stdout, "online: every tenant of the policy can be served")
	return nil
}

// printVersion prints what `embedgate version` promises: the version on
// the first line, then the commit, its date, the Go toolchain and the build
// flavour (whether the dev commands are in this binary).
func printVersion(w io.Writer) {
	bi := buildinfo.Get()
	fmt.Fprintf(w, "embedgate %s\ncommit: %s\ndate:   %s\ngo:     %s %s\nbuild:  %s\n",
		bi.Version, bi.Commit, bi.Date, bi.GoVersion, bi.Platform, buildFlavour)
}
