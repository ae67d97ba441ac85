package codegen

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

const realMetadata = "../../shared/realworld/DynamicsCRM-2016-metadata.xml"

// TestOutputCompiles builds and vets the output for the real 2016 org
// metadata (skipped when absent) and for the customized fixture, each as a
// package of a temporary module that replaces dvgate with this repository.
func TestOutputCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs go build and go vet")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gomod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(gomod, []byte("module compiletest\n\nrequire github.com/dvgate/dvgate v0.0.0\n\nreplace github.com/dvgate/dvgate => "+root))
	gomod = regexp.MustCompile(`(?ms)^tool \(.*?\)\n|^tool .*?\n`).ReplaceAll(gomod, nil)
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(dir string, files map[string][]byte) {
		if err := os.MkdirAll(filepath.Join(mod, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(mod, dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(".", map[string][]byte{"go.mod": gomod, "go.sum": gosum})
	write("custom", generateFixture(t, true, append(slices.Clone(fiveTables), "contoso_delivery")))
	if _, err := os.Stat(realMetadata); err == nil {
		files, err := Generate(Config{Model: readModel(t, realMetadata), Tables: fiveTables, Package: "real", Invocation: "dvgen"})
		if err != nil {
			t.Fatal(err)
		}
		write("real", files)
	} else {
		t.Logf("real metadata not compiled: %s is absent", realMetadata)
	}
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
}
