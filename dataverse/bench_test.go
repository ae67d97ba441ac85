package dataverse

import (
	"io"
	"net/http"
	"testing"

	"github.com/dvgate/dvgate/dataversetest"
)

// BenchmarkWhoAmI measures the Conn's per-request overhead (headers, gate,
// semaphore, MSAL cache lookup, buffering, error classification) against a
// bare http.Client sending the same request with a fixed token.
func BenchmarkWhoAmI(b *testing.B) {
	sim := newSim(b, dataversetest.Options{Limits: dataversetest.NoLimits})
	c, err := New(simConfig(sim))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	tok, err := c.Token(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("baseline-http-client", func(b *testing.B) {
		hc := sim.Client()
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, c.BaseURL()+"WhoAmI", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Accept", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("conn", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(b.Context(), "WhoAmI"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
