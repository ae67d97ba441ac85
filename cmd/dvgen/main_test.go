package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// generateArgs are the arguments of the go:generate line in
// generated/generate.go, which runs in that directory.
var generateArgs = []string{
	"--metadata", "../testdata/csdl/org.xml",
	"--entity-definitions", "../testdata/entitydefs/org.json",
	"--tables", "account,contact,salesorder,salesorderdetail,product",
	"--out", ".", "--package", "generated",
}

// TestGeneratedIsFresh fails when the committed generated/ package differs
// from what dvgen produces from the committed inputs.
func TestGeneratedIsFresh(t *testing.T) {
	t.Chdir("../../generated")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), append(generateArgs, "--check"), &stdout, &stderr); code != 0 {
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
