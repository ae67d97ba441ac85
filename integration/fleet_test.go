package integration

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadFleet(t *testing.T) {
	t.Parallel()
	const integrations = `"integrations": {"default": {"url": "https://contoso.crm4.dynamics.com", "tenantId": "11111111-1111-1111-1111-111111111111", "clientId": "22222222-2222-2222-2222-222222222222", "clientSecret": {"env": "SECRET"}}}`
	env := map[string]string{"SECRET": "s3cret", "REDIS_PW": "r3dis-pw", EnvRedisURL: "redis://env:6379/1", EnvRedisPrefix: "eu", EnvRedisOpTimeout: "100ms"}
	files := map[string]string{"/etc/dvgate/redis.pw": "file-pw\n", "/etc/dvgate/redis.key": "0123456789abcdef0123456789abcdef\n"}
	tests := []struct {
		name    string
		file    string // "" = environment
		want    FleetConfig
		wantErr string
	}{
		{name: "environment", want: FleetConfig{URL: "redis://env:6379/1", Prefix: "eu", OpTimeout: 100 * time.Millisecond}},
		{name: "file without redis: alone (the environment is not read)", file: `{` + integrations + `}`},
		{name: "file", file: `{"redis": {"url": "redis://r.internal:6379/0", "prefix": "prod"}, ` + integrations + `}`,
			want: FleetConfig{URL: "redis://r.internal:6379/0", Prefix: "prod"}},
		{name: "password from env", file: `{"redis": {"url": "redis://r:6379", "password": {"env": "REDIS_PW"}}, ` + integrations + `}`,
			want: FleetConfig{URL: "redis://:r3dis-pw@r:6379"}},
		{name: "password from file", file: `{"redis": {"url": "redis://default@r:6379", "password": {"file": "redis.pw"}}, ` + integrations + `}`,
			want: FleetConfig{URL: "redis://default:file-pw@r:6379"}},
		{name: "key from file", file: `{"redis": {"url": "redis://r:6379", "key": {"file": "redis.key"}}, ` + integrations + `}`,
			want: FleetConfig{URL: "redis://r:6379", Key: []byte("0123456789abcdef0123456789abcdef")}},
		{name: "inline password", file: `{"redis": {"url": "redis://:hunter2@r:6379"}, ` + integrations + `}`, wantErr: "must not be written in the config file"},
		{name: "operation timeout", file: `{"redis": {"url": "redis://r:6379", "opTimeout": "250ms"}, ` + integrations + `}`,
			want: FleetConfig{URL: "redis://r:6379", OpTimeout: 250 * time.Millisecond}},
		{name: "operation timeout not a duration", file: `{"redis": {"url": "redis://r:6379", "opTimeout": "fast"}, ` + integrations + `}`,
			wantErr: `redis.opTimeout "fast" is not a duration`},
		{name: "empty url", file: `{"redis": {"prefix": "x"}, ` + integrations + `}`, wantErr: `"url" is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := Source{Getenv: func(k string) string { return env[k] }, ReadFile: func(p string) ([]byte, error) {
				if p == "/etc/dvgate/config.json" {
					return []byte(tt.file), nil
				}
				if v, ok := files[p]; ok {
					return []byte(v), nil
				}
				return nil, fs.ErrNotExist
			}}
			if tt.file != "" {
				src.Path = "/etc/dvgate/config.json"
				if _, err := src.Load(); err != nil {
					t.Fatalf("the integrations no longer load next to a redis section: %v", err)
				}
			}
			got, err := src.LoadFleet()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			for _, pw := range []string{"r3dis-pw", "file-pw"} {
				if strings.Contains(got.String(), pw) {
					t.Errorf("String() shows the password: %s", got)
				}
			}
		})
	}
}
