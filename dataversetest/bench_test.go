package dataversetest

import (
	"io"
	"net/http"
	"testing"

	"github.com/dvgate/dvgate/dataversetest/internal/seedgen"
)

// BenchmarkSimpleGET retrieves one order by key over HTTPS with a reused
// client and token; BenchmarkWhoAmI is the baseline (no data access).
func BenchmarkSimpleGET(b *testing.B) {
	benchGET(b, "salesorders("+seedgen.ID("salesorder", seedgen.AlexOrderNumber)+")?$select=ordernumber,totalamount,statuscode")
}

func BenchmarkEmailFilter(b *testing.B) {
	benchGET(b, "contacts?$select=fullname&$filter=emailaddress1%20eq%20'alex.wu@example.com'%20or%20emailaddress2%20eq%20'alex.wu@example.com'%20or%20emailaddress3%20eq%20'alex.wu@example.com'")
}

func BenchmarkWhoAmI(b *testing.B) { benchGET(b, "WhoAmI") }

func benchGET(b *testing.B, path string) {
	s := newTestServer(b, Options{Limits: NoLimits})
	tok := secretToken(b, s)
	c := s.Client()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/api/data/v9.2/"+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	s.ResetCounters()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkNewServer measures starting (and closing) a simulator: the demo
// data (the default), and the default schema without rows as the baseline.
// Both share a dataset built once per process; the first NewServer, outside
// the timed loop, builds it.
func BenchmarkNewServer(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"demo", Options{}},
		{"empty-seed", Options{Seed: EmptySeed}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			warm, err := NewServer(bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			warm.Close()
			b.ReportAllocs()
			for b.Loop() {
				s, err := NewServer(bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
