package integration

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dvgate/dvgate/gateway"
)

// okBackend answers every lookup; Test fails when its secret is "bad".
type okBackend struct {
	broken
	cfg Config
}

func (b *okBackend) Test(context.Context) (*gateway.TestResult, error) {
	if b.cfg.Dataverse.ClientSecret == "bad" {
		return nil, &Error{Code: CodeAuth, Message: "The client secret is wrong."}
	}
	return &gateway.TestResult{OrganizationID: "org"}, nil
}

func (b *okBackend) Order(context.Context, string) (*gateway.Order, gateway.Meta, error) {
	return &gateway.Order{Number: "ORD-1"}, gateway.Meta{}, nil
}

type okConnector struct{}

func (okConnector) Connect(cfg Config, _ Backend) (Backend, error) {
	if cfg.TrackingColumn == "contoso_nosuchcolumn" {
		return nil, errors.New(`tracking column "contoso_nosuchcolumn" is not a column of salesorder`)
	}
	return &okBackend{cfg: cfg}, nil
}

const ids = `"url": "https://contoso.crm4.dynamics.com", "tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d"`

// TestBrokenIntegrationsDoNotStopOthers is the start-up rule for many
// orgs: one integration with a missing secret and one with a column its
// connector rejects are reported with their remedy and answer config
// errors, while the good one serves; a later reload that fixes one
// brings it up.
func TestBrokenIntegrationsDoNotStopOthers(t *testing.T) {
	t.Parallel()
	fs := map[string]string{"/cfg/c.json": `{"integrations": {
		"good": {` + ids + `, "clientSecret": {"env": "S"}},
		"nosecret": {` + ids + `, "clientSecret": {"file": "missing.secret"}},
		"badcolumn": {` + ids + `, "clientSecret": {"env": "S"}, "trackingColumn": "contoso_nosuchcolumn"}}}`}
	src := Source{Path: "/cfg/c.json", ReadFile: func(p string) ([]byte, error) { return files(fs)(p) },
		Getenv: func(k string) string { return map[string]string{"S": "s3cret"}[k] }}
	reg, err := NewRegistry(RegistryConfig{Source: src, Connector: okConnector{}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if err := reg.Check(t.Context()); err != nil {
		t.Fatalf("Check of the good integration: %v", err)
	}
	got := reg.Readiness()
	want := []IntegrationState{
		{Name: "badcolumn", Broken: true, Reason: `Integration "badcolumn": tracking column "contoso_nosuchcolumn" is not a column of salesorder.`},
		{Name: "good", Ready: true},
		{Name: "nosecret", Broken: true, Reason: `Config file /cfg/c.json: integration "nosecret": clientSecret: secret file /cfg/missing.secret does not exist.`},
	}
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("readiness (-want +got):\n%s", d)
	}
	b, release, _ := reg.Acquire("nosecret")
	_, _, err = b.Order(t.Context(), "ORD-1")
	release()
	var ie *Error
	if !errors.As(err, &ie) || ie.Code != CodeConfig || !strings.Contains(ie.Message, "missing.secret does not exist") {
		t.Errorf("a broken integration's lookup: %v, want a config error naming the file", err)
	}
	b, release, _ = reg.Acquire("good")
	if o, _, err := b.Order(t.Context(), "ORD-1"); err != nil || o.Number != "ORD-1" {
		t.Errorf("the good integration: %v %v", o, err)
	}
	release()

	// The secret appears: a reload brings the integration up.
	fs["/cfg/missing.secret"] = "s3cret"
	if err := reg.Reload(t.Context()); err != nil {
		t.Errorf("Reload: %v", err)
	}
	for _, st := range reg.Readiness() {
		if st.Name == "nosecret" && (!st.Ready || st.Broken) {
			t.Errorf("after the secret appeared: %+v", st)
		}
		if st.Name == "badcolumn" && !st.Broken {
			t.Errorf("badcolumn, unchanged, is no longer broken: %+v", st)
		}
	}
}

func TestNoIntegrationCanStart(t *testing.T) {
	t.Parallel()
	src := Source{Getenv: func(string) string { return "" }, ReadFile: NoFiles}
	_, err := NewRegistry(RegistryConfig{Source: src, Connector: okConnector{}, Clock: func() time.Time { return time.Unix(0, 0) }})
	if !errors.Is(err, ErrNoneUsable) || !strings.Contains(err.Error(), "DATAVERSE_URL") {
		t.Errorf("NewRegistry without any usable integration: %v", err)
	}
}

// refusingBackend's org refuses the configuration (a column it lacks)
// until the column is added in the org.
type refusingBackend struct {
	okBackend
	added *atomic.Bool
	tests *atomic.Int32
}

func (b *refusingBackend) Test(context.Context) (*gateway.TestResult, error) {
	b.tests.Add(1)
	if !b.added.Load() {
		return nil, &Error{Code: CodeConfig, Message: `TrackingColumn: salesorder has no column "contoso_trackingnumber" in this org.`}
	}
	return &gateway.TestResult{OrganizationID: "org"}, nil
}

type refusingConnector struct{ b *refusingBackend }

func (c refusingConnector) Connect(cfg Config, _ Backend) (Backend, error) { return c.b, nil }

// TestRefusedConfigurationIsRecheckedRarely: an integration the org
// refuses is broken, is not validated again at every poll, and becomes
// ready RecheckRefusedAfter after the admin fixed the org.
func TestRefusedConfigurationIsRecheckedRarely(t *testing.T) {
	t.Parallel()
	b := &refusingBackend{added: new(atomic.Bool), tests: new(atomic.Int32)}
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	src := Source{Getenv: MapEnv(map[string]string{"DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
		"AZURE_TENANT_ID": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "AZURE_CLIENT_ID": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d",
		"AZURE_CLIENT_SECRET": "s3cret"}, nil), ReadFile: NoFiles}
	reg, err := NewRegistry(RegistryConfig{Source: src, Connector: refusingConnector{b}, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for range 3 { // polls
		_ = reg.Check(t.Context())
	}
	if st := reg.Readiness()[0]; !st.Broken || b.tests.Load() != 1 {
		t.Fatalf("after 3 polls: %+v, %d validations; want broken and 1", st, b.tests.Load())
	}
	b.added.Store(true) // the admin adds the column in the org
	now = now.Add(RecheckRefusedAfter + time.Second)
	if err := reg.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := reg.Readiness()[0]; !st.Ready || st.Broken {
		t.Errorf("%v after the org was fixed: %+v", RecheckRefusedAfter, st)
	}
}
