package dataverse

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults for the zero values of Config fields.
const (
	DefaultAuthorityHost = "https://login.microsoftonline.com/"
	DefaultMaxConcurrent = 52 // Dataverse's per-user concurrent request limit (api-limits.md)
	DefaultMaxAttempts   = 4
	// DefaultSlotWait bounds the wait for a concurrency slot: past it a
	// request is shed with KindBusy rather than queued behind 52 slow ones.
	DefaultSlotWait = 2 * time.Second
	// APIPath is the Web API path under the org URL.
	APIPath = "/api/data/v9.2/"
)

// Config describes one Dataverse environment and the identity that signs
// in to it: an app registration (TenantID, ClientID and a client secret, a
// certificate or a federated token file) or a managed identity. At least
// one credential must be set; when several are, the first in
// CredentialOrder is used (as azidentity's DefaultAzureCredential chooses)
// and the others are reported by Config.Credentials.
type Config struct {
	// URL is the org URL, https://<org>.crm4.dynamics.com (any region, also
	// the org.api.crmN form). A copied Web API endpoint (…/api/data/v9.2) is
	// accepted; New normalizes it to the root without a trailing slash.
	URL      string
	TenantID string // Directory (tenant) ID, a GUID
	ClientID string // Application (client) ID, a GUID

	ClientSecret        string
	CertificatePath     string // PEM (certificate + unencrypted RSA key) or PKCS#12 (.pfx/.p12)
	CertificatePassword string // for PKCS#12 only
	FederatedTokenFile  string // Kubernetes workload identity: re-read on every token request
	// ManagedIdentity signs in as a managed identity of the Azure resource
	// this runs on (VM, App Service, Container Apps): "system" for its
	// system-assigned identity, or a user-assigned identity's client ID (a
	// GUID) or Azure resource ID (/subscriptions/…/userAssignedIdentities/NAME).
	// TenantID and ClientID are not used with it. MSAL finds the endpoint:
	// App Service's from IDENTITY_ENDPOINT and IDENTITY_HEADER in the
	// process environment, else IMDS.
	ManagedIdentity string
	// IMDSHost replaces http://169.254.169.254 as the IMDS host of a
	// managed identity ("" = the real one), as AZURE_POD_IDENTITY_AUTHORITY_HOST
	// does for MSAL in other languages: for IMDS-compatible proxies, and the
	// simulator.
	IMDSHost string
	// ClientSecretExpiresOn is when the client secret expires, as the admin
	// states it (Entra does not tell the app): reported by Conn.Credential
	// and named in the remedy of an expired secret. Zero: not stated.
	ClientSecretExpiresOn time.Time

	AuthorityHost string       // default DefaultAuthorityHost
	HTTPClient    *http.Client // base client (TLS roots, proxy); nil = a tuned default
	MaxConcurrent int          // per-org cap on concurrent requests; 0 = DefaultMaxConcurrent
	MaxAttempts   int          // attempts for idempotent GETs; 0 = DefaultMaxAttempts
	// SlotWait bounds how long a request waits for one of the MaxConcurrent
	// slots before it fails with KindBusy (RetryAfter 1 s); 0 =
	// DefaultSlotWait, negative = no bound (only the caller's context).
	// Measured in real time, like context deadlines.
	SlotWait  time.Duration
	UserAgent string       // "" = DefaultUserAgent()
	Logger    *slog.Logger // nil = discard
	Clock     Clock        // nil = the real clock
}

// Environment variables read by ConfigFromEnv (the azidentity names, so the
// AKS workload identity webhook's injected variables work as they are).
const (
	EnvURL                 = "DATAVERSE_URL"
	EnvTenantID            = "AZURE_TENANT_ID"
	EnvClientID            = "AZURE_CLIENT_ID"
	EnvClientSecret        = "AZURE_CLIENT_SECRET"
	EnvCertificatePath     = "AZURE_CLIENT_CERTIFICATE_PATH"
	EnvCertificatePassword = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
	EnvFederatedTokenFile  = "AZURE_FEDERATED_TOKEN_FILE"
	EnvAuthorityHost       = "AZURE_AUTHORITY_HOST"
	// EnvManagedIdentity is dvgate's own (azidentity has no such
	// variable): "system", or a user-assigned identity's client ID or
	// resource ID. AZURE_CLIENT_ID is not read as the identity, since it
	// names the app registration here.
	EnvManagedIdentity = "DVGATE_MANAGED_IDENTITY"
	EnvIMDSHost        = "AZURE_POD_IDENTITY_AUTHORITY_HOST"
)

