package httpapi

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAPIGenIsFresh regenerates api.gen.go from openapi.yaml with the
// oapi-codegen pinned in go.mod and fails when the committed file differs:
// the served document and the handlers must not drift.
func TestAPIGenIsFresh(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds oapi-codegen")
	}
	out, err := exec.Command("go", "tool", "-n", "oapi-codegen").Output()
	if err != nil {
		t.Fatalf("go tool -n oapi-codegen: %v", err)
	}
	bin := strings.TrimSpace(string(out))
	dir := t.TempDir()
	tmpls, err := filepath.Glob("templates/*.tmpl")
	if err != nil || len(tmpls) == 0 {
		t.Fatalf("templates/*.tmpl: %v (%d found)", err, len(tmpls))
	}
	for _, f := range append([]string{"cfg.yaml", "openapi.yaml"}, tmpls...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "--config", "cfg.yaml", "openapi.yaml")
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, msg)
	}
	fresh, err := os.ReadFile(filepath.Join(dir, "api.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("api.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Errorf("sidecar/api.gen.go is stale: run go generate ./sidecar/internal/httpapi")
	}
}
