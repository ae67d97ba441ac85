package dataverse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/managedidentity"
)

// Remedies of managed identity sign-in.
const (
	RemedyNoManagedIdentity   = "This machine has no managed identity (or none is enabled): enable one on the VM, App Service or Container App (Identity → System assigned → On, or add a user-assigned identity), or use a client secret or certificate."
	RemedyManagedIdentityDown = "The managed identity endpoint is unavailable or throttling (IMDS updates take up to 70 seconds): retry later."
	// RemedyManagedIdentityRefused: the endpoint refused the request
	// itself (App Service's IDENTITY_HEADER is stale or wrong, or a proxy
	// added X-Forwarded-For).
	RemedyManagedIdentityRefused = "The managed identity endpoint refused the request: restart the app so that it gets the current IDENTITY_ENDPOINT and IDENTITY_HEADER, and do not send IMDS requests through a proxy."
	remedyNoCredential           = "Set one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE or DVGATE_MANAGED_IDENTITY (system, or a user-assigned identity's client ID or resource ID)."
)

// remedyIdentityNotAssigned is the remedy of "Identity not found" for a
// user-assigned identity.
func remedyIdentityNotAssigned(id string) string {
	return fmt.Sprintf("The user-assigned managed identity %s is not assigned to this VM, App Service or Container App: add it under Identity → User assigned, or correct DVGATE_MANAGED_IDENTITY (managedIdentity).", id)
}

