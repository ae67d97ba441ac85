// Command dvgate is the lookup gateway between a help-desk product and
// Microsoft Dataverse: an HTTP sidecar (dvgate serve), a demo against the
// in-process simulator (dvgate --demo), a connection test (dvgate test) and
// one-shot lookups (dvgate lookup customer EMAIL, dvgate lookup order REF,
// dvgate lookup summary EMAIL, ...).
//
// Configuration comes from the environment (DATAVERSE_URL, AZURE_TENANT_ID,
// AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH or
// AZURE_FEDERATED_TOKEN_FILE, DVGATE_CUSTOMER_LOOKUP, DVGATE_TRACKING_COLUMN)
// or from a JSON file (--config) of named integrations whose secrets are
// references to environment variables or files. SIGHUP, or a change of the
// config file or a secret file, reloads it: changed credentials are checked
// with WhoAmI before they replace the old ones.
//
// Everything dvgate writes to stderr is log lines in one format, JSON by
// default or text with --log-format=text; an error that stops dvgate is the
// last of them. Only a command line that does not parse is answered with
// plain usage text, since there is no log yet.
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
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // a reload is already pending
			}
		}
	}()

	m := NewMain()
	m.Reload = reload
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "dvgate:", err)
		os.Exit(exitUsage)
	}
	if err := m.Run(ctx); err != nil {
		var ee exitError
		if !errors.As(err, &ee) {
			m.Fatal(err)
			ee = exitError{code: exitFailed}
		}
		m.Close()
		os.Exit(ee.status())
	}
	if m.Serving() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}
	if err := m.Close(); err != nil {
		m.Fatal(err)
		os.Exit(exitFailed)
	}
}
