package integration

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataverse"
)

// files is a Source.ReadFile over an in-memory file system.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		s, ok := m[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
}

func TestConfigFile(t *testing.T) {
	t.Parallel()
	const ids = `"url": "https://contoso.crm4.dynamics.com", "tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d"`
	tests := []struct {
		name, config, wantErr string
	}{
		{"inline secret", `{"integrations": {"default": {` + ids + `, "clientSecret": "hunter2"}}}`, "secrets must not be written in the config file"},
		{"both refs", `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "A", "file": "b"}}}}`, `exactly one of "env" and "file"`},
		{"missing env", `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "NOPE"}}}}`, "NOPE is empty or unset"},
		{"missing file", `{"integrations": {"default": {` + ids + `, "clientSecret": {"file": "nope"}}}}`, "/cfg/nope does not exist"},
		{"typo", `{"integrations": {"default": {` + ids + `, "clientSecrets": {"env": "S"}}}}`, `unknown field "clientSecrets"`},
		{"bad mode", `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "S"}, "customerLookup": "leads"}}}`, "customerLookup"},
		{"no credential", `{"integrations": {"default": {` + ids + `}}}`, `integration "default"`},
		{"bad name", `{"integrations": {"a b": {` + ids + `, "clientSecret": {"env": "S"}}}}`, "names are"},
		{"empty", `{}`, "no integrations"},
		{"ok", `{"integrations": {"default": {` + ids + `, "clientSecret": {"env": "S"}}}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := Source{Path: "/cfg/c.json", ReadFile: files(map[string]string{"/cfg/c.json": tc.config}), Getenv: func(k string) string {
				if k == "S" {
					return "hunter2"
				}
				return ""
			}}
			cfgs, err := src.Load()
			if err == nil && cfgs[0].Err != nil {
				err = cfgs[0].Err // an error of this integration alone
			}
			if tc.wantErr == "" {
				if err != nil || len(cfgs) != 1 || cfgs[0].Dataverse.ClientSecret != "hunter2" {
					t.Fatalf("Load: %v %v", cfgs, err)
				}
				if s := cfgs[0].String(); strings.Contains(s, "hunter2") {
					t.Errorf("String() shows the secret: %s", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load error %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

// The summary settings, from the config file and from the environment.
func TestSummaryConfig(t *testing.T) {
	t.Parallel()
	const ids = `"url": "https://contoso.crm4.dynamics.com", "tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", "clientSecret": {"env": "S"}`
	env := map[string]string{"S": "hunter2", "DATAVERSE_URL": "https://contoso.crm4.dynamics.com",
		"AZURE_TENANT_ID": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "AZURE_CLIENT_ID": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d",
		"AZURE_CLIENT_SECRET": "hunter2"}
	tests := []struct {
		name, config string
		env          map[string]string
		wantStates   []int
		wantContacts bool
		wantErr      string
	}{
		{name: "file default", config: `{"integrations": {"default": {` + ids + `}}}`},
		{name: "file states", config: `{"integrations": {"default": {` + ids + `, "summaryStates": [3, 4], "summaryIncludesContacts": true}}}`,
			wantStates: []int{3, 4}, wantContacts: true},
		{name: "file bad state", config: `{"integrations": {"default": {` + ids + `, "summaryStates": [3, 9]}}}`, wantErr: `summaryStates: "9" is not a salesorder state`},
		{name: "env default"},
		{name: "env states", env: map[string]string{"DVGATE_SUMMARY_STATES": "4, 3", "DVGATE_SUMMARY_INCLUDES_CONTACTS": "true"},
			wantStates: []int{4, 3}, wantContacts: true},
		{name: "env bad state", env: map[string]string{"DVGATE_SUMMARY_STATES": "canceled"}, wantErr: "DVGATE_SUMMARY_STATES"},
		{name: "env bad flag", env: map[string]string{"DVGATE_SUMMARY_INCLUDES_CONTACTS": "sometimes"}, wantErr: "is not true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := Source{Getenv: func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return env[k]
			}}
			if tc.config != "" {
				src.Path, src.ReadFile = "/cfg/c.json", files(map[string]string{"/cfg/c.json": tc.config})
			}
			cfgs, err := src.Load()
			if err != nil {
				t.Fatal(err)
			}
			c := cfgs[0]
			if tc.wantErr != "" {
				if c.Err == nil || !strings.Contains(c.Err.Error(), tc.wantErr) {
					t.Fatalf("Err %v, want it to contain %q", c.Err, tc.wantErr)
				}
				return
			}
			if c.Err != nil {
				t.Fatal(c.Err)
			}
			if diff := cmp.Diff(tc.wantStates, c.SummaryStates); diff != "" || c.SummaryIncludesContacts != tc.wantContacts {
				t.Errorf("states (-want +got):\n%s\ncontacts %v, want %v", diff, c.SummaryIncludesContacts, tc.wantContacts)
			}
			plain := c
			plain.SummaryStates, plain.SummaryIncludesContacts = nil, false
			if changed := tc.wantStates != nil || tc.wantContacts; changed == (plain.Fingerprint() == c.Fingerprint()) {
				t.Errorf("fingerprint unchanged by the summary settings")
			}
		})
	}
}

// Managed identity from the config file and the environment, and several
// credentials at once: the first in dataverse.CredentialOrder signs in and
// a warning names the others (it used to be an error).
func TestCredentialConfig(t *testing.T) {
	t.Parallel()
	const (
		url    = `"url": "https://contoso.crm4.dynamics.com"`
		ids    = `"tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d"`
		userMI = "6e1f2a3b-4c5d-4e6f-9a7b-8c9d0e1f2a3b"
	)
	base := map[string]string{"S": "hunter2", "DATAVERSE_URL": "https://contoso.crm4.dynamics.com"}
	tests := []struct {
		name, config string
		env          map[string]string
		use          dataverse.CredentialKind
		mi           string
		warnings     []string
	}{
		{name: "file: system-assigned, no tenant or app", config: `{"integrations": {"default": {` + url + `, "managedIdentity": "system"}}}`,
			use: dataverse.CredentialManagedIdentity, mi: "system"},
		{name: "file: user-assigned", config: `{"integrations": {"default": {` + url + `, "managedIdentity": "` + userMI + `"}}}`,
			use: dataverse.CredentialManagedIdentity, mi: userMI},
		{name: "file: secret and managed identity", config: `{"integrations": {"default": {` + url + `, ` + ids + `, "clientSecret": {"env": "S"}, "managedIdentity": "system"}}}`,
			use: dataverse.CredentialSecret, mi: "system",
			warnings: []string{"several credentials are configured: signing in with the client secret; not used: managed identity (the order is client secret > certificate > federated token > managed identity): remove the ones you do not mean to use"}},
		{name: "env: system-assigned", env: map[string]string{"DVGATE_MANAGED_IDENTITY": "system"},
			use: dataverse.CredentialManagedIdentity, mi: "system"},
		{name: "env: secret and token file", env: map[string]string{"AZURE_TENANT_ID": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
			"AZURE_CLIENT_ID": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", "AZURE_CLIENT_SECRET": "hunter2", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"},
			use:      dataverse.CredentialSecret,
			warnings: []string{"several credentials are configured: signing in with the client secret; not used: federated token (the order is client secret > certificate > federated token > managed identity): remove the ones you do not mean to use"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := Source{Getenv: func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return base[k]
			}}
			if tc.config != "" {
				src.Path, src.ReadFile = "/cfg/c.json", files(map[string]string{"/cfg/c.json": tc.config})
			}
			cfgs, err := src.Load()
			if err != nil {
				t.Fatal(err)
			}
			c := cfgs[0]
			if c.Err != nil {
				t.Fatal(c.Err)
			}
			if use, _ := c.Dataverse.Credentials(); use != tc.use || c.Dataverse.ManagedIdentity != tc.mi {
				t.Errorf("credential %q, managed identity %q; want %q, %q", use, c.Dataverse.ManagedIdentity, tc.use, tc.mi)
			}
			if diff := cmp.Diff(tc.warnings, c.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if strings.Contains(strings.Join(c.Warnings, " ")+c.String(), "hunter2") {
				t.Error("the secret is shown")
			}
			other := c
			other.Dataverse.ManagedIdentity = "other"
			if other.Fingerprint() == c.Fingerprint() {
				t.Error("the fingerprint ignores the managed identity")
			}
		})
	}
}
