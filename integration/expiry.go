package integration

import (
	"fmt"
	"math"
	"time"

	"github.com/dvgate/dvgate/dataverse"
)

// Credential is what an integration signs in with and when that stops
// working, for every place an operator looks: the gauge
// dvgate_credential_expiry_timestamp_seconds, the daily warning, /readyz,
// dvgate test and the MCP check_connection tool.
type Credential struct {
	// Kind is "" when the integration has no working backend (a broken
	// configuration: its Reason says why).
	Kind dataverse.CredentialKind
	// ExpiresOn is the certificate's NotAfter or the secret's stated
	// expiry; zero when not stated (a secret) or none (federated, managed
	// identity).
	ExpiresOn time.Time
	// Detail is dataverse.Credential's: which managed identity and through
	// which endpoint, "workload identity"; never a secret.
	Detail string
}

// String names the credential for a log line ("managed identity
// (system-assigned, IMDS)").
func (c Credential) String() string {
	return dataverse.Credential{Kind: c.Kind, Detail: c.Detail}.String()
}

// CredentialReporter is implemented by Backends that know their
// credential (GatewayConnector's do). The registry asks once per backend.
type CredentialReporter interface {
	Credential() dataverse.Credential
}

// WarnBefore is how long before the expiry dvgate starts warning, once a
// day.
const WarnBefore = 30 * 24 * time.Hour

// warnEvery is how often the warning repeats.
const warnEvery = 24 * time.Hour

// DaysLeft is the number of whole days from now until the expiry (negative
// once expired: -1 on the day after); ok is false when the expiry is not
// known.
func (c Credential) DaysLeft(now time.Time) (days int, ok bool) {
	if c.ExpiresOn.IsZero() {
		return 0, false
	}
	return int(math.Floor(c.ExpiresOn.Sub(now).Hours() / 24)), true
}

// Describe is one sentence about the credential's expiry for a person: the
// date and days left, that it is not monitored and how to fix that, or
// that there is nothing to expire.
func (c Credential) Describe(now time.Time) string {
	switch {
	case c.Kind == "":
		return "The credential is not known: the integration cannot start."
	case c.Kind == dataverse.CredentialFederated:
		return "The federated credential has no secret to expire."
	case c.Kind == dataverse.CredentialManagedIdentity:
		return "The managed identity has no secret to expire: Azure rotates its credentials."
	case c.ExpiresOn.IsZero():
		return fmt.Sprintf("The client secret's expiry is not monitored: set clientSecretExpiresOn in the config file or %s (YYYY-MM-DD, from the app registration's Certificates & secrets page).", EnvClientSecretExpiresOn)
	}
	days, _ := c.DaysLeft(now)
	if days < 0 {
		return fmt.Sprintf("The %s expired on %s: create a new one and rotate it in place.", c.Kind, dataverse.DateOnly(c.ExpiresOn))
	}
	return fmt.Sprintf("The %s expires on %s (%d days left).", c.Kind, dataverse.DateOnly(c.ExpiresOn), days)
}

// credentialOf asks b for its credential; the zero Credential when it
// cannot say (a broken backend).
func credentialOf(b Backend) Credential {
	if cr, ok := b.(CredentialReporter); ok {
		c := cr.Credential()
		return Credential{Kind: c.Kind, ExpiresOn: c.ExpiresOn, Detail: c.Detail}
	}
	return Credential{}
}

// logCredential says once, when an integration's backend starts serving
// (start-up, or a new configuration applied), which credential it signs in
// with (never its value) and what the operator needs to know about its
// expiry.
func (r *Registry) logCredential(name string, c Credential) {
	switch {
	case c.Kind == "":
	case c.Kind == dataverse.CredentialFederated:
		r.log.Info("credential expiry: federated credential, no secret to expire", "integration", name, "credential", c.String())
	case c.Kind == dataverse.CredentialManagedIdentity:
		r.log.Info("credential expiry: managed identity, no secret to expire", "integration", name, "credential", c.String())
	case c.ExpiresOn.IsZero():
		r.log.Warn("credential expiry is not monitored", "integration", name, "credential", c.String(), "remedy", c.Describe(r.now()))
	default:
		days, _ := c.DaysLeft(r.now())
		r.log.Info("credential expiry", "integration", name, "credential", string(c.Kind),
			"expiresOn", c.ExpiresOn.UTC().Format(time.RFC3339), "daysLeft", days)
	}
}

// warned is the last expiry warning of an integration.
type warned struct {
	expires time.Time // of the credential warned about; a rotated one is warned about anew
	at      time.Time
}

// warnExpiring logs a warning for every integration whose credential
// expires within WarnBefore (or has expired), at most once per warnEvery
// and credential. Called by Watch; guarded by reloadMu.
func (r *Registry) warnExpiring() {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	now := r.now()
	for name, in := range *r.integrations.Load() {
		c := in.cur.Load().cred
		if c.ExpiresOn.IsZero() || c.ExpiresOn.Sub(now) > WarnBefore {
			delete(r.warned, name)
			continue
		}
		if w, ok := r.warned[name]; ok && w.expires.Equal(c.ExpiresOn) && now.Sub(w.at) < warnEvery {
			continue
		}
		r.warned[name] = warned{expires: c.ExpiresOn, at: now}
		days, _ := c.DaysLeft(now)
		r.log.Warn("credential expires soon", "integration", name, "credential", string(c.Kind),
			"expiresOn", c.ExpiresOn.UTC().Format(time.RFC3339), "daysLeft", days, "remedy", c.Describe(now)+" "+rotateHint)
	}
}

// rotateHint is the flow that clears the warning.
const rotateHint = "Rotate in place: create the new credential in Entra, update the secret or certificate file (or variable, and the stated expiry date); dvgate checks it with WhoAmI and swaps; then delete the old one in Entra."
