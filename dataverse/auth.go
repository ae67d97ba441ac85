package dataverse

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"golang.org/x/sync/singleflight"
	"software.sslmate.com/src/go-pkcs12"
)

// signInTimeout bounds one token request. The request runs detached from any
// single caller's context because its result is shared by all waiters.
const signInTimeout = 30 * time.Second

// microsoftAuthorityHosts are the Entra hosts MSAL's instance discovery
// knows. For any other host (a private cloud, or the simulator) discovery is
// turned off, since it would call the global endpoint to validate the host.
var microsoftAuthorityHosts = map[string]bool{
	"login.microsoftonline.com":        true,
	"login.microsoft.com":              true,
	"login.windows.net":                true,
	"sts.windows.net":                  true,
	"login.microsoftonline.us":         true,
	"login-us.microsoftonline.com":     true,
	"login.usgovcloudapi.net":          true,
	"login.chinacloudapi.cn":           true,
	"login.partner.microsoftonline.cn": true,
	"login.microsoftonline.de":         true,
}

// tokenSource gets app tokens from MSAL. MSAL's AcquireTokenByCredential
// answers from its in-memory cache until the token is within 5 minutes of
// expiry, but does not coalesce concurrent misses; the singleflight group in
// front of it makes N concurrent cold callers cause one token request. The
// managed identity client does the same, except that its cache is MSAL's
// package state, shared by every Conn of the process; so a managed
// identity's first token of each tokenSource (primed) comes from the
// endpoint, bypassing that cache: dvgate test and a reload prove that the
// identity signs in now, and no Conn depends on another's token.
type tokenSource struct {
	acquire acquireFunc
	// scopes are the org's ("<org>/.default"); a managed identity asks
	// for the resource, the org URL. Set at creation (tests redirect it).
	scopes []string
	// mi is Config.ManagedIdentity when that is the credential, else "";
	// failures are then a managed identity endpoint's, not Entra's.
	mi string
	// primed: a managed identity token was fetched by this tokenSource
	// (not found in MSAL's process-wide cache); only in the singleflight.
	primed bool
	group  singleflight.Group
	log    *slog.Logger
	red    redactor
	// acquired counts tokens MSAL fetched from Entra or the managed
	// identity endpoint (not cache hits).
	acquired atomic.Int64

	clock Clock
	cred  Credential // kind and expiry, for Conn.Credential and the remedy of AADSTS7000222

	mu       sync.Mutex
	forcedAt time.Time // last sign-in that bypassed the cache; guarded by mu
	// failed is the last definitive sign-in failure (a wrong or expired
	// credential, an unknown app or tenant) and failedAt when it happened;
	// guarded by mu. For failureHold every caller gets it without asking
	// Entra again: a wrong secret must not turn each lookup into a token
	// request.
	failed   *Error
	failedAt time.Time
}

// failureHold is how long a definitive sign-in failure is answered from
// memory. Short, so a credential fixed in place (a federated token file
// rewritten, a secret re-enabled) is picked up quickly.
const failureHold = 10 * time.Second

// token is an access token and when it expires.
type token struct {
	value     string
	expiresOn time.Time
}

// acquireFunc gets a token from MSAL: from its cache, or from the identity
// provider (fromIdP); with claims, bypassing the cache. Safe for concurrent
// use (MSAL's clients are).
type acquireFunc func(ctx context.Context, claims string) (tok token, fromIdP bool, err error)

