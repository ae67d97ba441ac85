package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataverse"
)

// changeFeed in the config file and DVGATE_CHANGE_FEED_INTERVAL/_TTL in
// the environment: off unless an interval is given, and every wrong value
// named.
func TestChangeFeedConfig(t *testing.T) {
	t.Parallel()
	const ids = `"url": "https://contoso.crm4.dynamics.com", "tenantId": "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b", "clientId": "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", "clientSecret": {"env": "S"}`
	env := map[string]string{"S": "hunter2", dataverse.EnvURL: "https://contoso.crm4.dynamics.com", dataverse.EnvTenantID: "8f1c2a4e-5b6d-4e7f-9a0b-1c2d3e4f5a6b",
		dataverse.EnvClientID: "3c9e7b1a-2d4f-4a6b-8c0d-9e1f2a3b4c5d", dataverse.EnvClientSecret: "hunter2"}
	tests := []struct {
		name    string
		file    string            // "" = from the environment
		env     map[string]string // added to env
		want    ChangeFeed
		wantErr string
	}{
		{name: "file off", file: `{}`},
		{name: "file on", file: `{"changeFeed": {"interval": "30s"}}`, want: ChangeFeed{Interval: 30 * time.Second}},
		{name: "file ttl", file: `{"changeFeed": {"interval": "10s", "ttl": "6h"}}`, want: ChangeFeed{Interval: 10 * time.Second, TTL: 6 * time.Hour}},
		{name: "file no interval", file: `{"changeFeed": {"ttl": "6h"}}`, wantErr: `"interval" is required`},
		{name: "file too fast", file: `{"changeFeed": {"interval": "30ms"}}`, wantErr: "changeFeed.interval \"30ms\" is not a duration of at least 1s"},
		{name: "file ttl below interval", file: `{"changeFeed": {"interval": "1m", "ttl": "10s"}}`, wantErr: "changeFeed.ttl"},
		{name: "env off"},
		{name: "env on", env: map[string]string{EnvChangeFeedInterval: "15s"}, want: ChangeFeed{Interval: 15 * time.Second}},
		{name: "env bad", env: map[string]string{EnvChangeFeedInterval: "often"}, wantErr: EnvChangeFeedInterval},
		{name: "env ttl alone", env: map[string]string{EnvChangeFeedTTL: "1h"}, wantErr: "is set without " + EnvChangeFeedInterval},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return env[k]
			}
			src := Source{Getenv: getenv}
			if tc.file != "" {
				block := strings.TrimSuffix(strings.TrimPrefix(tc.file, "{"), "}")
				if block != "" {
					block = ", " + block
				}
				src = Source{Path: "/cfg/c.json", Getenv: getenv, ReadFile: files(map[string]string{
					"/cfg/c.json": `{"integrations": {"default": {` + ids + block + `}}}`})}
			}
			cfgs, err := src.Load()
			if err == nil && cfgs[0].Err != nil {
				err = cfgs[0].Err
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, cfgs[0].ChangeFeed); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
