package fleet

import (
	"context"
	"strings"
	"testing"
	"time"
)

// BenchmarkSeal and BenchmarkOpen: the cost of the envelope on a typical
// customer answer (~400 bytes), keyed and not.
func BenchmarkSeal(b *testing.B) {
	p := forgedCustomer(b, time.Now(), time.Minute, time.Hour, false, "Alex Wu")
	for _, k := range []struct {
		name string
		k    *keys
	}{{"no key", nil}, {"keyed", mustKeys(b, testKey)}} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				_ = k.k.seal("dvgate:v2:customer:0123456789abcdef0123456789abcdef", p)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	p := forgedCustomer(b, time.Now(), time.Minute, time.Hour, false, "Alex Wu")
	const rk = "dvgate:v2:customer:0123456789abcdef0123456789abcdef"
	for _, k := range []struct {
		name string
		k    *keys
	}{{"no key", nil}, {"keyed", mustKeys(b, testKey)}} {
		v := k.k.seal(rk, p)
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := k.k.open(rk, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGetOversized: reading a 1 MB value planted in Redis, as Get
// does (GETRANGE up to MaxPayload: refused after 256 KiB) and as a plain
// GET would (the whole megabyte).
func BenchmarkGetOversized(b *testing.B) {
	r := newTestRedis(b, Config{OpTimeout: time.Second})
	ctx := context.Background()
	rk := r.dataKey("customer", "k")
	raw := rawRedis(b)
	raw.Set(ctx, rk, strings.Repeat("x", 1<<20), time.Minute)
	b.Run("Get (GETRANGE)", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := r.Get(ctx, "customer", "k"); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("plain GET", func(b *testing.B) {
		for b.Loop() {
			if _, err := raw.Get(ctx, rk).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
