//go:build production

package main

// The production build (go build -tags production, what the image and the
// release binaries are) leaves out dev mode and the emulator, and with them
// the emulator's demo credentials and fixtures: `go list -deps -tags
// production ./cmd/embedgate` does not list the emulator package.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// buildFlavour is printed by `embedgate version`.
const buildFlavour = "production (serve --dev and emulator left out)"

// devUsageNote completes the usage text.
const devUsageNote = `
This is a production build: 'serve --dev' and 'emulator' are not available
(build without -tags production to get them).
`

// errNotInProduction is returned by the commands the production build
// leaves out.
var errNotInProduction = errors.New("not available in this production build (built with -tags production)")

func runEmulator(_ context.Context, args []string, stdout io.Writer) error {
	if wantsHelp(args) {
		fmt.Fprintln(stdout, "usage: embedgate emulator [flags]\n\nThe Entra ID + Power BI emulator is not in this production build (built with -tags production).")
		return nil
	}
	return fmt.Errorf("emulator: %w", errNotInProduction)
}

// devOptions keeps the --dev flag, so that `serve --dev` is answered with
// the reason rather than "flag provided but not defined".
type devOptions struct {
	enabled bool
}

func devFlags(fs *flag.FlagSet) *devOptions {
	o := &devOptions{}
	fs.BoolVar(&o.enabled, "dev", false, "dev mode (not available in this production build)")
	return o
}

func serveDev(context.Context, *devOptions, io.Writer, io.Writer) error {
	return fmt.Errorf("serve --dev: %w", errNotInProduction)
}