func newTokenSource(cfg Config, orgURL, authorityHost string, httpc *http.Client, log *slog.Logger, red redactor, clock Clock) (*tokenSource, error) {
	if use, _ := cfg.Credentials(); use == CredentialManagedIdentity {
		ts := &tokenSource{scopes: []string{orgURL + "/.default"}, mi: cfg.ManagedIdentity, log: log, red: red, clock: clock}
		acquire, info, err := managedIdentityAcquirer(cfg, func() string { return strings.TrimSuffix(ts.scopes[0], "/.default") }, httpc)
		if err != nil {
			return nil, err
		}
		ts.acquire, ts.cred = acquire, info
		return ts, nil
	}
	cred, info, err := credential(cfg, clock.Now())
	if err != nil {
		return nil, err
	}
	opts := []confidential.Option{
		confidential.WithHTTPClient(httpc),
		// ESTS-Regional is for Microsoft-internal apps and managed identity;
		// MSAL_FORCE_REGION in the environment must not reroute our sign-in.
		confidential.WithAzureRegion("DisableMsalForceRegion"),
	}
	u, _ := url.Parse(authorityHost) // validated by Config.Validate
	if !microsoftAuthorityHosts[u.Hostname()] {
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	client, err := confidential.New(authorityHost+cfg.TenantID, cfg.ClientID, cred, opts...)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: "sign in setup", Message: red.clean(err.Error()), Remedy: RemedySignIn}
	}
	ts := &tokenSource{scopes: []string{orgURL + "/.default"}, log: log, red: red, clock: clock, cred: info}
	ts.acquire = func(ctx context.Context, claims string) (token, bool, error) {
		var opts []confidential.AcquireByCredentialOption
		if claims != "" {
			opts = append(opts, confidential.WithClaims(claims))
		}
		res, err := client.AcquireTokenByCredential(ctx, ts.scopes, opts...)
		if err != nil {
			return token{}, false, err
		}
		return token{value: res.AccessToken, expiresOn: res.ExpiresOn}, res.Metadata.TokenSource == confidential.TokenSourceIdentityProvider, nil
	}
	return ts, nil
}

// credential builds the MSAL credential for the configured kind (the first
// of CredentialOrder; not a managed identity) and says when it expires. A
// certificate already past NotAfter (at now) is a configuration error:
// Entra would refuse it, and the remedy is the admin's, not a retry.
func credential(cfg Config, now time.Time) (confidential.Credential, Credential, error) {
	use, _ := cfg.Credentials()
	switch use {
	case CredentialSecret:
		c, err := confidential.NewCredFromSecret(cfg.ClientSecret)
		return c, Credential{Kind: CredentialSecret, ExpiresOn: cfg.ClientSecretExpiresOn}, err
	case CredentialCertificate:
		c, notAfter, err := certificateCredential(cfg.CertificatePath, cfg.CertificatePassword)
		if err == nil && now.After(notAfter) {
			err = &Error{Kind: KindConfig, Op: "load certificate", Message: "the certificate is past its NotAfter date",
				Remedy: remedyCertificateExpired(notAfter)}
		}
		return c, Credential{Kind: CredentialCertificate, ExpiresOn: notAfter}, err
	default:
		c, err := federatedCredential(cfg.FederatedTokenFile)
		return c, Credential{Kind: CredentialFederated, Detail: "workload identity"}, err
	}
}

