// Command chartcheck validates the manifests `helm template` renders from
// Embedgate's chart, offline, and extracts the config and policy they carry
// so that `embedgate check` can judge them.
//
// Validation is strict decoding into the Kubernetes API's own Go types
// (k8s.io/api, and the cert-manager and Prometheus Operator types for their
// resources): an unknown or misspelt field, a wrong type, a malformed
// quantity or duration fails, as `kubectl apply --validate=strict` would.
// Then the checks that tie the objects together: selectors that select the
// pods, ports and volumes that exist, the hardened security context, a
// termination grace period that covers the drain.
//
//	chartcheck validate FILE...
//	chartcheck extract -out DIR FILE
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chartcheck:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: chartcheck validate FILE... | chartcheck extract -out DIR FILE")
	}
	switch args[0] {
	case "validate":
		if len(args) < 2 {
			return errors.New("validate: name the rendered manifest files")
		}
		failed := false
		for _, file := range args[1:] {
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			objs, problems := validate(data)
			for _, p := range problems {
				fmt.Fprintf(stdout, "%s: %s\n", file, p)
			}
			if len(problems) > 0 {
				failed = true
				continue
			}
			fmt.Fprintf(stdout, "%s: %d objects valid\n", file, len(objs))
		}
		if failed {
			return errors.New("invalid manifests")
		}
		return nil
	case "extract":
		fs := flag.NewFlagSet("extract", flag.ContinueOnError)
		out := fs.String("out", "", "the folder that stands for the pod's root filesystem")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" || fs.NArg() != 1 {
			return errors.New("usage: chartcheck extract -out DIR FILE")
		}
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		config, err := extract(data, *out)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, config)
		return nil
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}