// userAssignedResourceID matches the Azure resource ID of a user-assigned
// managed identity.
var userAssignedResourceID = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.managedidentity/userassignedidentities/[^/]+$`)

// validManagedIdentity reports whether v is a value Config.ManagedIdentity
// accepts (for showValue: anything else is not echoed).
func validManagedIdentity(v string) bool {
	_, err := managedIdentityID(v)
	return err == nil
}

// managedIdentityID reads Config.ManagedIdentity as MSAL's identity.
func managedIdentityID(v string) (managedidentity.ID, error) {
	switch {
	case strings.EqualFold(v, ManagedIdentitySystem):
		return managedidentity.SystemAssigned(), nil
	case guidPattern.MatchString(v):
		return managedidentity.UserAssignedClientID(v), nil
	case userAssignedResourceID.MatchString(v):
		return managedidentity.UserAssignedResourceID(v), nil
	}
	return nil, configError("ManagedIdentity", fmt.Sprintf("DVGATE_MANAGED_IDENTITY (the managed identity) is not \"system\", a client ID or a resource ID (%d characters, not shown)", len(v)),
		"Set it to system for the resource's system-assigned identity, or to a user-assigned identity's Client ID (a GUID) or Resource ID (/subscriptions/…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME), from the identity's overview page.")
}

// describeManagedIdentity says which identity and which endpoint, for the
// start-up log (Credential.Detail).
func describeManagedIdentity(v string, source managedidentity.Source) string {
	who := "system-assigned"
	if !strings.EqualFold(v, ManagedIdentitySystem) {
		who = "user-assigned " + v
	}
	where := map[managedidentity.Source]string{
		managedidentity.DefaultToIMDS: "IMDS", managedidentity.AppService: "App Service", managedidentity.AzureArc: "Azure Arc",
		managedidentity.ServiceFabric: "Service Fabric", managedidentity.CloudShell: "Cloud Shell", managedidentity.AzureML: "Azure ML",
	}[source]
	if where == "" {
		where = string(source)
	}
	return who + ", " + where
}

// imdsDefaultHost is the IMDS address MSAL Go sends to (it has no override).
const imdsDefaultHost = "169.254.169.254"

// imdsClient is the HTTP client given to MSAL's managed identity client:
// it sends IMDS requests to host instead of 169.254.169.254 when host is
// set. Safe for concurrent use (http.Client is).
type imdsClient struct {
	c    *http.Client
	host *url.URL // nil: the real IMDS
}

func (m imdsClient) Do(req *http.Request) (*http.Response, error) {
	if m.host != nil && req.URL.Host == imdsDefaultHost {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = m.host.Scheme, m.host.Host
		req.Host = ""
	}
	return m.c.Do(req)
}

func (m imdsClient) CloseIdleConnections() { m.c.CloseIdleConnections() }

// identityDialTimeout bounds the connection to the managed identity
// endpoint, which is on the machine (IMDS is link-local, App Service's is
// loopback) and connects at once where it exists; where it does not (not
// an Azure resource), 169.254.169.254 may drop packets, and sign-in fails
// after this, not after the whole sign-in timeout.
const identityDialTimeout = 3 * time.Second

// identityHTTPClient is base for the managed identity endpoint: never
// through a proxy (HTTP_PROXY must not catch 169.254.169.254, and IMDS
// refuses requests with X-Forwarded-For), with a short dial timeout. A
// custom RoundTripper is kept as it is.
func identityHTTPClient(base *http.Client) *http.Client {
	c := *base
	if t, ok := base.Transport.(*http.Transport); ok {
		t = t.Clone()
		t.Proxy = nil
		dial := t.DialContext
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			// A dial's context ends only the dialing, not the connection.
			ctx, cancel := context.WithTimeout(ctx, identityDialTimeout)
			defer cancel()
			return dial(ctx, network, addr)
		}
		c.Transport = t
	}
	return &c
}

// managedIdentityAcquirer gets tokens from MSAL's managed identity client.
// MSAL's own retries (three attempts, a second apart, in real time) are
// off: Conn retries transient sign-in failures with its backoff and clock.
func managedIdentityAcquirer(cfg Config, resource func() string, httpc *http.Client) (acquireFunc, Credential, error) {
	id, err := managedIdentityID(cfg.ManagedIdentity)
	if err != nil {
		return nil, Credential{}, err
	}
	hc := imdsClient{c: identityHTTPClient(httpc)}
	if cfg.IMDSHost != "" {
		hc.host, _ = url.Parse(strings.TrimRight(cfg.IMDSHost, "/")) // validated by Config.Validate
	}
	client, err := managedidentity.New(id, managedidentity.WithHTTPClient(hc), managedidentity.WithRetryPolicyDisabled())
	if err != nil {
		return nil, Credential{}, &Error{Kind: KindConfig, Op: "sign in setup", Message: err.Error(), Remedy: RemedyNoManagedIdentity}
	}
	source, _ := managedidentity.GetSource()
	cred := Credential{Kind: CredentialManagedIdentity, Detail: describeManagedIdentity(cfg.ManagedIdentity, source)}
	acquire := func(ctx context.Context, claims string) (token, bool, error) {
		var opts []managedidentity.AcquireTokenOption
		if claims != "" {
			opts = append(opts, managedidentity.WithClaims(claims))
		}
		res, err := client.AcquireToken(ctx, resource(), opts...)
		if err != nil {
			return token{}, false, err
		}
		return token{value: res.AccessToken, expiresOn: res.ExpiresOn}, res.Metadata.TokenSource == managedidentity.TokenSourceIdentityProvider, nil
	}
	return acquire, cred, nil
}

// identityErrorBody is what managed identity endpoints answer with an
// error: IMDS's OAuth shape, or App Service's.
type identityErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	StatusCode       int    `json:"statusCode"`
	Message          string `json:"message"`
}

// managedIdentityError turns a failure of MSAL's managed identity client
// into an *Error. MSAL has read the body; its text ends the CallErr's
// message.
func (t *tokenSource) managedIdentityError(err error) *Error {
	const op = "sign in"
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		e := &Error{Op: op, Status: ce.Resp.StatusCode, Err: fmt.Errorf("managed identity endpoint answered HTTP %d", ce.Resp.StatusCode)}
		text := ce.Error()
		if i := strings.Index(text, "\n"); i >= 0 {
			text = text[i+1:]
		} else {
			text = ""
		}
		var b identityErrorBody
		_ = json.Unmarshal([]byte(text), &b)
		desc := strings.TrimSpace(b.ErrorDescription + b.Message)
		if desc == "" {
			desc = text
		}
		e.Message = t.red.clean(firstLine(desc))
		num := 0
		if i := strings.Index(desc, "AADSTS"); i >= 0 {
			rest := desc[i+len("AADSTS"):]
			num, _ = strconv.Atoi(rest[:len(rest)-len(strings.TrimLeft(rest, "0123456789"))])
		}
		switch s := e.Status; {
		case num != 0:
			e.Code = "AADSTS" + strconv.Itoa(num)
			e.Kind, e.Remedy = classifyEntra(b.Error, num, s)
		case s == http.StatusBadRequest && strings.Contains(strings.ToLower(desc), "identity not found"):
			e.Kind, e.Remedy = KindAuth, RemedyNoManagedIdentity
			if !strings.EqualFold(t.mi, ManagedIdentitySystem) {
				e.Remedy = remedyIdentityNotAssigned(t.mi)
			}
		case s == http.StatusTooManyRequests:
			e.Kind, e.Remedy, e.transient = KindThrottled, RemedyManagedIdentityDown, true
		case s == http.StatusNotFound || s == http.StatusGone || s >= 500:
			e.Kind, e.Remedy, e.transient = KindUnavailable, RemedyManagedIdentityDown, true
		default:
			e.Kind, e.Remedy = KindAuth, RemedyManagedIdentityRefused
		}
		if e.transient {
			e.RetryAfter = parseRetryAfter(ce.Resp.Header.Get("Retry-After"), t.clock.Now())
		}
		return e
	}
	var je msalerrors.InvalidJsonErr
	if errors.As(err, &je) {
		return &Error{Kind: KindUnavailable, Op: op, Message: "the managed identity endpoint's answer is not a token: " + t.red.clean(firstLine(err.Error())),
			Remedy: RemedyManagedIdentityDown, transient: true}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Kind: KindTimeout, Op: op, Err: context.DeadlineExceeded, Message: "the managed identity endpoint did not answer in time",
			Remedy: RemedyNoManagedIdentity, transient: true}
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		if ue != nil {
			err = ue.Err // drop the URL
		}
		if errors.As(err, &ne) && ne.Timeout() {
			return &Error{Kind: KindTimeout, Op: op, Err: err, Message: "the managed identity endpoint did not answer in time",
				Remedy: RemedyNoManagedIdentity, transient: true}
		}
		// Nothing listens where the endpoint should be: not an Azure
		// resource with a managed identity. A configuration matter.
		return &Error{Kind: KindConfig, Op: op, Err: err, Message: "no managed identity endpoint answers on this machine", Remedy: RemedyNoManagedIdentity}
	}
	return &Error{Kind: KindAuth, Op: op, Message: t.red.clean(firstLine(err.Error())), Remedy: RemedyNoManagedIdentity}
}