// certificateCredential loads a PEM file (certificate plus unencrypted RSA
// key) or a PKCS#12 file. PKCS#12 goes through software.sslmate.com/src/go-pkcs12
// because golang.org/x/crypto/pkcs12 is frozen and cannot read the AES/PBES2
// files that OpenSSL 3, Azure Key Vault and current Windows export.
func certificateCredential(path, password string) (confidential.Credential, time.Time, error) {
	const op = "load certificate"
	data, err := os.ReadFile(path)
	if err != nil {
		return confidential.Credential{}, time.Time{}, &Error{Kind: KindConfig, Op: op, Err: err,
			Remedy: "Point AZURE_CLIENT_CERTIFICATE_PATH at a readable PEM or PKCS#12 (.pfx) file."}
	}
	var (
		certs []*x509.Certificate
		key   crypto.PrivateKey
	)
	if bytes.Contains(data, []byte("-----BEGIN")) {
		if bytes.Contains(data, []byte("ENCRYPTED")) || bytes.Contains(data, []byte("DEK-Info")) {
			return confidential.Credential{}, time.Time{}, &Error{Kind: KindConfig, Op: op,
				Message: "the PEM file's private key is encrypted, which MSAL cannot read",
				Remedy:  "Store the key unencrypted in the PEM file (PKCS#8 or PKCS#1), or use a password-protected PKCS#12 (.pfx) file."}
		}
		certs, key, err = confidential.CertFromPEM(data, "")
		if err != nil {
			return confidential.Credential{}, time.Time{}, &Error{Kind: KindConfig, Op: op, Message: "the PEM file: " + err.Error(),
				Remedy: "The PEM file must hold the certificate and its unencrypted RSA private key."}
		}
	} else {
		var leaf *x509.Certificate
		var chain []*x509.Certificate
		key, leaf, chain, err = pkcs12.DecodeChain(data, password)
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return confidential.Credential{}, time.Time{}, &Error{Kind: KindConfig, Op: op, Message: "the PKCS#12 password is wrong",
				Remedy: "Set AZURE_CLIENT_CERTIFICATE_PASSWORD to the password the .pfx file was exported with."}
		}
		if err != nil {
			return confidential.Credential{}, time.Time{}, &Error{Kind: KindConfig, Op: op, Message: "the file is neither PEM nor readable PKCS#12: " + err.Error(),
				Remedy: "Use a PEM file (certificate + unencrypted RSA key) or a PKCS#12 (.pfx) file with its password."}
		}
		certs = append([]*x509.Certificate{leaf}, chain...)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return confidential.Credential{}, time.Time{}, &Error{Kind: KindConfig, Op: op, Message: fmt.Sprintf("the private key is %T, not RSA", key),
			Remedy: "Microsoft Entra client assertions from MSAL need an RSA key: create an RSA certificate."}
	}
	cred, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		return confidential.Credential{}, time.Time{}, &Error{Kind: KindConfig, Op: op, Message: err.Error(),
			Remedy: "The file must hold the certificate that matches its private key."}
	}
	// The certificate that signs is the one matching the key, as MSAL
	// chooses it; the others are its chain.
	var notAfter time.Time
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&rk.PublicKey) {
			notAfter = c.NotAfter
			break
		}
	}
	return cred, notAfter, nil
}

// federatedCredential presents the Kubernetes projected service account
// token as client assertion. The file is read on every token request
// because the kubelet rotates it; MSAL calls this only on a cache miss.
func federatedCredential(path string) (confidential.Credential, error) {
	if _, err := readFederatedToken(path); err != nil {
		return confidential.Credential{}, err
	}
	return confidential.NewCredFromAssertionCallback(func(context.Context, confidential.AssertionRequestOptions) (string, error) {
		return readFederatedToken(path)
	}), nil
}

func readFederatedToken(path string) (string, error) {
	const remedy = "Point AZURE_FEDERATED_TOKEN_FILE at the projected service account token (the workload identity webhook mounts it at /var/run/secrets/azure/tokens/azure-identity-token)."
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &Error{Kind: KindConfig, Op: "read federated token", Err: err, Remedy: remedy}
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", &Error{Kind: KindConfig, Op: "read federated token", Message: "the federated token file is empty", Remedy: remedy}
	}
	return tok, nil
}

