package dataverse

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// A secret pasted into the wrong variable (AZURE_CLIENT_ID,
// AZURE_TENANT_ID) or carried in the URL (user:password@, a query token)
// must not appear in Validate's error, nor in the Config's String, GoString
// or LogValue, which ConfigFromEnv's callers log next to the error. The
// error must still name the variable that is wrong.
func TestConfigErrorsDoNotEchoValues(t *testing.T) {
	t.Parallel()
	const leak = "Kq8~pasted.SECRET-value_0042"
	tests := []struct {
		name  string
		mod   func(*Config)
		names string // the variable the error must name
	}{
		{"secret in client id", func(c *Config) { c.ClientID = leak }, "AZURE_CLIENT_ID"},
		{"secret in tenant id", func(c *Config) { c.TenantID = leak }, "AZURE_TENANT_ID"},
		{"password in URL", func(c *Config) { c.URL = "https://admin:" + leak + "@contoso.crm4.dynamics.com" }, "DATAVERSE_URL"},
		{"password in http URL", func(c *Config) { c.URL = "http://admin:" + leak + "@contoso.crm4.dynamics.com" }, "DATAVERSE_URL"},
		{"token in URL query", func(c *Config) { c.URL = "https://contoso.crm4.dynamics.com/?sig=" + leak }, "organization URL"},
		{"token in http URL query", func(c *Config) { c.URL = "http://contoso.crm4.dynamics.com/?sig=" + leak }, "organization URL"},
		{"unparsable URL", func(c *Config) { c.URL = "https://contoso.crm4.dynamics.com/%zz" + leak }, "DATAVERSE_URL"},
		{"password in authority", func(c *Config) { c.AuthorityHost = "https://u:" + leak + "@login.microsoftonline.com/" }, "AZURE_AUTHORITY_HOST"},
		{"token in authority query", func(c *Config) { c.AuthorityHost = "https://login.microsoftonline.com/?k=" + leak }, "authority host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mod(&c)
			err := c.Validate()
			if KindOf(err) != KindConfig {
				t.Fatalf("Validate = %v, want a config error", err)
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Errorf("error does not name %s: %v", tt.names, err)
			}
			var logged bytes.Buffer
			slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", c)
			for what, s := range map[string]string{
				"error": err.Error(), "String": c.String(), "GoString": fmt.Sprintf("%#v", c), "%v": fmt.Sprintf("%v", c),
				"LogValue": logged.String(),
			} {
				if strings.Contains(s, leak) {
					t.Errorf("%s shows the value: %s", what, s)
				}
			}
		})
	}
}

// Valid values are still shown as they are: the redaction must not make
// an ordinary configuration unreadable in the log.
func TestConfigStringShowsValidValues(t *testing.T) {
	t.Parallel()
	c := validConfig()
	for _, want := range []string{c.URL, testTenant, testClient} {
		if !strings.Contains(c.String(), want) {
			t.Errorf("String() = %s, lacks %s", c.String(), want)
		}
	}
}
