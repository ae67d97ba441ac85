package gateway

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCacheOwners: each owner (the key's first field, the integration) is
// charged for its own answers only, and an eviction is counted for the
// owner whose answer was evicted. The budget holds two answers, so the
// third one stored evicts one of the first two.
func TestCacheOwners(t *testing.T) {
	t.Parallel()
	const valueCost = 1000
	charge := func(key string) int64 { return valueCost + int64(len(key)) + entryOverhead }
	k := func(owner string, i int) string {
		return fmt.Sprintf("%s\x1fhttps://org.example\x1fcustomer\x1f%d", owner, i)
	}
	c, err := NewCache(CacheConfig{MaxBytes: 2*charge(k("a", 1)) + valueCost/2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	store := func(key string) {
		c.set(key, &entry{value: "v", fresh: 1 << 40, cost: valueCost})
		c.rc.Wait()
	}
	store(k("a", 1))
	store(k("a", 2))
	if diff := cmp.Diff(OwnerStats{Owner: "a", Bytes: charge(k("a", 1)) + charge(k("a", 2)), Entries: 2}, c.Owner("a")); diff != "" {
		t.Errorf("a after its two answers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(OwnerStats{Owner: "b"}, c.Owner("b")); diff != "" {
		t.Errorf("b before any answer of its own (-want +got):\n%s", diff)
	}
	store(k("a", 2)) // stored again: replaces its value, charged once
	if got := c.Owner("a"); got.Entries != 2 || got.Bytes != 2*charge(k("a", 1)) {
		t.Errorf("a after storing an answer again: %+v, want 2 entries", got)
	}
	store(k("b", 1)) // no room: one of a's answers is evicted
	want := []OwnerStats{
		{Owner: "a", Bytes: charge(k("a", 1)), Entries: 1, Evictions: 1},
		{Owner: "b", Bytes: charge(k("b", 1)), Entries: 1},
	}
	got := []OwnerStats{c.Owner("a"), c.Owner("b")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after b's answer evicted one of a's (-want +got):\n%s", diff)
	}
	st := c.Stats()
	if sum := got[0].Evictions + got[1].Evictions; sum != st.KeysEvicted {
		t.Errorf("owners' evictions %d, ristretto's %d", sum, st.KeysEvicted)
	}
	if sum := got[0].Bytes + got[1].Bytes; sum != int64(st.CostAdded-st.CostEvicted) {
		t.Errorf("owners' bytes %d, ristretto's %d", sum, st.CostAdded-st.CostEvicted)
	}
	// Deleting (as the change feed does) releases the charge at once.
	c.rc.Del(k("b", 1))
	if got := c.Owner("b"); got.Entries != 0 || got.Bytes != 0 {
		t.Errorf("b after deleting its answer: %+v", got)
	}
}

// TestCacheOwnersConcurrent: under concurrent stores of two owners into a
// small budget the shares add up to ristretto's own figures once it has
// processed every store (run with -race: the callbacks run in ristretto's
// goroutines).
func TestCacheOwnersConcurrent(t *testing.T) {
	t.Parallel()
	c, err := NewCache(CacheConfig{MaxBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan struct{})
	for _, o := range []string{"a", "b"} {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 2000 {
				c.set(fmt.Sprintf("%s\x1fk\x1f%d", o, i%500), &entry{value: "v", fresh: 1 << 40, cost: 500})
				if i%7 == 0 {
					c.get(fmt.Sprintf("%s\x1fk\x1f%d", o, i%50))
				}
			}
		}()
	}
	<-done
	<-done
	c.rc.Wait()
	a, b := c.Owner("a"), c.Owner("b")
	st := c.Stats()
	if a.Bytes+b.Bytes != int64(st.CostAdded-st.CostEvicted) || a.Entries+b.Entries != int64(st.KeysAdded-st.KeysEvicted) ||
		a.Evictions+b.Evictions != st.KeysEvicted || a.Bytes < 0 || b.Bytes < 0 {
		t.Errorf("owners a %+v b %+v; ristretto: %d bytes, %d entries, %d evicted", a, b, st.CostAdded-st.CostEvicted, st.KeysAdded-st.KeysEvicted, st.KeysEvicted)
	}
}
