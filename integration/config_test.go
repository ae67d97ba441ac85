package integration

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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
