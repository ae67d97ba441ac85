package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dvgate/dvgate/dataversetest"
)

// Main is the program: ParseFlags, Run, then Close. Tests run it in-process
// on 127.0.0.1:0. Its fields are set before Run and not changed after; the
// methods are not safe for concurrent use with each other.
type Main struct {
	Stdout, Stderr io.Writer
	ReadFile       func(string) ([]byte, error)
	WriteFile      func(string, []byte, os.FileMode) error

	Listen      string // --listen, default 127.0.0.1:8443
	Metadata    string // --metadata: a CSDL $metadata file
	EntityDefs  string // --entity-definitions: EntityDefinitions JSON
	Seed        string // --seed: seed rows (dataversetest.LoadSeed format)
	DataDir     string // --data-dir: load DataDir/seed.json, save the rows there on Close
	CAOut       string // --ca-out: write the TLS certificate (PEM) here
	EnvOut      string // --env-out: write the client's environment here
	PageSize    int    // --page-size: rows per page without Prefer
	AllowRemote bool   // --allow-remote: listen on a non-loopback address
	Verbose     bool   // --verbose: log each request to stderr

	sim *dataversetest.Server
	env []string // KEY=VALUE lines printed by Run
}

// NewMain returns a Main wired to the process.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, ReadFile: os.ReadFile, WriteFile: os.WriteFile}
}

// ParseFlags reads the command line.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("dvsim", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.Listen, "listen", "127.0.0.1:8443", "`address` to serve HTTPS on (loopback unless --allow-remote)")
	fs.StringVar(&m.Metadata, "metadata", "", "CSDL $metadata `file` (default: the five-table demo schema)")
	fs.StringVar(&m.EntityDefs, "entity-definitions", "", "EntityDefinitions JSON `file` for option-set labels (default: the demo's)")
	fs.StringVar(&m.Seed, "seed", "", "seed data JSON `file`, {\"tables\":{\"contact\":[{...}]}} (default: the demo org)")
	fs.StringVar(&m.DataDir, "data-dir", "", "keep the data in `dir`/seed.json: loaded at start (unless --seed), written on exit (default: in memory only)")
	fs.StringVar(&m.CAOut, "ca-out", "", "write the server's TLS certificate (PEM) to this `file`, for clients to trust")
	fs.StringVar(&m.EnvOut, "env-out", "", "write DATAVERSE_URL, AZURE_* and DVSIM_* to this `file` (KEY=VALUE lines)")
	fs.IntVar(&m.PageSize, "page-size", 0, "rows per page without Prefer: odata.maxpagesize (default 5000)")
	fs.BoolVar(&m.AllowRemote, "allow-remote", false, "allow a non-loopback --listen address (no real security: test networks only)")
	fs.BoolVar(&m.Verbose, "verbose", false, "log every request to stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: dvsim [flags]\n\nServes the Dataverse Web API and Entra ID over TLS for tests. Admin API under /_dvsim/.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// Run starts the simulator, writes the certificate and the environment
// file, and prints what a client needs. It returns once serving.
func (m *Main) Run(ctx context.Context) error {
	opts := dataversetest.Options{Addr: m.Listen, PageSize: m.PageSize, Admin: true, NewCertificate: true, AllowNonLoopback: m.AllowRemote}
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{m.Metadata, &opts.CSDL}, {m.EntityDefs, &opts.EntityDefs}, {m.Seed, &opts.Seed}} {
		if f.path == "" {
			continue
		}
		b, err := m.ReadFile(f.path)
		if err != nil {
			return err
		}
		*f.dst = b
	}
	if m.DataDir != "" && m.Seed == "" {
		if b, err := m.ReadFile(filepath.Join(m.DataDir, "seed.json")); err == nil {
			opts.Seed = b
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--data-dir: %w", err)
		}
	}
	if m.Verbose {
		opts.Logger = slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	start := time.Now()
	sim, err := dataversetest.NewServer(opts)
	if err != nil {
		return err
	}
	m.sim = sim
	caPath := ""
	if m.CAOut != "" {
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sim.Certificate().Raw})
		if err := m.WriteFile(m.CAOut, pemBytes, 0o644); err != nil {
			return fmt.Errorf("--ca-out: %w", err)
		}
		if caPath, err = filepath.Abs(m.CAOut); err != nil {
			return err
		}
	}
	token, err := m.token(ctx)
	if err != nil {
		return fmt.Errorf("getting a token from the simulator: %w", err)
	}
	m.env = []string{
		"DATAVERSE_URL=" + sim.URL(),
		"AZURE_TENANT_ID=" + sim.TenantID(),
		"AZURE_CLIENT_ID=" + sim.ClientID(),
		"AZURE_CLIENT_SECRET=" + sim.ClientSecret(),
		"AZURE_AUTHORITY_HOST=" + sim.AuthorityHost(),
		"DVSIM_TOKEN_URL=" + sim.AuthorityHost() + sim.TenantID() + "/oauth2/v2.0/token",
		"DVSIM_ADMIN_URL=" + sim.URL() + "/_dvsim",
		"DVSIM_ACCESS_TOKEN=" + token,
	}
	if caPath != "" {
		m.env = append(m.env, "DVSIM_CA_FILE="+caPath, "NODE_EXTRA_CA_CERTS="+caPath)
	}
	envText := strings.Join(m.env, "\n") + "\n"
	if m.EnvOut != "" {
		if err := m.WriteFile(m.EnvOut, []byte(envText), 0o600); err != nil {
			return fmt.Errorf("--env-out: %w", err)
		}
	}
	fmt.Fprintf(m.Stdout, "dvsim: Dataverse Web API and Entra ID at %s (started in %s)\n%s", sim.URL(), time.Since(start).Round(time.Millisecond), envText)
	ca := "--cacert " + orDefault(caPath, "ca.pem")
	fmt.Fprintf(m.Stdout, "\nTry: curl %s -H \"Authorization: Bearer $DVSIM_ACCESS_TOKEN\" %s/api/data/v9.2/WhoAmI\nAdmin: curl %s %s/_dvsim/state\nThe token lasts an hour; get new ones from DVSIM_TOKEN_URL. Ctrl-C stops.\n", ca, sim.URL(), ca, sim.URL())
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// token signs in as the registered app, as any client would.
func (m *Main) token(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {m.sim.ClientID()},
		"client_secret": {m.sim.ClientSecret()}, "scope": {m.sim.URL() + "/.default"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.sim.AuthorityHost()+m.sim.TenantID()+"/oauth2/v2.0/token", bytes.NewBufferString(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c := m.sim.Client()
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token endpoint answered %s", resp.Status)
	}
	return body.AccessToken, nil
}

// Server is the running simulator (nil before Run).
func (m *Main) Server() *dataversetest.Server { return m.sim }

// Env returns the KEY=VALUE lines Run printed.
func (m *Main) Env() []string { return m.env }

// Close stops the simulator and, with --data-dir, saves its rows (written
// to a temporary file and renamed, so a crash never leaves half a file).
// It is safe to call more than once.
func (m *Main) Close() error {
	if m.sim == nil {
		return nil
	}
	sim := m.sim
	m.sim = nil
	sim.Close()
	if m.DataDir == "" {
		return nil
	}
	snap, err := sim.Snapshot()
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if err := os.MkdirAll(m.DataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	tmp := filepath.Join(m.DataDir, ".seed.json.tmp")
	if err := m.WriteFile(tmp, snap, 0o644); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(m.DataDir, "seed.json")); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	return nil
}
