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
  check --config FILE     validate a config and its policy; list every problem,
        [--online]        say what it will use, and check it against Entra ID and Power BI
  explain --caller ID ... decide a request offline as the server would, for any caller
  test FILE               run a policy's tests (requests and expected decisions)
  token [flags]           a token for a quick test, from a report's URL: signed in as
                          yourself (--device-login) or as the service (--config FILE)
  emulator [flags]        run the Entra ID + Power BI emulator alone (see emulator/README.md)
  version                 print the version, commit, date and Go version

'embedgate <command> --help' describes a command and its flags.
`

// defaultGCPercent is serve's GOGC when the environment sets none.
const defaultGCPercent = 400

// What each command's --help says before its flags.
const (
	serveAbout = `usage: embedgate serve --config FILE
       embedgate serve --dev [--dev-dir DIR] [--dev-listen ADDR]

Run Embedgate: the gRPC service that mints Power BI embed tokens for the
callers and tenants of its policy. The config is validated completely first
(as 'embedgate check' does); the policy and the certificate and credential
files are re-read when they change. On SIGTERM or SIGINT it drains: NOT_SERVING
at once, still serving for shutdown_delay, then calls in flight get
shutdown_grace; a second signal stops it at once.

--dev runs the same server against an Entra ID + Power BI emulator started
in-process, with a dev CA, certificates, config and demo policy written to
--dev-dir (what 'make run' does).

flags:
`
	checkAbout = `usage: embedgate check --config FILE [--online]

Validate a config, every file it names and the policy, offline, and list
every problem with its key (exit status 1). When it is valid, say what serve
would use: the cloud, the Entra authority and Power BI endpoints, the
credential, values taken from the environment, the listeners, the policy's
version and size, the preflight, the audit stream, the drain and tracing.
--online also signs in to Entra ID and checks every tenant of the policy
against Power BI (workspaces, items, row-level security).

flags:
`
	versionAbout = `usage: embedgate version

Print the version, the commit and its date, the Go toolchain and the build
flavour (whether serve --dev and the emulator are in this binary).
`
)

// parseFlags parses a command's flags. --help (or -h) prints the command's
// description and flags to stdout and reports done with no error; a bad
// flag prints them to stderr.
func parseFlags(fs *flag.FlagSet, args []string, about string, stdout, stderr io.Writer) (done bool, err error) {
	fs.SetOutput(io.Discard)
	usage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprint(w, about)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return true, nil
	case err != nil:
		fmt.Fprintf(stderr, "embedgate %s: %v\n", fs.Name(), err)
		usage(stderr)
		return true, fmt.Errorf("%s: %w", fs.Name(), errUsage)
	case fs.NArg() > 0:
		return true, fmt.Errorf("%s: unexpected arguments %q: %w", fs.Name(), fs.Args(), errUsage)
	}
	return false, nil
}

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
	case "explain":
		return explain(ctx, args, stdout, stderr)
	case "test":
		return policyTest(ctx, args, stdout, stderr)
	case "token":
		return token(ctx, args, stdout, stderr)
	case "emulator":
		return runEmulator(ctx, args, stdout)
	case "version":
		fs := flag.NewFlagSet("version", flag.ContinueOnError)
		if done, err := parseFlags(fs, args, versionAbout, stdout, stderr); done {
			return err
		}
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
	configFile := fs.String("config", "", "the config file")
	dev := devFlags(fs)
	if done, err := parseFlags(fs, args, serveAbout, stdout, stderr); done {
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
	return server.Run(ctx, cfg, server.RunOptions{Logger: logger}) // logs the config's warnings
}

func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	configFile := fs.String("config", "", "the config file")
	online := fs.Bool("online", false, "also sign in and check, against Power BI, every workspace, item and RLS dataset of the policy")
	if done, err := parseFlags(fs, args, checkAbout, stdout, stderr); done {
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
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	summary, err := cfg.Summary()
	fmt.Fprint(stdout, summary)
	if err != nil {
		return err
	}
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

// wantsHelp reports whether args ask for help, as the flag package reads it.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "--h":
			return true
		case "--":
			return false
		}
	}
	return false
}
