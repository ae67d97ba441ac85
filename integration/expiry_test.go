package integration

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dvgate/dvgate/dataverse"
)

// credBackend is an okBackend that reports its secret's stated expiry.
type credBackend struct{ okBackend }

func (b *credBackend) Credential() dataverse.Credential {
	return dataverse.Credential{Kind: dataverse.CredentialSecret, ExpiresOn: b.cfg.Dataverse.ClientSecretExpiresOn}
}

type credConnector struct{}

func (credConnector) Connect(cfg Config, _ Backend) (Backend, error) {
	return &credBackend{okBackend{cfg: cfg}}, nil
}

// lockedBuffer collects log lines written concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	secret := dataverse.Config{ClientSecret: "s"}
	tests := []struct {
		in      string
		cfg     dataverse.Config
		want    time.Time
		wantErr string
	}{
		{"", secret, time.Time{}, ""},
		{" 2027-06-30 ", secret, time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC), ""},
		{"2027-06-30T10:23:00Z", secret, time.Date(2027, 6, 30, 10, 23, 0, 0, time.UTC), ""},
		{"2027-06-30T10:23:00+02:00", secret, time.Date(2027, 6, 30, 8, 23, 0, 0, time.UTC), ""},
		{"30/06/2027", secret, time.Time{}, "is not a date: write it as YYYY-MM-DD"},
		{"2027-06-30", dataverse.Config{CertificatePath: "/c.pem"}, time.Time{}, "without a client secret"},
	}
	for _, tc := range tests {
		got, err := parseExpiry("clientSecretExpiresOn", tc.in, tc.cfg)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "30/06") {
				t.Errorf("parseExpiry(%q) = %v, want an error with %q that does not echo the value", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		c    Credential
		want string
	}{
		{Credential{Kind: dataverse.CredentialSecret, ExpiresOn: now.Add(14 * 24 * time.Hour)}, "The client secret expires on 2026-12-19 (14 days left)."},
		{Credential{Kind: dataverse.CredentialCertificate, ExpiresOn: now.Add(-36 * time.Hour)}, "The certificate expired on 2026-12-04: create a new one and rotate it in place."},
		{Credential{Kind: dataverse.CredentialFederated}, "The federated credential has no secret to expire."},
		{Credential{Kind: dataverse.CredentialManagedIdentity, Detail: "system-assigned, IMDS"}, "The managed identity has no secret to expire: Azure rotates its credentials."},
		{Credential{Kind: dataverse.CredentialSecret}, "The client secret's expiry is not monitored: set clientSecretExpiresOn in the config file or AZURE_CLIENT_SECRET_EXPIRES_ON (YYYY-MM-DD, from the app registration's Certificates & secrets page)."},
	}
	for _, tc := range tests {
		if d := cmp.Diff(tc.want, tc.c.Describe(now)); d != "" {
			t.Errorf("Describe(%+v) (-want +got):\n%s", tc.c, d)
		}
	}
}

