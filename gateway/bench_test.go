package gateway

import (
	"context"
	"testing"
)

// BenchmarkCustomerHit is a cached customer lookup (validation, key, cache
// get, clone); BenchmarkRistrettoGet is the bare cache read it builds on.
func BenchmarkCustomerHit(b *testing.B) {
	up := newFake()
	up.reply("contacts", contactsAlex)
	g, err := New(Config{Conn: up, Logger: discardLogger})
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

// BenchmarkOrderHit is a cached order lookup (validation, key, cache get,
// and whatever copying the answer needs).
func BenchmarkOrderHit(b *testing.B) {
	up := newFake()
	up.reply("salesorders", `{"value":[`+orderJSON+`]}`)
	g, err := New(Config{Conn: up, Logger: discardLogger})
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
