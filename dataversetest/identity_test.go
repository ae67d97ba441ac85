package dataversetest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestManagedIdentityEndpoint checks both endpoint shapes, their header
// checks and error bodies, and that the Web API accepts the tokens of an
// identity with an application user and refuses the others.
func TestManagedIdentityEndpoint(t *testing.T) {
	t.Parallel()
	s, err := NewServer(Options{Seed: EmptySeed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	as := s.AppServiceEnv()
	imds := s.IMDSEnv()["AZURE_POD_IDENTITY_AUTHORITY_HOST"] + "/metadata/identity/oauth2/token"
	q := func(ver string, kv ...string) string {
		v := url.Values{"api-version": {ver}, "resource": {s.URL()}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return "?" + v.Encode()
	}
	tests := []struct {
		name   string
		url    string
		header []string
		status int
		want   map[string]any // error body, or for 200 the client_id
	}{
		{"IMDS system-assigned", imds + q("2018-02-01"), []string{"Metadata", "true"}, 200,
			map[string]any{"client_id": DefaultSystemIdentityClientID}},
		{"IMDS user-assigned by client_id", imds + q("2018-02-01", "client_id", DefaultUserIdentityClientID), []string{"Metadata", "true"}, 200,
			map[string]any{"client_id": DefaultUserIdentityClientID}},
		{"IMDS user-assigned by msi_res_id", imds + q("2018-02-01", "msi_res_id", DefaultUserIdentityResourceID), []string{"Metadata", "true"}, 200,
			map[string]any{"client_id": DefaultUserIdentityClientID}},
		{"IMDS without Metadata header", imds + q("2018-02-01"), nil, 400,
			map[string]any{"error": "invalid_request", "error_description": "Required metadata header not specified"}},
		{"IMDS unknown identity", imds + q("2018-02-01", "client_id", "0f0e0d0c-0b0a-4909-8807-060504030201"), []string{"Metadata", "true"}, 400,
			map[string]any{"error": "invalid_request", "error_description": "Identity not found"}},
		{"App Service system-assigned", as["IDENTITY_ENDPOINT"] + q("2019-08-01"), []string{"X-IDENTITY-HEADER", as["IDENTITY_HEADER"]}, 200,
			map[string]any{"client_id": DefaultSystemIdentityClientID}},
		{"App Service user-assigned by mi_res_id", as["IDENTITY_ENDPOINT"] + q("2019-08-01", "mi_res_id", DefaultUserIdentityResourceID),
			[]string{"X-IDENTITY-HEADER", as["IDENTITY_HEADER"]}, 200, map[string]any{"client_id": DefaultUserIdentityClientID}},
		{"App Service without header", as["IDENTITY_ENDPOINT"] + q("2019-08-01"), nil, 401,
			map[string]any{"statusCode": 401.0, "message": "Unauthorized: the X-IDENTITY-HEADER header is missing or wrong."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tt.url, nil)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var body map[string]any
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("not JSON: %s", b)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.status != 200 {
				if diff := cmp.Diff(tt.want, body); diff != "" {
					t.Errorf("error body (-want +got):\n%s", diff)
				}
				return
			}
			if body["client_id"] != tt.want["client_id"] || body["token_type"] != "Bearer" || body["expires_on"] == nil {
				t.Errorf("token answer %v", body)
			}
			// The Web API accepts the token as the identity's application user.
			who, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/api/data/v9.2/WhoAmI", nil)
			who.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
			wr, err := s.Client().Do(who)
			if err != nil {
				t.Fatal(err)
			}
			wr.Body.Close()
			if wr.StatusCode != 200 {
				t.Errorf("WhoAmI with the identity's token: %d", wr.StatusCode)
			}
		})
	}
	if c := s.Counters(); c.ManagedIdentityToken != 6 || c.Token != 0 {
		t.Errorf("counters: managed identity %d, Entra %d; want 6 (the requests past the header check), 0", c.ManagedIdentityToken, c.Token)
	}

	// Without an application user, the identity's calls are refused.
	s.SetManagedIdentityApplicationUser(DefaultSystemIdentityClientID, false)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, imds+q("2018-02-01"), nil)
	req.Header.Set("Metadata", "true")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	who, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+"/api/data/v9.2/WhoAmI", nil)
	who.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	wr, err := s.Client().Do(who)
	if err != nil {
		t.Fatal(err)
	}
	wr.Body.Close()
	if wr.StatusCode != http.StatusForbidden {
		t.Errorf("WhoAmI without the identity's application user: %d, want 403", wr.StatusCode)
	}
}
