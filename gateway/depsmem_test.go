package gateway

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The index's byte bound is only as good as its estimate: indexing 20,000
// order-like answers (a key of ~90 bytes, 9 deps of GUIDs and prefixed
// numbers), the heap must not grow by more than the estimate plus a
// quarter, nor by less than three quarters of it (an estimate too high wastes
// the bound).
func TestDepIndexBytes(t *testing.T) {
	x := newDepIndex(&feedState{})
	var keyBytes int64 // the keys' bytes are counted by the cache, not the index
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	t0 := time.Now()
	for i := range 20000 {
		key := fmt.Sprintf("order\x00https://org.crm.dynamics.com/api/data/v9.2/\x00default\x00ORD-%06d-ABCDEF", i)
		deps := []string{uuid.NewString(), fmt.Sprintf("on:ord-%06d-abcdef", i), "oc:" + uuid.NewString()}
		for range 6 {
			deps = append(deps, uuid.NewString())
		}
		x.add(key, deps, time.Minute, t0)
		keyBytes += int64(len(key))
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	n, est := x.size()
	grew := int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc) - keyBytes
	t.Logf("%d answers: estimated %d KiB (%d B each), heap grew %d KiB", n, est/1024, est/int64(n), grew/1024)
	if grew > est*5/4 || grew < est*3/4 {
		t.Errorf("the heap grew %d KiB for an estimate of %d KiB", grew/1024, est/1024)
	}
	runtime.KeepAlive(x)
}