// ManagedIdentitySystem is the value of Config.ManagedIdentity for the
// resource's system-assigned identity.
const ManagedIdentitySystem = "system"

// CredentialOrder is the order in which a credential is chosen when several
// are configured: azidentity's DefaultAzureCredential order (environment:
// secret, then certificate; then workload identity; then managed identity).
var CredentialOrder = []CredentialKind{CredentialSecret, CredentialCertificate, CredentialFederated, CredentialManagedIdentity}

// Credentials reports the credential c signs in with (the first of
// CredentialOrder that is configured; "" when none is) and the others
// that are configured but not used.
func (c Config) Credentials() (use CredentialKind, ignored []CredentialKind) {
	for _, k := range CredentialOrder {
		set := false
		switch k {
		case CredentialSecret:
			set = c.ClientSecret != ""
		case CredentialCertificate:
			set = c.CertificatePath != ""
		case CredentialFederated:
			set = c.FederatedTokenFile != ""
		case CredentialManagedIdentity:
			set = c.ManagedIdentity != ""
		}
		switch {
		case !set:
		case use == "":
			use = k
		default:
			ignored = append(ignored, k)
		}
	}
	return use, ignored
}

// ConfigFromEnv builds a Config from environment variables (pass os.Getenv)
// and validates it. Values are trimmed of surrounding white space, which a
// copied secret or a mounted file often carries. The Config is returned even
// when validation fails, so callers can log it (it never prints secrets).
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{
		URL:                 get(EnvURL),
		TenantID:            get(EnvTenantID),
		ClientID:            get(EnvClientID),
		ClientSecret:        get(EnvClientSecret),
		CertificatePath:     get(EnvCertificatePath),
		CertificatePassword: getenv(EnvCertificatePassword), // a password may legitimately contain spaces
		FederatedTokenFile:  get(EnvFederatedTokenFile),
		ManagedIdentity:     get(EnvManagedIdentity),
		IMDSHost:            get(EnvIMDSHost),
		AuthorityHost:       get(EnvAuthorityHost),
	}
	return c, c.Validate()
}

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// apiPathPattern matches a copied Web API endpoint path.
var apiPathPattern = regexp.MustCompile(`(?i)^/api/data/v\d+\.\d+/?$`)

func configError(field, msg, remedy string) *Error {
	return &Error{Kind: KindConfig, Op: "config " + field, Message: msg, Remedy: remedy}
}

