package dataverse

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/testdata"
)

// TestStreamMetadata: $metadata comes back unbuffered and complete, after a
// transient 503 is retried, and closing the body frees the only
// concurrency slot so the next request can run.
func TestStreamMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, func(c *Config) { c.MaxConcurrent = 1 })
	e.sim.InjectFault(dataversetest.Fault{Path: "/api/data/v9.2/$metadata", Count: 1, Status: http.StatusServiceUnavailable})
	ctx := context.Background()

	resp, err := e.conn.Stream(ctx, "$metadata")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if want := testdata.OrgCSDL(); !bytes.Equal(got, want) {
		t.Errorf("streamed $metadata: %d bytes, want the fixture's %d", len(got), len(want))
	}
	if n := e.conn.Stats().Retries; n != 1 {
		t.Errorf("retries = %d, want 1 (the injected 503)", n)
	}
	// With MaxConcurrent 1, this would block forever had Close not released the slot.
	if _, err := e.conn.WhoAmI(ctx); err != nil {
		t.Fatalf("WhoAmI after the stream was closed: %v", err)
	}
}

// TestStreamError: a failed answer is a classified *Error, as with Get.
func TestStreamError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{}, nil)
	e.sim.SetApplicationUser(false)
	_, err := e.conn.Stream(context.Background(), "$metadata")
	if KindOf(err) != KindPermission {
		t.Fatalf("Stream with no application user: %v, want a permission error", err)
	}
}
