package dataversetest

// Env returns the environment that configures a client of this simulator
// as a real org is configured: the org URL, the Entra authority and the app
// registration's tenant, client id and secret, under the variable names of
// the Azure SDKs and dvgate (DATAVERSE_URL, AZURE_*). A client must also
// trust the simulator's TLS certificate (Client, or its CA).
//
// The names are spelled out here rather than taken from package dataverse,
// whose own tests use this package.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"DATAVERSE_URL":        s.URL(),
		"AZURE_TENANT_ID":      s.TenantID(),
		"AZURE_CLIENT_ID":      s.ClientID(),
		"AZURE_CLIENT_SECRET":  s.ClientSecret(),
		"AZURE_AUTHORITY_HOST": s.AuthorityHost(),
	}
}