// Validate checks the configuration without any network or file I/O and
// returns an *Error of KindConfig naming the field and the fix.
func (c Config) Validate() error {
	if _, err := normalizeOrgURL(c.URL); err != nil {
		return err
	}
	use, _ := c.Credentials()
	if use == "" {
		return configError("credential", "no credential is configured", remedyNoCredential)
	}
	if use != CredentialManagedIdentity || c.TenantID != "" {
		if c.TenantID == "" {
			return configError("TenantID", "the tenant ID is empty",
				"Set AZURE_TENANT_ID to the Directory (tenant) ID from the app registration's overview page.")
		}
		if !guidPattern.MatchString(c.TenantID) {
			// The value is not echoed: a secret pasted into the wrong variable
			// would end up in logs.
			return configError("TenantID", "AZURE_TENANT_ID (the tenant ID) is not a GUID",
				"Use the Directory (tenant) ID GUID from the app registration's overview page, not a domain name.")
		}
	}
	if use != CredentialManagedIdentity || c.ClientID != "" {
		if c.ClientID == "" {
			return configError("ClientID", "the client ID is empty",
				"Set AZURE_CLIENT_ID to the Application (client) ID from the app registration's overview page.")
		}
		if !guidPattern.MatchString(c.ClientID) {
			return configError("ClientID", "AZURE_CLIENT_ID (the client ID) is not a GUID",
				"Use the Application (client) ID GUID from the app registration's overview page.")
		}
	}
	if c.ManagedIdentity != "" {
		if _, err := managedIdentityID(c.ManagedIdentity); err != nil {
			return err
		}
	}
	if c.IMDSHost != "" && use == CredentialManagedIdentity {
		if u, err := url.Parse(c.IMDSHost); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			return configError("IMDSHost", "AZURE_POD_IDENTITY_AUTHORITY_HOST (the IMDS host) is not a URL without path, such as http://169.254.169.254",
				"Set AZURE_POD_IDENTITY_AUTHORITY_HOST to the scheme and host of an IMDS-compatible endpoint, or leave it empty.")
		}
	}
	if guidPattern.MatchString(c.ClientSecret) {
		// Secret IDs are GUIDs; secret values never are. Say so before Entra
		// answers with a less helpful AADSTS7000215.
		return configError("ClientSecret", "the client secret looks like a Secret ID (a GUID), not a secret value",
			RemedySecretInvalid)
	}
	if c.CertificatePassword != "" && c.CertificatePath == "" {
		return configError("CertificatePassword", "a certificate password is set without a certificate path",
			"Set AZURE_CLIENT_CERTIFICATE_PATH, or remove AZURE_CLIENT_CERTIFICATE_PASSWORD.")
	}
	if _, err := normalizeAuthorityHost(c.AuthorityHost); err != nil {
		return err
	}
	if c.MaxConcurrent < 0 {
		return configError("MaxConcurrent", fmt.Sprintf("MaxConcurrent is %d", c.MaxConcurrent),
			"Use 0 for the default of 52, or a positive number.")
	}
	if c.MaxAttempts < 0 {
		return configError("MaxAttempts", fmt.Sprintf("MaxAttempts is %d", c.MaxAttempts),
			"Use 0 for the default of 4, or a positive number.")
	}
	return nil
}

// normalizeOrgURL returns the org URL as scheme://host[:port], lower-case,
// without a trailing slash.
func normalizeOrgURL(raw string) (string, error) {
	const remedy = "Set DATAVERSE_URL to the environment URL from the Power Platform admin center, e.g. https://contoso.crm4.dynamics.com."
	if raw == "" {
		return "", configError("URL", "the organization URL is empty", remedy)
	}
	// Errors show the URL only as showURL renders it: a URL that does not
	// parse, or its user info, query and fragment, may hold a password or
	// a token (https://user:secret@host, ?sig=...).
	u, err := url.Parse(raw)
	if err != nil {
		return "", configError("URL", "DATAVERSE_URL (the organization URL) does not parse as a URL", remedy)
	}
	if u.User != nil {
		return "", configError("URL", "DATAVERSE_URL (the organization URL) has user info (user:password@): credentials do not belong in the URL",
			remedy+" Remove the user name and password, and rotate the password if it was a real one.")
	}
	if u.Scheme != "https" {
		return "", configError("URL", fmt.Sprintf("the organization URL %s does not use https", showURL(u)),
			"Use the https:// environment URL from the Power Platform admin center; Dataverse serves only https.")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", configError("URL", "DATAVERSE_URL (the organization URL) has no host", remedy)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", configError("URL", fmt.Sprintf("the organization URL %s has a query or a fragment", showURL(u)), remedy)
	}
	if p := strings.TrimRight(u.Path, "/"); p != "" && !apiPathPattern.MatchString(u.Path) {
		return "", configError("URL", fmt.Sprintf("the organization URL %s has a path", showURL(u)), remedy)
	}
	return "https://" + strings.ToLower(u.Host), nil
}

// showURL renders a parsed URL for an error message or a log line without
// what may be secret: user info, query and fragment are replaced by a note
// that they are there.
func showURL(u *url.URL) string {
	v := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	s := strconv.Quote(v.String())
	var hidden []string
	if u.User != nil {
		hidden = append(hidden, "user info")
	}
	if u.RawQuery != "" || u.ForceQuery {
		hidden = append(hidden, "query")
	}
	if u.Fragment != "" {
		hidden = append(hidden, "fragment")
	}
	if len(hidden) > 0 {
		s += " (" + strings.Join(hidden, ", ") + " not shown)"
	}
	return s
}

