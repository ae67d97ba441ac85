package dataverse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// TestSecretsNeverLeak drives successes and every kind of failure with
// distinctive secrets, then scans all error strings and the debug log.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const (
		goodSecret = "LEAK~canary.Good_Secret-7f3e9"
		badSecret  = "LEAK~canary.Wrong_Secret-91aa"
	)
	e := newEnv(t, dataversetest.Options{ClientSecret: goodSecret}, func(c *Config) { c.ClientSecret = goodSecret })
	ctx := t.Context()
	var errs []error
	record := func(_ any, err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	record(e.conn.WhoAmI(ctx))
	tok, err := e.conn.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []dataversetest.Fault{
		{Status: 503, Count: 2}, {Status: 429, RetryAfter: 2 * time.Second, Count: 1}, {Status: 500, Count: 1},
		{Status: 400, Count: 1}, {Reset: true, Count: 1}, {Malformed: true, Count: 1},
	} {
		e.sim.InjectFault(f)
		record(e.conn.WhoAmI(ctx))
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	e.sim.InjectFault(dataversetest.Fault{Status: 429, RetryAfter: time.Minute, Count: 1})
	record(e.conn.WhoAmI(short))
	record(e.conn.WhoAmI(short)) // held back by the gate
	cancel()
	e.clock.Advance(2 * time.Minute)
	e.sim.SetApplicationUser(false)
	record(e.conn.WhoAmI(ctx))
	e.clock.Advance(3 * time.Hour) // the token expires on the simulator: 401
	record(e.conn.WhoAmI(ctx))

	// A second Conn with the wrong secret, logging to the same buffer.
	bad := newEnv(t, dataversetest.Options{ClientSecret: goodSecret}, func(c *Config) { c.ClientSecret = badSecret })
	record(bad.conn.WhoAmI(ctx))
	record(bad.conn.Token(ctx))

	if len(errs) < 8 {
		t.Fatalf("only %d errors were produced; the scenario is broken", len(errs))
	}
	var all strings.Builder
	for _, err := range errs {
		fmt.Fprintf(&all, "%v\n%+v\n%#v\n", err, err, err)
		if de := (*Error)(nil); asError(err, &de) && de.Err != nil {
			fmt.Fprintf(&all, "%v\n", de.Err)
		}
	}
	all.WriteString(e.logs.String())
	all.WriteString(bad.logs.String())
	out := all.String()
	for name, secret := range map[string]string{"good secret": goodSecret, "wrong secret": badSecret, "access token": tok, "token signature": tok[strings.LastIndexByte(tok, '.')+1:]} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s appears in errors or logs", name)
		}
	}
	if !strings.Contains(out, "dataverse throttled") || !strings.Contains(out, "AADSTS7000215") {
		t.Errorf("the log and errors lack the expected events:\n%s", out)
	}
}
