package dataverse

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// TestTokenRejected: Dataverse refuses a token MSAL still holds as valid
// (here Dataverse's clock jumps two hours past the token's expiry; in
// production a clock skew or a revocation). Without a fresh sign-in MSAL
// would return the same token for up to an hour and every request would
// fail; instead the first 401 gets a new token (bypassing MSAL's cache) and
// the request is repeated once. Concurrent callers share that sign-in.
func TestTokenRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	old, err := e.conn.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	tokens := e.sim.TokenRequests()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := e.conn.WhoAmI(t.Context()); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("WhoAmI after the token was rejected: %v", err)
	}
	if n := e.sim.TokenRequests() - tokens; n != 1 {
		t.Errorf("%d sign-ins for 8 concurrent rejected callers, want 1", n)
	}
	now, _ := e.conn.Token(t.Context())
	if now == old {
		t.Error("MSAL still hands out the rejected token")
	}
	if !strings.Contains(e.logs.String(), "signed in again") {
		t.Errorf("the re-sign-in is not logged:\n%s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), old) || strings.Contains(e.logs.String(), now) {
		t.Error("a token appears in the log")
	}
}

// TestTokenAlwaysRejected: when Dataverse refuses every token, a request
// costs at most one extra sign-in, and no more than one per forceInterval
// in total, so a broken org cannot make us hammer Entra.
func TestTokenAlwaysRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	if _, err := e.conn.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.sim.InjectFault(dataversetest.Fault{Path: "/api/data/v9.2/WhoAmI", Status: 401})
	tokens := e.sim.TokenRequests()
	for range 5 {
		if _, err := e.conn.WhoAmI(t.Context()); KindOf(err) != KindAuth {
			t.Fatalf("WhoAmI = %v, want an auth error", err)
		}
	}
	if n := e.sim.TokenRequests() - tokens; n != 1 {
		t.Errorf("%d sign-ins for 5 rejected calls, want 1", n)
	}
	// Only the first call is repeated; the others would present the same
	// refused token again.
	if n := e.sim.WebAPIRequests(); n != 6 {
		t.Errorf("%d Web API requests for 5 calls, want 6", n)
	}
}
