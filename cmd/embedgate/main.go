// Command embedgate is Embedgate's single binary: the gRPC service that mints
// Power BI embed tokens (serve), its config checker (check), the local Entra
// ID + Power BI emulator (emulator) and its version.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the drain; a second one (an impatient
	// Ctrl-C) stops the process at once, as the default handling does.
	go func() { <-ctx.Done(); stop() }()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "embedgate:", err)
		os.Exit(1)
	}
}
