package dataversetest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
)

// Managed identities of the simulated Azure resource (the VM, App Service
// or Container App a client runs on). By default it has a system-assigned
// identity and one user-assigned identity, each with an application user in
// the org. Their IDs are valid GUIDs, distinct from the app registration's.
const (
	DefaultSystemIdentityClientID = "5d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"
	DefaultSystemIdentityObjectID = "a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a5b"
	DefaultUserIdentityClientID   = "6e1f2a3b-4c5d-4e6f-9a7b-8c9d0e1f2a3b"
	DefaultUserIdentityObjectID   = "a1b2c3d4-0002-4e5f-8a9b-0c1d2e3f4a5b"
	// DefaultUserIdentityResourceID is the user-assigned identity's Azure
	// resource ID, the other way to name it.
	DefaultUserIdentityResourceID = "/subscriptions/0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e/resourceGroups/dvgate/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dvgate-id"
	// The systemuserids of their application users, as WhoAmI reports them.
	DefaultSystemIdentityUserID = "e07f0a66-0001-4e51-80d0-00155db07cb1"
	DefaultUserIdentityUserID   = "e07f0a66-0002-4e51-80d0-00155db07cb1"
)

// The managed identity endpoint's paths: IMDS (Azure VMs, and Container
// Apps' and AKS's IMDS-compatible endpoints) and App Service's (also
// Functions and Container Apps, which set IDENTITY_ENDPOINT).
const (
	imdsTokenPath       = "/metadata/identity/oauth2/token"
	appServiceTokenPath = "/msi/token"
	imdsAPIVersion      = "2018-02-01"
	appServiceVersion   = "2019-08-01"
)

// managedIdentity is one identity of the simulated resource; guarded by
// Server.mu.
type managedIdentity struct {
	clientID, objectID, resourceID, userID string
	system                                 bool
	assigned                               bool // assigned to the resource (enabled, for the system-assigned one)
	appUser                                bool // has an application user in the org
}

func defaultIdentities() []*managedIdentity {
	return []*managedIdentity{
		{clientID: DefaultSystemIdentityClientID, objectID: DefaultSystemIdentityObjectID, userID: DefaultSystemIdentityUserID,
			system: true, assigned: true, appUser: true},
		{clientID: DefaultUserIdentityClientID, objectID: DefaultUserIdentityObjectID, userID: DefaultUserIdentityUserID,
			resourceID: DefaultUserIdentityResourceID, assigned: true, appUser: true},
	}
}

// ManagedIdentityEndpoint returns the base URL of the simulated resource's
// managed identity endpoint, plain HTTP on loopback as IMDS and App
// Service's are ("http://127.0.0.1:PORT"). It is started on the first call
// and closed by Close. Both shapes are served:
//
//   - IMDS: GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R
//     with "Metadata: true", and client_id, object_id or msi_res_id for a
//     user-assigned identity;
//   - App Service: GET /msi/token?api-version=2019-08-01&resource=R with
//     "X-IDENTITY-HEADER: <AppServiceEnv's IDENTITY_HEADER>", and client_id,
//     object_id or mi_res_id.
//
// The tokens are the ones the simulated Entra issues (RS256, this org as
// audience), with the identity's client ID as appid and its object ID as
// oid; the Web API accepts them when the identity has an application user.
func (s *Server) ManagedIdentityEndpoint() string {
	s.miOnce.Do(func() {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		s.mu.Lock()
		s.identityHeader = base64.RawURLEncoding.EncodeToString(b)
		s.mu.Unlock()
		s.mi = httptest.NewServer(http.HandlerFunc(s.serveManagedIdentity))
	})
	return s.mi.URL
}

// IMDSEnv returns the environment that points a client at the IMDS shape of
// ManagedIdentityEndpoint: AZURE_POD_IDENTITY_AUTHORITY_HOST, which MSAL
// for .NET, Java and Node (and dvgate) read as the IMDS host instead of
// http://169.254.169.254.
func (s *Server) IMDSEnv() map[string]string {
	return map[string]string{"AZURE_POD_IDENTITY_AUTHORITY_HOST": s.ManagedIdentityEndpoint()}
}

// AppServiceEnv returns the environment App Service gives an app with a
// managed identity, pointing at ManagedIdentityEndpoint: IDENTITY_ENDPOINT
// and IDENTITY_HEADER (MSAL reads them from the process environment).
func (s *Server) AppServiceEnv() map[string]string {
	ep := s.ManagedIdentityEndpoint()
	s.mu.Lock()
	defer s.mu.Unlock()
	return map[string]string{"IDENTITY_ENDPOINT": ep + appServiceTokenPath, "IDENTITY_HEADER": s.identityHeader}
}

// SetSystemAssignedIdentity enables or disables the resource's
// system-assigned identity (Identity → System assigned → On/Off). Disabled,
// the endpoint answers as IMDS does on a VM without one: 400 "Identity not
// found".
func (s *Server) SetSystemAssignedIdentity(enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.identities {
		if id.system {
			id.assigned = enabled
		}
	}
}