// TestExpiryWarningAndRotation runs the registry's watch loop on a fake
// clock: a secret stated to expire in 20 days is in Readiness and the
// gauge, is warned about at once and then once a day (not on every poll),
// and a rotation to a secret with a later date replaces the expiry and
// stops the warnings.
func TestExpiryWarningAndRotation(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	var now atomic.Pointer[time.Time]
	now.Store(&start)
	clock := func() time.Time { return *now.Load() }
	advance := func(d time.Duration) { t := clock().Add(d); now.Store(&t) }

	cfgFile := func(expires string) string {
		return `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "S"}, "clientSecretExpiresOn": "` + expires + `"}}}`
	}
	fs := map[string]string{"/cfg/c.json": cfgFile("2026-12-25")}
	var fsMu sync.Mutex
	src := Source{Path: "/cfg/c.json", Getenv: func(string) string { return "s3cret" },
		ReadFile: func(p string) ([]byte, error) { fsMu.Lock(); defer fsMu.Unlock(); return files(fs)(p) }}
	logs := &lockedBuffer{}
	promReg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(promReg)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewRegistry(RegistryConfig{Source: src, Connector: credConnector{}, Clock: clock, Metrics: m,
		Logger: slogJSON(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	first := time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC)
	gauge := func() float64 { return testutil.ToFloat64(m.expiry.WithLabelValues("default")) }
	if g := gauge(); g != float64(first.Unix()) {
		t.Errorf("gauge %v, want %d", g, first.Unix())
	}
	st := reg.Readiness()[0]
	if days, ok := st.Credential.DaysLeft(clock()); !ok || days != 19 || !st.Credential.ExpiresOn.Equal(first) {
		t.Errorf("Readiness credential %+v, %d days left, want 19", st.Credential, days)
	}

	ticks := make(chan time.Time)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(t.Context())
	wg.Go(func() { reg.Watch(ctx, ticks, nil) })
	defer func() { cancel(); wg.Wait() }()
	// tick returns once the loop finished the previous iteration.
	tick := func() { ticks <- time.Time{}; ticks <- time.Time{} }

	const warning = `"msg":"credential expires soon"`
	steps := []struct {
		advance time.Duration
		want    int
	}{
		{0, 1},              // at start
		{time.Hour, 1},      // polls within the day: no repeat
		{22 * time.Hour, 1}, // 23 h after the first
		{time.Hour, 2},      // 24 h: the daily warning
		{24 * time.Hour, 3}, // and the next day's
		{5 * time.Minute, 3},
	}
	for i, s := range steps {
		advance(s.advance)
		tick()
		if got := logs.count(warning); got != s.want {
			t.Fatalf("step %d (+%s): %d warnings, want %d:\n%s", i, s.advance, got, s.want, logs.b.String())
		}
	}
	if !strings.Contains(logs.b.String(), `"daysLeft":17`) {
		t.Errorf("the warning does not say how many days are left:\n%s", logs.b.String())
	}

	// Rotation: the new secret's date replaces the old one, the warnings stop.
	fsMu.Lock()
	fs["/cfg/c.json"] = cfgFile("2028-12-01")
	fsMu.Unlock()
	if err := reg.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := time.Date(2028, 12, 1, 0, 0, 0, 0, time.UTC)
	if c, ok := reg.Credential("default"); !ok || !c.ExpiresOn.Equal(second) {
		t.Errorf("after rotation Credential = %+v, want %v", c, second)
	}
	if g := gauge(); g != float64(second.Unix()) {
		t.Errorf("gauge after rotation %v, want %d", g, second.Unix())
	}
	advance(48 * time.Hour)
	tick()
	if got := logs.count(warning); got != 3 {
		t.Errorf("%d warnings after the rotation, want still 3", got)
	}
}

func slogJSON(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// TestExpiryFromEnvironment: AZURE_CLIENT_SECRET_EXPIRES_ON states the
// secret's expiry of the integration configured from the environment, and
// changing it is a new configuration.
func TestExpiryFromEnvironment(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATAVERSE_URL": "https://contoso.crm4.dynamics.com", "AZURE_TENANT_ID": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
		"AZURE_CLIENT_ID": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", "AZURE_CLIENT_SECRET": "s3cret", EnvClientSecretExpiresOn: "2027-01-31"}
	load := func() Config {
		cfgs, err := Source{Getenv: MapEnv(env, nil), ReadFile: NoFiles}.Load()
		if err != nil || cfgs[0].Err != nil {
			t.Fatalf("Load: %v %v", err, cfgs[0].Err)
		}
		return cfgs[0]
	}
	c := load()
	if want := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC); !c.Dataverse.ClientSecretExpiresOn.Equal(want) {
		t.Errorf("expiry %v, want %v", c.Dataverse.ClientSecretExpiresOn, want)
	}
	env[EnvClientSecretExpiresOn] = "2028-01-31"
	if load().Fingerprint() == c.Fingerprint() {
		t.Error("a new stated expiry does not change the fingerprint: the rotation would not be applied")
	}
	env[EnvClientSecretExpiresOn] = "soon"
	cfgs, _ := Source{Getenv: MapEnv(env, nil), ReadFile: NoFiles}.Load()
	if err := cfgs[0].Err; err == nil || !strings.Contains(err.Error(), EnvClientSecretExpiresOn) {
		t.Errorf("an invalid date: %v", err)
	}
}