// showValue renders a configured value for String and LogValue: as it is
// when it passes check, otherwise only its length, since a value in the
// wrong variable (a secret pasted into AZURE_CLIENT_ID, a URL with a
// password) must not reach a log.
func showValue(v string, check func(string) bool) string {
	if v == "" || check(v) {
		return v
	}
	return fmt.Sprintf("<invalid, %d characters, not shown>", len(v))
}

// showConfigURL is showValue for a URL: a URL that parses is shown without
// its user info, query and fragment.
func showConfigURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("<invalid, %d characters, not shown>", len(raw))
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" {
		return raw
	}
	return showURL(u)
}

func isGUID(s string) bool { return guidPattern.MatchString(s) }

// normalizeAuthorityHost returns the authority host with a trailing slash.
func normalizeAuthorityHost(raw string) (string, error) {
	if raw == "" {
		return DefaultAuthorityHost, nil
	}
	const remedy = "Set AZURE_AUTHORITY_HOST to an https URL such as https://login.microsoftonline.com/, or leave it empty."
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", configError("AuthorityHost", "AZURE_AUTHORITY_HOST (the authority host) is not a URL", remedy)
	}
	if u.User != nil {
		return "", configError("AuthorityHost", "AZURE_AUTHORITY_HOST (the authority host) has user info (user:password@)", remedy)
	}
	if u.Scheme != "https" {
		return "", configError("AuthorityHost", fmt.Sprintf("the authority host %s does not use https", showURL(u)), remedy)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", configError("AuthorityHost", fmt.Sprintf("the authority host %s has a path, query or fragment", showURL(u)), remedy)
	}
	return "https://" + strings.ToLower(u.Host) + "/", nil
}

// credentialKind names the configured credential (never its value).
func (c Config) credentialKind() string {
	switch {
	case c.ClientSecret != "":
		return "client_secret"
	case c.CertificatePath != "":
		return "certificate"
	case c.FederatedTokenFile != "":
		return "federated_token_file"
	case c.ManagedIdentity != "":
		return "managed_identity"
	}
	return "none"
}

// String describes the configuration without secrets.
func (c Config) String() string {
	s := fmt.Sprintf("dataverse.Config{URL: %q, TenantID: %q, ClientID: %q, Credential: %s",
		showConfigURL(c.URL), showValue(c.TenantID, isGUID), showValue(c.ClientID, isGUID), c.credentialKind())
	if c.CertificatePath != "" {
		s += fmt.Sprintf(", CertificatePath: %q", c.CertificatePath)
	}
	if c.FederatedTokenFile != "" {
		s += fmt.Sprintf(", FederatedTokenFile: %q", c.FederatedTokenFile)
	}
	if c.ManagedIdentity != "" {
		s += fmt.Sprintf(", ManagedIdentity: %q", showValue(c.ManagedIdentity, validManagedIdentity))
	}
	if c.AuthorityHost != "" {
		s += fmt.Sprintf(", AuthorityHost: %q", showConfigURL(c.AuthorityHost))
	}
	return s + "}"
}

// GoString keeps %#v from printing the secret.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without secrets.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("url", showConfigURL(c.URL)),
		slog.String("tenantId", showValue(c.TenantID, isGUID)),
		slog.String("clientId", showValue(c.ClientID, isGUID)),
		slog.String("credential", c.credentialKind()),
	}
	if c.CertificatePath != "" {
		attrs = append(attrs, slog.String("certificatePath", c.CertificatePath))
	}
	if c.FederatedTokenFile != "" {
		attrs = append(attrs, slog.String("federatedTokenFile", c.FederatedTokenFile))
	}
	if c.ManagedIdentity != "" {
		attrs = append(attrs, slog.String("managedIdentity", showValue(c.ManagedIdentity, validManagedIdentity)))
	}
	if c.AuthorityHost != "" {
		attrs = append(attrs, slog.String("authorityHost", showConfigURL(c.AuthorityHost)))
	}
	return slog.GroupValue(attrs...)
}
