package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The MCP Inspector's CLI is the MCP client these tests use that this
// project did not write. It needs Node >= 22.19, which Debian does not
// ship, so Node 22 comes from npm too: both are installed into
// .tools/inspector (gitignored) by make inspector, or by the first test
// that needs them. Keep the versions in step with the Makefile.
const (
	inspectorPackages = "node@22 @modelcontextprotocol/inspector@2.12.0"
	inspectorDir      = "../../.tools/inspector"
)

var installInspector = sync.OnceValues(func() (string, error) {
	dir, err := filepath.Abs(inspectorDir)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "node_modules", ".bin")
	if _, err := os.Stat(filepath.Join(bin, "mcp-inspector")); err == nil {
		return bin, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", errNoNPM
	}
	args := append([]string{"install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error"}, strings.Fields(inspectorPackages)...)
	if out, err := exec.Command("npm", args...).CombinedOutput(); err != nil {
		return "", errors.New("npm " + strings.Join(args, " ") + ": " + err.Error() + ": " + string(out))
	}
	return bin, nil
})

var errNoNPM = errors.New("npm is not installed: install Node.js and npm (apt-get install npm) to run the MCP Inspector tests")

// inspector returns a function running the Inspector CLI with args, which
// returns its exit code, stdout and stderr. Without npm the test skips,
// saying so, except under CI (env CI set), where it fails.
func inspector(t *testing.T) func(args ...string) (int, string, string) {
	t.Helper()
	bin, err := installInspector()
	if err != nil {
		if errors.Is(err, errNoNPM) && os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "mcp-inspector"), append([]string{"--cli"}, args...)...)
		// Its node first on PATH: the CLI's #! runs "node".
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			t.Fatalf("inspector %q: %v", args, err)
		}
		return code, stdout.String(), stderr.String()
	}
}

// TestInspector drives dvgate with the MCP Inspector's CLI: tools/list and
// a tools/call of every tool answer with exit 0, and bad input is a tool
// error (exit 5), over stdio (dvgate mcp --demo, the built binary) and over
// streamable HTTP at /mcp behind the API token.
func TestInspector(t *testing.T) {
	t.Parallel()
	run := inspector(t)
	exe := filepath.Join(t.TempDir(), "dvgate")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e := newEnv(t)
	e.vars[envAPIToken] = "s3cret-token-of-at-least-32-bytes"
	e.start()
	targets := map[string][]string{
		"stdio": {exe, "mcp", "--demo", "--log-level", "warn", "--"},
		"http":  {e.base + "/mcp", "--header", "Authorization: Bearer s3cret-token-of-at-least-32-bytes"},
	}
	calls := []struct {
		name string
		args []string
		code int
		want string // in stdout
	}{
		{"tools/list", []string{"--method", "tools/list"}, 0, `"name": "list_recent_orders"`},
		{"find_customer", []string{"--method", "tools/call", "--tool-name", "find_customer", "--tool-arg", "email=alex.wu@example.com"}, 0, `\"found\":true`},
		{"get_order", []string{"--method", "tools/call", "--tool-name", "get_order", "--tool-arg", "order=ORD-01001-B2K9P7", "--tool-arg", "email=alex.wu@example.com"}, 0, `\"unitPrice\":\"318.20\"`},
		{"get_order of someone else", []string{"--method", "tools/call", "--tool-name", "get_order", "--tool-arg", "order=ORD-01001-B2K9P7", "--tool-arg", "email=maria.tanaka@example.com"}, 0, `\"found\":false`},
		{"list_recent_orders", []string{"--method", "tools/call", "--tool-name", "list_recent_orders", "--tool-args-json", `{"customer":{"type":"contact","id":"b46d4f35-6f57-5fbb-b866-32977a8faa40"},"limit":2}`}, 0, `\"orders\":[`},
		{"list_refunds", []string{"--method", "tools/call", "--tool-name", "list_refunds", "--tool-arg", "order=ORD-01001-B2K9P7"}, 0, `\"refunds\":[`},
		{"check_connection", []string{"--method", "tools/call", "--tool-name", "check_connection"}, 0, `\"ok\":true`},
		{"missing argument", []string{"--method", "tools/call", "--tool-name", "get_order"}, 5, `"isError": true`},
		{"bad email", []string{"--method", "tools/call", "--tool-name", "find_customer", "--tool-arg", "email=nobody"}, 5, `invalid_input: The email is not valid`},
		{"unknown tool", []string{"--method", "tools/call", "--tool-name", "delete_order"}, 5, ""},
	}
	for _, transport := range []string{"stdio", "http"} {
		for _, c := range calls {
			code, stdout, stderr := run(append(append([]string{}, targets[transport]...), c.args...)...)
			if code != c.code || !strings.Contains(stdout, c.want) {
				t.Errorf("%s %s: exit %d (want %d)\nstdout: %.600s\nstderr: %.600s", transport, c.name, code, c.code, stdout, stderr)
			}
		}
	}
	code, _, stderr := run(e.base+"/mcp", "--method", "tools/list")
	if code != 3 {
		t.Errorf("http without the token: exit %d, want 3 (auth required)\n%s", code, stderr)
	}
}
