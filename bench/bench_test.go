package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/generated"
	"github.com/dvgate/dvgate/odataq"
	"github.com/dvgate/dvgate/testdata"
)

// Benchmarks elsewhere that BENCHMARKS.md reports (make bench runs them):
// csdl BenchmarkRead (real and synthetic 40 MB, encoding/xml baseline),
// codegen BenchmarkDvgen, gateway BenchmarkCustomerHit/BenchmarkOrderHit
// (in-process cache hit, ristretto baseline), dataverse BenchmarkWhoAmI.

// hotOrder is the demo seed's first order (ORD-01001-B2K9P7, 3 lines), the
// one dvgate --demo suggests; its answer is 1,013 bytes.
const hotOrder = "ORD-01001-B2K9P7"

// BenchmarkFilter builds the customer-by-email query with the generated
// typed columns (odataq) against the obvious fmt.Sprintf + url escaping.
func BenchmarkFilter(b *testing.B) {
	const email = "o'brien+tickets@example.com"
	c := generated.ContactColumns
	b.Run("odataq", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			q := odataq.Query[generated.Contact]{}.
				Select(c.ContactID, c.FullName, c.EMailAddress1, c.EMailAddress2, c.EMailAddress3, c.Telephone1, c.MobilePhone).
				Filter(odataq.Or(c.EMailAddress1.Eq(email), c.EMailAddress2.Eq(email), c.EMailAddress3.Eq(email))).
				OrderBy(c.StateCode.Asc(), c.ModifiedOn.Desc()).Top(5)
			if q.Encode() == "" {
				b.Fatal("empty query")
			}
		}
	})
	b.Run("sprintf-baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			lit := url.PathEscape("'" + strings.ReplaceAll(email, "'", "''") + "'")
			s := "$select=contactid,fullname,emailaddress1,emailaddress2,emailaddress3,telephone1,mobilephone&$filter=" +
				url.PathEscape(fmt.Sprintf("emailaddress1 eq %s or emailaddress2 eq %s or emailaddress3 eq %s", lit, lit, lit)) +
				"&$orderby=statecode%20asc,modifiedon%20desc&$top=5"
			if s == "" {
				b.Fatal("empty query")
			}
		}
	})
}

// coldLatency is the injected Dataverse round trip of the cold benchmarks.
const coldLatency = 20 * time.Millisecond

// BenchmarkColdLookup is a lookup that misses the cache against the
// simulator with a 20 ms round trip injected on every Web API request. The
// gateway gets a new cache every iteration (its connection, and so its
// token, is kept, as in a running sidecar). x-rtt is the time per lookup in
// injected round trips; upstream/op counts Web API requests. The naive
// baseline reads the same order the obvious way: the order, its lines,
// then each product.
func BenchmarkColdLookup(b *testing.B) {
	st, err := StartStack(b.Context(), StackConfig{Latency: coldLatency})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	conn, err := st.NewConn()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Token(b.Context()); err != nil {
		b.Fatal(err)
	}
	seed, err := ParseSeed(testdata.DemoSeed())
	if err != nil {
		b.Fatal(err)
	}
	// A typical order: 4 lines naming catalogue products (the seed's mean
	// is 3.9), so the naive client makes 1 + 1 + 4 requests.
	var order, contactEmail, accountEmail string
	for _, o := range seed.Orders {
		if order == "" && o.Lines == 4 && o.Products == 4 {
			order = o.Number
		}
		if o.Account && accountEmail == "" {
			accountEmail = o.Email
		} else if !o.Account && contactEmail == "" {
			contactEmail = o.Email
		}
	}
	if order == "" || contactEmail == "" || accountEmail == "" {
		b.Fatal("the seed lacks a 4-line order, a contact's order or an account-only email")
	}
	gw := func(b *testing.B, f func(ctx context.Context, g *gateway.Gateway) error) {
		runCold(b, st, func(ctx context.Context) error {
			b.StopTimer()
			cache, err := gateway.NewCache(gateway.CacheConfig{MaxBytes: 1 << 20})
			if err != nil {
				return err
			}
			defer cache.Close()
			g, err := gateway.New(gateway.Config{Conn: conn, Cache: cache, Budget: gateway.Budget{Rate: -1}})
			if err != nil {
				return err
			}
			defer g.Close()
			b.StartTimer()
			return f(ctx, g)
		})
	}
	b.Run("order/gateway", func(b *testing.B) {
		gw(b, func(ctx context.Context, g *gateway.Gateway) error {
			o, _, err := g.Order(ctx, order)
			if err == nil && len(o.Lines) != 4 {
				err = fmt.Errorf("order %s has %d lines, want 4", order, len(o.Lines))
			}
			return err
		})
	})
	b.Run("order/naive-baseline", func(b *testing.B) {
		n := &Naive{Conn: conn}
		runCold(b, st, func(ctx context.Context) error {
			found, err := n.Order(ctx, order)
			if err == nil && !found {
				err = fmt.Errorf("order %s not found", order)
			}
			return err
		})
	})
	b.Run("customer-contact/gateway", func(b *testing.B) {
		gw(b, func(ctx context.Context, g *gateway.Gateway) error {
			_, _, err := g.Customer(ctx, contactEmail)
			return err
		})
	})
	b.Run("customer-account-fallback/gateway", func(b *testing.B) {
		gw(b, func(ctx context.Context, g *gateway.Gateway) error {
			_, _, err := g.Customer(ctx, accountEmail)
			return err
		})
	})
	b.Run("customer-account-fallback/naive-baseline", func(b *testing.B) {
		n := &Naive{Conn: conn}
		runCold(b, st, func(ctx context.Context) error {
			found, err := n.Customer(ctx, accountEmail)
			if err == nil && !found {
				err = fmt.Errorf("%s not found", accountEmail)
			}
			return err
		})
	})
}

