package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/dataversetest"
	"github.com/dvgate/dvgate/entitydefs"
	"github.com/dvgate/dvgate/testdata"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var fiveTables = "account,contact,salesorder,salesorderdetail,product"

// simCommand is dvgen signed in to the simulator: its environment names the
// simulator's app registration and authority, its HTTP client trusts the
// simulator's certificate.
func simCommand(t *testing.T, srv *dataversetest.Server, secret string, terminal bool) (*command, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	env := map[string]string{
		dataverse.EnvTenantID:      srv.TenantID(),
		dataverse.EnvClientID:      srv.ClientID(),
		dataverse.EnvClientSecret:  secret,
		dataverse.EnvAuthorityHost: srv.AuthorityHost(),
		dataverse.EnvURL:           "https://ignored.crm.dynamics.com", // --metadata wins
	}
	var stdout, stderr bytes.Buffer
	return &command{
		getenv:     func(k string) string { return env[k] },
		httpClient: srv.Client(),
		stdout:     &stdout, stderr: &stderr, terminal: terminal,
	}, &stdout, &stderr
}

func newSim(t *testing.T) *dataversetest.Server {
	t.Helper()
	srv, err := dataversetest.NewServer(dataversetest.Options{Seed: dataversetest.EmptySeed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestURLInputMatchesGenerated downloads $metadata and EntityDefinitions from
// the simulator (which serves the committed fixtures) with the tables of
// generated/generate.go, and checks that the output is byte for byte the
// committed generated/ package, apart from the invocation line in the Go
// file headers.
func TestURLInputMatchesGenerated(t *testing.T) {
	t.Parallel()
	gen := generateArgs(t)
	tables, pkg := flagValue(gen, "tables"), flagValue(gen, "package")
	srv := newSim(t)
	c, stdout, stderr := simCommand(t, srv, srv.ClientSecret(), false)
	out := t.TempDir()
	saved := filepath.Join(t.TempDir(), "defs.json")
	code := c.run(context.Background(), []string{"--metadata", srv.URL(), "--tables", tables,
		"--out", out, "--package", pkg, "--save-entity-definitions", saved})
	if code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, stderr)
	}
	n := len(strings.Split(tables, ","))
	if want := "dvgen: " + itoa(n) + " tables, "; !strings.HasPrefix(stdout.String(), want) || !strings.Contains(stdout.String(), "lines of Go in "+itoa(n+1)+" files ("+itoa(n+2)+" changed)") {
		t.Errorf("summary %q, want it to start with %q", stdout, want)
	}
	if strings.Contains(stderr.String(), "\r") {
		t.Errorf("progress printed although stderr is not a terminal: %q", stderr)
	}

	sorted := strings.Split(tables, ",")
	slices.Sort(sorted)
	committed := "dvgen --metadata " + flagValue(gen, "metadata") + " --entity-definitions " + flagValue(gen, "entity-definitions") +
		" --tables " + strings.Join(sorted, ",") + " --package " + pkg
	downloaded := "dvgen --metadata " + srv.URL() + " --tables " + strings.Join(sorted, ",") + " --package " + pkg
	for _, name := range []string{"service.gen.go", "salesorder.gen.go", "transactioncurrency.gen.go", "openapi.json"} {
		want, err := os.ReadFile(filepath.Join("..", "..", "generated", name))
		if err != nil {
			t.Fatal(err)
		}
		want = bytes.ReplaceAll(want, []byte(committed), []byte(downloaded))
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from generated/:\n%s", name, firstDiff(string(want), string(got)))
		}
	}

	// The saved definitions hold what code generation uses, as in the fixture.
	f, err := os.Open(saved)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := entitydefs.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := entitydefs.Read(bytes.NewReader(testdata.OrgEntityDefs()))
	if err != nil {
		t.Fatal(err)
	}
	want.Entities = slices.DeleteFunc(want.Entities, func(e *entitydefs.Entity) bool { return !slices.Contains(sorted, e.LogicalName) })
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(entitydefs.Definitions{}, entitydefs.Entity{}),
		cmpopts.IgnoreFields(entitydefs.Attribute{}, "Targets")); diff != "" {
		t.Errorf("saved EntityDefinitions (-fixture +saved):\n%s", diff)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + itoa(i+1) + ":\n- " + al[i] + "\n+ " + bl[i]
		}
	}
	return "lengths differ: " + itoa(len(al)) + " vs " + itoa(len(bl)) + " lines"
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestURLInputWrongSecret: a rejected sign-in prints the dataverse remedy on
// its own line, exits 1 and writes nothing.
func TestURLInputWrongSecret(t *testing.T) {
	t.Parallel()
	srv := newSim(t)
	c, stdout, stderr := simCommand(t, srv, "not-the-secret", false)
	out := filepath.Join(t.TempDir(), "gen")
	code := c.run(context.Background(), []string{"--metadata", srv.URL(), "--tables", fiveTables, "--out", out, "--package", "generated"})
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr)
	}
	for _, want := range []string{"AADSTS7000215", "\ndvgen: remedy: " + dataverse.RemedySecretInvalid + "\n"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Count(stderr.String(), dataverse.RemedySecretInvalid) != 1 || strings.Contains(stderr.String(), "not-the-secret") {
		t.Errorf("remedy repeated or secret printed:\n%s", stderr)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output directory created after a failed sign-in: %v", err)
	}
}

// TestURLInputProgressOnTerminal: with a terminal, the download shows its
// byte count on one rewritten line and ends it.
func TestURLInputProgressOnTerminal(t *testing.T) {
	t.Parallel()
	srv := newSim(t)
	c, _, stderr := simCommand(t, srv, srv.ClientSecret(), true)
	code := c.run(context.Background(), []string{"--metadata", srv.URL(), "--tables", "contact",
		"--out", t.TempDir(), "--package", "x"})
	if code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, stderr)
	}
	// The simulator sends $metadata chunked, so the total is unknown.
	if want := "\rdvgen: $metadata " + mb(int64(len(testdata.OrgCSDL()))) + "\n"; !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("stderr %q, want it to end with %q", stderr, want)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		terminal bool
		total    int64
		want     string
	}{
		{"terminal, size known", true, 600 << 10,
			"\rdvgen: $metadata 0.3 MB of 0.6 MB\rdvgen: $metadata 0.5 MB of 0.6 MB\rdvgen: $metadata 0.6 MB of 0.6 MB\n"},
		{"terminal, chunked", true, -1, "\rdvgen: $metadata 0.3 MB\rdvgen: $metadata 0.5 MB\rdvgen: $metadata 0.6 MB\n"},
		{"not a terminal", false, 600 << 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			p := &progress{w: &b, on: tc.terminal, total: tc.total}
			chunk := make([]byte, 10<<10)
			for range 60 {
				_, _ = p.Write(chunk)
			}
			p.done()
			if diff := cmp.Diff(tc.want, b.String()); diff != "" {
				t.Errorf("progress output (-want +got):\n%s", diff)
			}
		})
	}
}

// TestURLInputConfigError: an incomplete environment fails before any
// network call, with the remedy naming the variable to set.
func TestURLInputConfigError(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	c := &command{getenv: func(k string) string {
		return map[string]string{dataverse.EnvClientID: "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", dataverse.EnvClientSecret: "s"}[k]
	}, stdout: &stdout, stderr: &stderr}
	code := c.run(context.Background(), []string{"--metadata", "https://contoso.crm4.dynamics.com", "--tables", "contact",
		"--out", t.TempDir(), "--package", "x"})
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if want := "\ndvgen: remedy: Set AZURE_TENANT_ID"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
}
