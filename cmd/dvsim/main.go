// Command dvsim is the Dataverse simulator as a standalone program, in the
// spirit of Azurite: it serves the Dataverse Web API v9.2 and the Microsoft
// Entra ID token endpoint of package dataversetest over TLS on one port,
// with the demo org by default, for clients in any language.
//
//	dvsim --listen 127.0.0.1:8443 [--metadata FILE] [--entity-definitions FILE]
//	      [--seed FILE] [--ca-out ca.pem] [--env-out FILE] [--page-size N]
//
// It prints the DATAVERSE_URL and AZURE_* values a client needs (and writes
// them to --env-out), plus a ready access token. State switches and fault
// injection are a JSON API under /_dvsim/ on the same port (see
// dataversetest/admin.go and dataversetest/SUPPORT.md). Data is in memory:
// writes are lost when it stops.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "dvsim:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "dvsim:", err)
		m.Close()
		os.Exit(1)
	}
	<-ctx.Done()
	stop()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "dvsim:", err)
		os.Exit(1)
	}
}
