package dataverse

import (
	"fmt"
	"time"
)

// CredentialKind names the kind of credential a Conn signs in with.
type CredentialKind string

// The credential kinds.
const (
	CredentialSecret      CredentialKind = "client secret"
	CredentialCertificate CredentialKind = "certificate"
	CredentialFederated   CredentialKind = "federated token"
	// CredentialManagedIdentity: a managed identity of the Azure resource
	// (no secret in dvgate's hands, nothing to expire).
	CredentialManagedIdentity CredentialKind = "managed identity"
)

// Credential describes what a Conn signs in with and when it stops
// working, so that the date can be watched instead of remembered. It never
// holds the credential itself.
type Credential struct {
	Kind CredentialKind
	// ExpiresOn is the certificate's NotAfter, or for a client secret the
	// date the admin stated (Config.ClientSecretExpiresOn: Entra does not
	// reveal it to the app). Zero: not stated (a secret), or none (a
	// federated credential, which has no secret to expire).
	ExpiresOn time.Time
	// Detail says more about it, never a secret: for a managed identity,
	// which one and through which endpoint ("system-assigned, IMDS",
	// "user-assigned <client ID>, App Service"); "workload identity" for
	// a federated token.
	Detail string
}

// String names the credential for a log line: its kind and detail.
func (c Credential) String() string {
	if c.Detail == "" {
		return string(c.Kind)
	}
	return string(c.Kind) + " (" + c.Detail + ")"
}

// HasSecret reports whether the credential is a secret or certificate
// that expires; a federated token or a managed identity has none.
func (c Credential) HasSecret() bool {
	return c.Kind == CredentialSecret || c.Kind == CredentialCertificate
}

// Credential reports the credential the connection signs in with. The
// certificate is the one read at New: a renewed file needs a new Conn.
func (c *Conn) Credential() Credential { return c.cred }

// DateOnly formats t as the date an admin sees in the app registration's
// "Certificates & secrets" page (UTC).
func DateOnly(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// remedyRotateSecret is how a secret is replaced without downtime.
const remedyRotateSecret = "create a new one (app registration → Certificates & secrets → New client secret) and rotate it in place: update the secret file or variable, and its expiry date, and dvgate checks it with WhoAmI before it swaps; then delete the old secret in Entra."

// remedySecretExpired is the remedy of AADSTS7000222, with the stated
// expiry date when there is one.
func remedySecretExpired(expires time.Time) string {
	if expires.IsZero() {
		return RemedySecretExpired
	}
	return fmt.Sprintf("The client secret expired on %s: %s", DateOnly(expires), remedyRotateSecret)
}

// remedyCertificateExpired is the remedy of a certificate past NotAfter.
func remedyCertificateExpired(notAfter time.Time) string {
	return fmt.Sprintf("The certificate expired on %s: create a new one, upload its public key under Certificates & secrets, and replace the certificate file (dvgate checks it with WhoAmI before it swaps); then delete the old certificate in Entra.", DateOnly(notAfter))
}
