package gateway

import (
	"context"
	"errors"
	"testing"
)

// BenchmarkCustomerHit is a cached customer lookup (hit-path input check,
// key, cache get, clock read; no copy); BenchmarkRistrettoGet is the bare
// cache read it builds on. Target: under 1 µs and at most 2 allocations.
func BenchmarkCustomerHit(b *testing.B) {
	up := newFake()
	up.reply("contacts", contactsAlex)
	g, err := New(Config{Conn: up, Logger: discardLogger, Budget: Budget{Rate: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if _, _, err := g.Customer(ctx, "alex.wu@example.com"); err != nil {
		b.Fatal(err)
	}
	g.cache.rc.Wait()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, m, err := g.Customer(ctx, "alex.wu@example.com"); err != nil || m.Outcome != Hit {
				b.Fatal(m, err)
			}
		}
	})
}

func BenchmarkRistrettoGet(b *testing.B) {
	c, err := NewCache(CacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.set("k", &entry{value: "v", fresh: 1 << 40})
	c.rc.Wait()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.rc.Get("k"); !ok {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkOrderHit is a cached order lookup by number, as people type it
// (upper case): same path and target as BenchmarkCustomerHit.
func BenchmarkOrderHit(b *testing.B) {
	up := newFake()
	up.reply("salesorders", `{"value":[`+orderJSON+`]}`)
	g, err := New(Config{Conn: up, Logger: discardLogger, Budget: Budget{Rate: -1}})
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if _, _, err := g.Order(ctx, "ORD-01001-B2K9P7"); err != nil {
		b.Fatal(err)
	}
	g.cache.rc.Wait()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, m, err := g.Order(ctx, "ORD-01001-B2K9P7"); err != nil || m.Outcome != Hit {
				b.Fatal(m, err)
			}
		}
	})
}

// The hit path looks up plain ASCII input before validating it: a hit
// needs the normalized form of a validated address, anything else still
// fails validation, and answers are shared, not copied.
func TestHitPathBeforeValidation(t *testing.T) {
	t.Parallel()
	up := newFake()
	up.reply("contacts", contactsAlex)
	g, _ := newTestGateway(t, up, Config{})
	ctx := context.Background()
	first, _, err := g.Customer(ctx, "alex.wu@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"ALEX.WU@EXAMPLE.COM", "  Alex.Wu@example.com\t"} {
		c, m, err := g.Customer(ctx, in)
		if err != nil || m.Outcome != Hit || c != first {
			t.Errorf("Customer(%q) = %p, %v, %v; want the cached answer %p", in, c, m.Outcome, err, first)
		}
	}
	for _, in := range []string{"alex.wu@example.com (x)", "Alex <alex.wu@example.com>", "alex.wu@example.com\x00", "alex.wu@"} {
		var ie *InputError
		if _, _, err := g.Customer(ctx, in); !errors.As(err, &ie) {
			t.Errorf("Customer(%q): err = %v, want *InputError", in, err)
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
