package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// generateArgs returns the arguments of the go:generate line in
// generated/generate.go (which runs in that directory), so that the tests
// follow the table selection made there.
func generateArgs(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "generated", "generate.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//go:generate go run ../cmd/dvgen "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("generated/generate.go has no go:generate line running ../cmd/dvgen")
	return nil
}

// flagValue returns the value of --name in args.
func flagValue(args []string, name string) string {
	if i := slices.Index(args, "--"+name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// run runs dvgen with an empty environment and no terminal.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &command{getenv: func(string) string { return "" }, stdout: stdout, stderr: stderr}
	return c.run(ctx, args)
}

// TestGeneratedIsFresh fails when the committed generated/ package differs
// from what dvgen produces from the committed inputs.
func TestGeneratedIsFresh(t *testing.T) {
	args := generateArgs(t)
	t.Chdir("../../generated")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append(args, "--check"), &stdout, &stderr); code != 0 {
		t.Fatalf("generated/ is stale (run go generate ./generated): exit %d\n%s", code, stderr.String())
	}
}

func TestUnknownTableSuggests(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--metadata", "../../testdata/csdl/org.xml", "--tables", "account,contct",
		"--out", t.TempDir(), "--package", "x"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), `did you mean "contact"`) {
		t.Fatalf("exit %d, stderr %q; want failure suggesting contact", code, stderr.String())
	}
}

func TestMissingFlags(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--tables", "account"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if want := "missing --metadata, --out, --package"; !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr %q, want %q", stderr.String(), want)
	}
}

// TestWarnsWithoutEntityDefinitions: without EntityDefinitions dvgen says
// that names fall back to logical-name casing and how to get the file; with
// them it says nothing of the kind.
func TestWarnsWithoutEntityDefinitions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		defs []string
		warn bool
	}{
		{nil, true},
		{[]string{"--entity-definitions", "../../testdata/entitydefs/org.json"}, false},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"--metadata", "../../testdata/csdl/org.xml", "--tables", "account",
			"--out", t.TempDir(), "--package", "x"}, tc.defs...)
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d\n%s", tc.defs, code, stderr.String())
		}
		got := strings.Contains(stderr.String(), "logical-name casing") && strings.Contains(stderr.String(), "--metadata https://")
		if got != tc.warn {
			t.Errorf("%v: warning shown %v, want %v; stderr:\n%s", tc.defs, got, tc.warn, stderr.String())
		}
	}
}

// TestHelp: dvgen --help says what dvgen does, with examples and the exit
// status, on stdout, and exits 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{arg}, &stdout, &stderr); code != 0 {
			t.Errorf("dvgen %s: exit %d, want 0", arg, code)
		}
		for _, want := range []string{"generates a typed Go client", "Examples:", "--check", "Exit status:", "-tables"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("dvgen %s: stdout lacks %q:\n%s", arg, want, stdout.String())
			}
		}
		if stderr.Len() != 0 {
			t.Errorf("dvgen %s: stderr %q", arg, stderr.String())
		}
	}
}
