package dataverse

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	testTenant = "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b"
	testClient = "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d"
	testSecret = "zQ8~unmistakable.Secret_Value-4711"
)

func validConfig() Config {
	return Config{URL: "https://contoso.crm4.dynamics.com", TenantID: testTenant, ClientID: testClient, ClientSecret: testSecret}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"crm4", func(*Config) {}},
		{"crm region", func(c *Config) { c.URL = "https://contoso.crm.dynamics.com" }},
		{"crm15 trailing slash", func(c *Config) { c.URL = "https://contoso.crm15.dynamics.com/" }},
		{"api host form", func(c *Config) { c.URL = "https://contoso.api.crm4.dynamics.com" }},
		{"copied web api endpoint", func(c *Config) { c.URL = "https://contoso.api.crm4.dynamics.com/api/data/v9.2/" }},
		{"simulator", func(c *Config) { c.URL = "https://127.0.0.1:8443" }},
		{"upper-case GUIDs", func(c *Config) { c.TenantID = strings.ToUpper(testTenant) }},
		{"certificate", func(c *Config) { c.ClientSecret = ""; c.CertificatePath = "app.pfx"; c.CertificatePassword = "pw" }},
		{"federated", func(c *Config) { c.ClientSecret = ""; c.FederatedTokenFile = "/var/run/token" }},
		{"two credentials: the first in CredentialOrder is used", func(c *Config) { c.CertificatePath = "x.pem" }},
		{"managed identity without tenant and app", func(c *Config) { c.ClientSecret, c.TenantID, c.ClientID, c.ManagedIdentity = "", "", "", "system" }},
		{"authority host", func(c *Config) { c.AuthorityHost = "https://login.microsoftonline.us" }},
		{"limits", func(c *Config) { c.MaxConcurrent = 10; c.MaxAttempts = 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mod(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mod      func(*Config)
		op       string
		inRemedy string
	}{
		{"empty URL", func(c *Config) { c.URL = "" }, "config URL", "DATAVERSE_URL"},
		{"http URL", func(c *Config) { c.URL = "http://contoso.crm4.dynamics.com" }, "config URL", "https://"},
		{"no scheme", func(c *Config) { c.URL = "contoso.crm4.dynamics.com" }, "config URL", "https://"},
		{"path", func(c *Config) { c.URL = "https://contoso.crm4.dynamics.com/main.aspx" }, "config URL", "admin center"},
		{"query", func(c *Config) { c.URL = "https://contoso.crm4.dynamics.com/?appid=1" }, "config URL", "admin center"},
		{"tenant empty", func(c *Config) { c.TenantID = "" }, "config TenantID", "AZURE_TENANT_ID"},
		{"tenant domain", func(c *Config) { c.TenantID = "contoso.onmicrosoft.com" }, "config TenantID", "GUID"},
		{"client not GUID", func(c *Config) { c.ClientID = "myapp" }, "config ClientID", "Application (client) ID"},
		{"no credential", func(c *Config) { c.ClientSecret = "" }, "config credential", "DVGATE_MANAGED_IDENTITY"},
		{"managed identity not a GUID, system or resource ID", func(c *Config) { c.ClientSecret, c.ManagedIdentity = "", "mine" }, "config ManagedIdentity", "system"},
		{"managed identity with a bad tenant", func(c *Config) { c.ClientSecret, c.ManagedIdentity, c.TenantID = "", "system", "contoso" }, "config TenantID", "GUID"},
		{"secret ID instead of value", func(c *Config) { c.ClientSecret = "0b5f8a6e-1c2d-4e3f-8a9b-0c1d2e3f4a5b" }, "config ClientSecret", "Secret ID was copied"},
		{"password without cert", func(c *Config) { c.CertificatePassword = "pw" }, "config CertificatePassword", "AZURE_CLIENT_CERTIFICATE_PATH"},
		{"authority http", func(c *Config) { c.AuthorityHost = "http://login.microsoftonline.com/" }, "config AuthorityHost", "https"},
		{"authority with tenant", func(c *Config) { c.AuthorityHost = "https://login.microsoftonline.com/" + testTenant }, "config AuthorityHost", "https"},
		{"negative concurrency", func(c *Config) { c.MaxConcurrent = -1 }, "config MaxConcurrent", "default of 52"},
		{"negative attempts", func(c *Config) { c.MaxAttempts = -1 }, "config MaxAttempts", "default of 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mod(&c)
			err := c.Validate()
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Validate = %v, want *Error", err)
			}
			if e.Kind != KindConfig || e.Op != tt.op || !strings.Contains(e.Remedy, tt.inRemedy) {
				t.Errorf("got kind %v op %q remedy %q; want config, %q, remedy containing %q", e.Kind, e.Op, e.Remedy, tt.op, tt.inRemedy)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error shows the secret: %v", err)
			}
			// New must refuse the same config before any I/O.
			if _, err := New(c); KindOf(err) != KindConfig {
				t.Errorf("New = %v, want a config error", err)
			}
		})
	}
}

func TestNormalizeOrgURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://Contoso.CRM4.dynamics.com/":                 "https://contoso.crm4.dynamics.com",
		"https://contoso.api.crm.dynamics.com/api/data/v9.2": "https://contoso.api.crm.dynamics.com",
		"https://127.0.0.1:8443":                             "https://127.0.0.1:8443",
	} {
		got, err := normalizeOrgURL(in)
		if err != nil || got != want {
			t.Errorf("normalizeOrgURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATAVERSE_URL":                     " https://contoso.crm4.dynamics.com\n",
		"AZURE_TENANT_ID":                   testTenant,
		"AZURE_CLIENT_ID":                   testClient,
		"AZURE_CLIENT_CERTIFICATE_PATH":     "/etc/dvgate/app.pfx",
		"AZURE_CLIENT_CERTIFICATE_PASSWORD": " pass word ",
		"AZURE_AUTHORITY_HOST":              "https://login.microsoftonline.us/",
	}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Config{URL: "https://contoso.crm4.dynamics.com", TenantID: testTenant, ClientID: testClient,
		CertificatePath: "/etc/dvgate/app.pfx", CertificatePassword: " pass word ", AuthorityHost: "https://login.microsoftonline.us/"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}

	env = map[string]string{"DATAVERSE_URL": "https://contoso.crm4.dynamics.com", "AZURE_TENANT_ID": testTenant, "AZURE_CLIENT_ID": testClient}
	if _, err := ConfigFromEnv(func(k string) string { return env[k] }); KindOf(err) != KindConfig || !strings.Contains(err.Error(), "AZURE_CLIENT_SECRET") {
		t.Errorf("missing credential: %v", err)
	}
}

func TestConfigNeverPrintsSecret(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.CertificatePassword = "pfx-Password-0815"
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", c)
	out := strings.Join([]string{c.String(), fmt.Sprintf("%v|%+v|%#v|%s", c, c, c, c), buf.String()}, "\n")
	for _, secret := range []string{testSecret, "pfx-Password-0815"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q printed:\n%s", secret, out)
		}
	}
	if !strings.Contains(buf.String(), `"credential":"client_secret"`) || !strings.Contains(c.String(), "contoso.crm4") {
		t.Errorf("config description lacks the useful parts:\n%s", out)
	}
}