// SetManagedIdentityApplicationUser sets whether the managed identity with
// this client ID has an application user in the org; without one its Web
// API calls fail with 403 0x80072560, as an app registration's do.
func (s *Server) SetManagedIdentityApplicationUser(clientID string, present bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.identities {
		if strings.EqualFold(id.clientID, clientID) {
			id.appUser = present
		}
	}
}

// identityOf returns the managed identity that a token's appid names, and
// whether it has an application user; ok is false for any other app.
func (s *Server) identityOf(appID string) (userID string, appUser, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.identities {
		if strings.EqualFold(id.clientID, appID) {
			return id.userID, id.appUser, true
		}
	}
	return "", false, false
}

// serveManagedIdentity serves both token endpoint shapes.
func (s *Server) serveManagedIdentity(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var selector func(*managedIdentity) bool
	switch r.URL.Path {
	case imdsTokenPath:
		// IMDS refuses a request without the header that proves it did not
		// come through a server-side request forgery.
		if r.Header.Get("Metadata") != "true" {
			writeJSONValue(w, http.StatusBadRequest, map[string]string{
				"error": "invalid_request", "error_description": "Required metadata header not specified"})
			return
		}
		if r.Header.Get("X-Forwarded-For") != "" {
			writeJSONValue(w, http.StatusBadRequest, map[string]string{
				"error": "invalid_request", "error_description": "Request contains X-Forwarded-For header"})
			return
		}
		if v := q.Get("api-version"); v != imdsAPIVersion {
			writeJSONValue(w, http.StatusBadRequest, map[string]string{
				"error": "invalid_request", "error_description": fmt.Sprintf("Invalid API version %q", v)})
			return
		}
		selector = identitySelector(q, "msi_res_id")
	case appServiceTokenPath:
		s.mu.Lock()
		header := s.identityHeader
		s.mu.Unlock()
		if r.Header.Get("X-IDENTITY-HEADER") != header {
			// App Service answers an absent or wrong header with 401
			// (SUPPORT.md: the body is the simulator's own).
			writeJSONValue(w, http.StatusUnauthorized, map[string]any{
				"statusCode": 401, "message": "Unauthorized: the X-IDENTITY-HEADER header is missing or wrong."})
			return
		}
		if v := q.Get("api-version"); v != appServiceVersion {
			writeJSONValue(w, http.StatusBadRequest, map[string]any{
				"statusCode": 400, "message": fmt.Sprintf("Unsupported api-version %q: use %s.", v, appServiceVersion)})
			return
		}
		selector = identitySelector(q, "mi_res_id")
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSONValue(w, http.StatusMethodNotAllowed, map[string]string{
			"error": "invalid_request", "error_description": "The request method must be GET"})
		return
	}
	s.obs.countManagedIdentityToken()
	resource := q.Get("resource")
	if resource == "" {
		writeJSONValue(w, http.StatusBadRequest, map[string]string{
			"error": "invalid_request", "error_description": "Required query variable 'resource' is missing"})
		return
	}
	s.mu.Lock()
	var id *managedIdentity
	for _, c := range s.identities {
		if c.assigned && selector(c) {
			id = c
			break
		}
	}
	lifetime := s.tokenLifetime
	var idc managedIdentity
	if id != nil {
		idc = *id
	}
	s.mu.Unlock()
	if id == nil {
		writeJSONValue(w, http.StatusBadRequest, map[string]string{
			"error": "invalid_request", "error_description": "Identity not found"})
		return
	}
	if strings.TrimSuffix(resource, "/") != s.url {
		desc := fmt.Sprintf("AADSTS500011: The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, s.tenant)
		writeJSONValue(w, http.StatusBadRequest, map[string]string{"error": "invalid_resource", "error_description": desc})
		return
	}
	now := s.clock()
	tok := s.mintToken(tokenClaims{
		Aud: resource, AppID: idc.clientID, Tid: s.tenant, Oid: idc.objectID,
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(lifetime).Unix(), Ver: "1.0",
	})
	secs := int64(math.Round(lifetime.Seconds()))
	body := map[string]any{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(now.Unix()+secs, 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    idc.clientID,
	}
	if r.URL.Path == imdsTokenPath {
		body["refresh_token"] = ""
		body["expires_in"] = strconv.FormatInt(secs, 10)
		body["ext_expires_in"] = strconv.FormatInt(secs, 10)
		body["not_before"] = strconv.FormatInt(now.Unix(), 10)
	}
	writeJSONValue(w, http.StatusOK, body)
}

// identitySelector picks the identity a request names: by client_id,
// object_id (principal_id on App Service) or resource ID (resParam), or
// the system-assigned one when it names none.
func identitySelector(q map[string][]string, resParam string) func(*managedIdentity) bool {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch {
	case get("client_id") != "":
		v := get("client_id")
		return func(id *managedIdentity) bool { return strings.EqualFold(id.clientID, v) }
	case get("object_id") != "" || get("principal_id") != "":
		v := get("object_id") + get("principal_id")
		return func(id *managedIdentity) bool { return strings.EqualFold(id.objectID, v) }
	case get(resParam) != "":
		v := get(resParam)
		return func(id *managedIdentity) bool { return id.resourceID != "" && strings.EqualFold(id.resourceID, v) }
	}
	return func(id *managedIdentity) bool { return id.system }
}