// runCold times f per iteration and reports x-rtt and upstream/op.
func runCold(b *testing.B, st *Stack, f func(ctx context.Context) error) {
	ctx := b.Context()
	before := st.Sim.WebAPIRequests()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	perOp := float64(b.Elapsed()) / float64(b.N)
	b.ReportMetric(perOp/float64(coldLatency), "x-rtt")
	b.ReportMetric(float64(st.Sim.WebAPIRequests()-before)/float64(b.N), "upstream/op")
}

// BenchmarkSidecarHit is a cached lookup over HTTP through the whole
// sidecar (routing, middleware, logging to io.Discard, JSON) with 50
// concurrent clients, against baseline (a): a plain net/http handler
// writing the same order answer's bytes, with the same client.
func BenchmarkSidecarHit(b *testing.B) {
	st, err := StartStack(b.Context(), StackConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	client := NewHTTPClient(64)
	defer client.CloseIdleConnections()
	orderURL := st.URL + "/v1/orders/" + hotOrder
	body := warmHit(b, client, orderURL)
	warmHit(b, client, st.URL+"/v1/customers?email=alex.wu%40example.com")
	fixed, stop, err := StartFixed(body)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	for _, bc := range []struct{ name, url string }{
		{"order", orderURL},
		{"customer", st.URL + "/v1/customers?email=alex.wu%40example.com"},
		{"fixed-body-baseline", fixed + "/fixed"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(max(1, 50/max(1, testingProcs())))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(bc.url)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatal(resp.Status)
					}
				}
			})
		})
	}
}

// warmHit requests u until the sidecar answers it from the cache.
func warmHit(b *testing.B, c *http.Client, u string) []byte {
	for range 50 {
		resp, err := c.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s", u, resp.Status)
		}
		if resp.Header.Get("X-Cache") == "hit" {
			return body
		}
		time.Sleep(10 * time.Millisecond) // ristretto applies Sets asynchronously
	}
	b.Fatalf("GET %s never hit the cache", u)
	return nil
}

// BenchmarkNaiveConnOverhead is the cost of one naive request without
// injected latency, to separate the simulator's own time from the RTT.
func BenchmarkNaiveConnOverhead(b *testing.B) {
	st, err := StartStack(b.Context(), StackConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	conn, err := st.NewConn()
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Get(b.Context(), "WhoAmI"); err != nil {
			b.Fatal(err)
		}
	}
}