// token returns a valid access token. Concurrent callers share one MSAL call;
// each caller stops waiting when its own context ends.
func (t *tokenSource) token(ctx context.Context) (string, *Error) {
	t.mu.Lock()
	if t.failed != nil && t.clock.Now().Sub(t.failedAt) < failureHold {
		e := t.failed
		t.mu.Unlock()
		return "", e
	}
	t.mu.Unlock()
	ch := t.group.DoChan("token", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), signInTimeout)
		defer cancel()
		claims := ""
		if t.mi != "" && !t.primed {
			claims = freshClaims() // MSAL's managed identity client skips its cache for any claims
		}
		res, fromIdP, err := t.acquire(fctx, claims)
		if err != nil {
			e := t.signInError(err)
			t.log.Warn("dataverse sign-in failed", "kind", e.Kind.String(), "code", e.Code, "status", e.Status, "correlationId", e.CorrelationID)
			if e.Kind == KindAuth || e.Kind == KindConfig {
				t.mu.Lock()
				t.failed, t.failedAt = e, t.clock.Now()
				t.mu.Unlock()
			}
			return "", e
		}
		t.mu.Lock()
		t.failed = nil
		t.mu.Unlock()
		t.primed = true
		if fromIdP {
			t.acquired.Add(1)
			t.log.Info("dataverse signed in", "credential", t.cred.String(), "expiresOn", res.expiresOn)
		}
		return res.value, nil
	})
	return awaitToken(ctx, ch)
}

// awaitToken waits for a shared sign-in, or for the caller's context.
func awaitToken(ctx context.Context, ch <-chan singleflight.Result) (string, *Error) {
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err.(*Error)
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", ctxError("sign in", ctx.Err())
	}
}

// forceInterval is the least time between two sign-ins that bypass MSAL's
// cache, so that a Dataverse that rejects every token cannot make us hammer
// Entra.
const forceInterval = 30 * time.Second

// refresh returns a token other than rejected, which Dataverse refused
// (401). If MSAL's cache already holds another one (a concurrent caller
// refreshed), that is it; otherwise it signs in bypassing the cache, at
// most once per forceInterval. MSAL has no "invalidate": WithClaims skips
// the cache lookup, and the claims sent are the CAE form of "a token issued
// after now" (nbf), which is exactly what is wanted. The new token replaces
// the old one in MSAL's cache.
func (t *tokenSource) refresh(ctx context.Context, rejected string) (string, *Error) {
	ch := t.group.DoChan("refresh", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), signInTimeout)
		defer cancel()
		res, _, err := t.acquire(fctx, "")
		t.mu.Lock()
		recent := !t.forcedAt.IsZero() && t.clock.Now().Sub(t.forcedAt) < forceInterval
		t.mu.Unlock()
		if err == nil && (res.value != rejected || recent) {
			return res.value, nil
		}
		res, _, err = t.acquire(fctx, freshClaims())
		t.mu.Lock()
		t.forcedAt = t.clock.Now()
		t.mu.Unlock()
		if err != nil {
			e := t.signInError(err)
			t.log.Warn("dataverse sign-in failed", "kind", e.Kind.String(), "code", e.Code, "status", e.Status, "correlationId", e.CorrelationID)
			return "", e
		}
		t.acquired.Add(1)
		t.log.Info("dataverse signed in again after a rejected token", "expiresOn", res.expiresOn)
		return res.value, nil
	})
	return awaitToken(ctx, ch)
}

// freshClaims are the CAE claims of "a token issued after now" (nbf),
// which make MSAL skip its cache.
func freshClaims() string {
	return fmt.Sprintf(`{"access_token":{"nbf":{"essential":true,"value":"%d"}}}`, time.Now().Unix())
}

// entraErrorBody is the OAuth error JSON Entra returns with 400/401.
type entraErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	CorrelationID    string `json:"correlation_id"`
}

// signInError turns an MSAL error into an *Error. MSAL exposes no
// structured fields, so the Entra JSON is parsed from CallErr's response
// body. The CallErr itself is not wrapped: its request carries the form body
// with the client secret or assertion.
func (t *tokenSource) signInError(err error) *Error {
	const op = "sign in"
	var own *Error
	if errors.As(err, &own) { // from the federated token callback
		return own
	}
	if t.mi != "" {
		return t.managedIdentityError(err)
	}
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		e := &Error{Op: op, Status: ce.Resp.StatusCode}
		var body []byte
		if ce.Resp.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(ce.Resp.Body, 64<<10))
		}
		var eb entraErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
			e.CorrelationID = eb.CorrelationID
			e.Message = t.red.clean(firstLine(eb.ErrorDescription))
			num := 0
			if len(eb.ErrorCodes) > 0 {
				num = eb.ErrorCodes[0]
			} else if rest, ok := strings.CutPrefix(eb.ErrorDescription, "AADSTS"); ok {
				digits := rest[:len(rest)-len(strings.TrimLeft(rest, "0123456789"))]
				num, _ = strconv.Atoi(digits)
			}
			if num != 0 {
				e.Code = "AADSTS" + strconv.Itoa(num)
			}
			e.Kind, e.Remedy = classifyEntra(eb.Error, num, e.Status)
			if num == 7000222 {
				e.Remedy = remedySecretExpired(t.cred.ExpiresOn)
			}
		} else {
			e.Message = t.red.clean(firstLine(string(body)))
			e.Kind, e.Remedy = classifyEntra("", 0, e.Status)
		}
		if e.Kind == KindThrottled || e.Kind == KindUnavailable {
			e.RetryAfter = parseRetryAfter(ce.Resp.Header.Get("Retry-After"), time.Now())
			e.transient = true
		}
		e.Err = fmt.Errorf("token endpoint answered HTTP %d", e.Status)
		return e
	}
	var je msalerrors.InvalidJsonErr
	if errors.As(err, &je) {
		return &Error{Kind: KindUnavailable, Op: op, Message: t.red.clean(firstLine(err.Error())), Remedy: RemedyEntraDown, transient: true}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Kind: KindTimeout, Op: op, Err: context.DeadlineExceeded, Message: "the token request did not finish in time", Remedy: RemedyEntraDown, transient: true}
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		e := netError(op, err, RemedyEntraNetwork)
		return e
	}
	return &Error{Kind: KindAuth, Op: op, Message: t.red.clean(firstLine(err.Error())), Remedy: RemedySignIn}
}

// classifyEntra maps an Entra OAuth error to a Kind and remedy.
func classifyEntra(oauthErr string, aadsts, status int) (Kind, string) {
	switch aadsts {
	case 7000215:
		return KindAuth, RemedySecretInvalid
	case 7000222:
		return KindAuth, RemedySecretExpired
	case 700016:
		return KindAuth, RemedyAppNotFound
	case 90002, 900023, 90013, 900021:
		return KindAuth, RemedyTenant
	case 500011, 70011:
		return KindAuth, RemedyResource
	case 700027, 700024:
		return KindAuth, RemedyCertificate
	case 70021, 700211, 700212, 700213:
		return KindAuth, RemedyFederated
	case 7000112:
		return KindAuth, RemedyAppDisabled
	}
	switch {
	case status == http.StatusTooManyRequests:
		return KindThrottled, RemedyEntraDown
	case status >= 500:
		return KindUnavailable, RemedyEntraDown
	case oauthErr == "invalid_client":
		return KindAuth, RemedySecretInvalid
	case oauthErr == "invalid_tenant":
		return KindAuth, RemedyTenant
	case oauthErr == "invalid_resource":
		return KindAuth, RemedyResource
	}
	return KindAuth, RemedySignIn
}

// netError classifies a transport failure. DNS "no such host" and TLS
// trust failures are not transient: retrying cannot fix a wrong URL.
func netError(op string, err error, remedy string) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the URL: its query may hold customer data
	}
	e := &Error{Kind: KindNetwork, Op: op, Err: err, Remedy: remedy, transient: true}
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &dns) && dns.IsNotFound:
		e.transient = false
		if remedy == RemedyNetwork {
			e.Remedy = RemedyOrgURL
		}
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &verifyErr):
		e.transient = false
		e.Remedy = RemedyTLS
	}
	return e
}

// ctxError reports the caller's context ending.
func ctxError(op string, err error) *Error {
	if errors.Is(err, context.Canceled) {
		return &Error{Kind: KindCanceled, Op: op, Err: err}
	}
	return &Error{Kind: KindTimeout, Op: op, Err: err, Remedy: RemedyTimeout}
}
