package dataverse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBody caps a buffered response body; a 5,000-row page is a few MB.
const maxBody = 256 << 20

// Backoff for 502/503/504 and connection failures without Retry-After.
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 10 * time.Second
)

// Conn is a connection to one Dataverse environment. It is safe for
// concurrent use; create one per org and process, since it owns the token
// cache, the connection pool, the concurrency cap and the throttling gate.
type Conn struct {
	orgURL      string
	baseURL     string
	host        string
	userAgent   string
	maxAttempts int
	httpc       *http.Client
	tokens      *tokenSource
	cred        Credential
	sem         chan struct{} // one slot per request in flight
	slotWait    time.Duration // bound of the wait for a slot; <0 = none
	clock       Clock
	log         *slog.Logger
	red         redactor

	mu           sync.Mutex // guards the gate fields
	gateUntil    time.Time  // no request may start before this (after a 429)
	gateCode     string     // the 429's error code, for the remedy
	closed       atomic.Bool
	requests     atomic.Int64
	retries      atomic.Int64
	throttled    atomic.Int64
	gateRejected atomic.Int64
	shed         atomic.Int64
	abandoned    atomic.Int64
	preempted    atomic.Int64

	// Preemption of abandoned requests (WithAbandon): a request already
	// sent whose waiters all left is an orphan; it runs on while nobody
	// needs its slot (its answer can still be cached), and is cancelled
	// once a request has waited preemptAfter for a slot.
	omu         sync.Mutex
	orphans     map[*sending]struct{} // guarded by omu
	slotWaiters int                   // requests that waited preemptAfter for a slot and still wait; guarded by omu
}

// sending is one sent request that may be preempted.
type sending struct{ cancel context.CancelCauseFunc }

// errPreempted cancels an orphaned request to free its slot.
var errPreempted = errors.New("dataverse: abandoned request preempted for a waiting one")

// Response is a buffered successful Web API response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// WhoAmIResult is the answer of the WhoAmI function.
type WhoAmIResult struct {
	OrganizationID string
	UserID         string
	BusinessUnitID string
}

// Stats are counters since New, for metrics.
type Stats struct {
	Requests       int64 // HTTP requests sent to the Web API (attempts)
	Retries        int64 // attempts after the first
	Throttled      int64 // 429 answers received
	GateRejected   int64 // requests failed fast by the throttling gate
	Shed           int64 // requests failed with KindBusy: no concurrency slot within SlotWait
	Abandoned      int64 // requests not sent because their waiters left (WithAbandon)
	Preempted      int64 // sent requests whose waiters left, cancelled to free a slot for a waiting request
	TokensAcquired int64 // tokens fetched from Entra or the managed identity endpoint (not cache hits)
}

// New validates cfg, loads the credential and prepares the connection. It
// makes no network call: the first request signs in.
func New(cfg Config) (*Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	orgURL, _ := normalizeOrgURL(cfg.URL)
	authority, _ := normalizeAuthorityHost(cfg.AuthorityHost)
	maxConc := cfg.MaxConcurrent
	if maxConc == 0 {
		maxConc = DefaultMaxConcurrent
	}
	c := &Conn{
		orgURL:      orgURL,
		baseURL:     orgURL + APIPath,
		host:        strings.TrimPrefix(orgURL, "https://"),
		userAgent:   cfg.UserAgent,
		maxAttempts: cfg.MaxAttempts,
		httpc:       tunedClient(cfg.HTTPClient, maxConc),
		sem:         make(chan struct{}, maxConc),
		slotWait:    cfg.SlotWait,
		clock:       cfg.Clock,
		log:         cfg.Logger,
		red:         redactor{secrets: []string{cfg.ClientSecret, cfg.CertificatePassword}},
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent()
	}
	if c.maxAttempts == 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.slotWait == 0 {
		c.slotWait = DefaultSlotWait
	}
	if c.clock == nil {
		c.clock = realClock{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	ts, err := newTokenSource(cfg, orgURL, authority, c.httpc, c.log, c.red, c.clock)
	if err != nil {
		return nil, err
	}
	c.tokens = ts
	c.cred = ts.cred
	return c, nil
}

// tunedClient returns an HTTP client whose pool keeps enough idle
// connections for maxConc concurrent requests. A caller's *http.Transport is
// cloned (keeping its TLS and proxy settings), never modified.
func tunedClient(base *http.Client, maxConc int) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
		c.Jar = nil // Dataverse affinity cookies would pin us to one web server
	}
	var t *http.Transport
	switch rt := c.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
		t.IdleConnTimeout = 90 * time.Second
		t.TLSHandshakeTimeout = 10 * time.Second
	case *http.Transport:
		t = rt.Clone()
	default:
		return c // a custom RoundTripper: the caller owns pooling
	}
	t.ForceAttemptHTTP2 = true
	if t.MaxIdleConnsPerHost < maxConc {
		t.MaxIdleConnsPerHost = maxConc
	}
	if t.MaxIdleConns != 0 && t.MaxIdleConns < 2*maxConc {
		t.MaxIdleConns = 2 * maxConc
	}
	// Leaving Accept-Encoding to the transport gets gzip with transparent
	// decompression.
	t.DisableCompression = false
	c.Transport = t
	return c
}

// OrgURL is the normalized org URL, without a trailing slash.
func (c *Conn) OrgURL() string { return c.orgURL }

// BaseURL is the Web API root, OrgURL()+"/api/data/v9.2/".
func (c *Conn) BaseURL() string { return c.baseURL }

// Token returns a current access token, signing in if needed. For
// diagnostics and tests; never log it.
func (c *Conn) Token(ctx context.Context) (string, error) {
	tok, e := c.tokens.token(ctx)
	if e != nil {
		return "", e
	}
	return tok, nil
}

// ThrottledUntil reports until when the throttling gate holds requests back
// (zero or past when open).
func (c *Conn) ThrottledUntil() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gateUntil
}

// Stats returns the counters.
func (c *Conn) Stats() Stats {
	return Stats{
		Requests:       c.requests.Load(),
		Retries:        c.retries.Load(),
		Throttled:      c.throttled.Load(),
		GateRejected:   c.gateRejected.Load(),
		Shed:           c.shed.Load(),
		Abandoned:      c.abandoned.Load(),
		Preempted:      c.preempted.Load(),
		TokensAcquired: c.tokens.acquired.Load(),
	}
}

// Close releases idle connections. Requests after Close fail.
func (c *Conn) Close() {
	c.closed.Store(true)
	c.httpc.CloseIdleConnections()
}

// Get sends a GET for pathAndQuery, relative to BaseURL (an absolute
// @odata.nextLink on the org is accepted too), with the given Prefer values
// (e.g. `odata.include-annotations="*"`, `odata.maxpagesize=50`).
//
// The query may be written readably ("$filter=ordernumber eq 'ORD-1'"):
// spaces, quotes and other bytes that cannot appear in a URL are
// percent-encoded here. '&', '#', '+' and '%' inside literal values must be
// escaped by the caller (url.QueryEscape), since they have a meaning in URLs.
func (c *Conn) Get(ctx context.Context, pathAndQuery string, prefer ...string) (*Response, error) {
	req, e := c.newGet(ctx, pathAndQuery, prefer)
	if e != nil {
		return nil, e
	}
	resp, body, e := c.do(req, false)
	if e != nil {
		return nil, e
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// Stream is Get for answers too large to buffer, such as an org's
// $metadata (30 MB and more with apps installed): a successful response
// comes back with its body unread, and the caller must close it. The
// request holds one of the connection's concurrency slots until then. Sign-in,
// the throttling gate, retries and error classification are as for Get; once
// a successful body is handed over, nothing is retried.
func (c *Conn) Stream(ctx context.Context, pathAndQuery string, prefer ...string) (*http.Response, error) {
	req, e := c.newGet(ctx, pathAndQuery, prefer)
	if e != nil {
		return nil, e
	}
	resp, _, e := c.do(req, true)
	if e != nil {
		return nil, e
	}
	return resp, nil
}

// newGet builds a GET for Get and Stream.
func (c *Conn) newGet(ctx context.Context, pathAndQuery string, prefer []string) (*http.Request, *Error) {
	u := pathAndQuery
	if !strings.HasPrefix(u, "https://") {
		u = c.baseURL + strings.TrimPrefix(pathAndQuery, "/")
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i+1] + escapeQuery(u[i+1:])
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &Error{Kind: KindBadRequest, Op: "GET", Err: err, Remedy: "Pass a path relative to the Web API root, with its query escaped."}
	}
	if len(prefer) > 0 {
		req.Header.Set("Prefer", strings.Join(prefer, ","))
	}
	if strings.HasPrefix(strings.TrimPrefix(pathAndQuery, "/"), "$metadata") {
		req.Header.Set("Accept", "application/xml")
	}
	return req, nil
}

// WhoAmI calls the WhoAmI function; it is the cheapest way to prove that the
// URL, the sign-in and the application user are all right.
func (c *Conn) WhoAmI(ctx context.Context) (WhoAmIResult, error) {
	r, err := c.Get(ctx, "WhoAmI")
	if err != nil {
		return WhoAmIResult{}, err
	}
	var w struct {
		BusinessUnitID string `json:"BusinessUnitId"`
		UserID         string `json:"UserId"`
		OrganizationID string `json:"OrganizationId"`
	}
	if err := json.Unmarshal(r.Body, &w); err != nil || w.OrganizationID == "" {
		e := &Error{Kind: KindConfig, Op: "GET WhoAmI", Status: r.Status, Err: err,
			Message: "the WhoAmI answer is not the Dataverse WhoAmIResponse JSON", Remedy: RemedyOrgURL}
		if err != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			// JSON was promised but arrived damaged: a transient fault, not a wrong URL.
			e.Kind, e.Message, e.Remedy = KindUnavailable, "the WhoAmI answer is truncated or malformed JSON", RemedyUnavailable
		}
		return WhoAmIResult{}, e
	}
	return WhoAmIResult{OrganizationID: w.OrganizationID, UserID: w.UserID, BusinessUnitID: w.BusinessUnitID}, nil
}

// Do sends req (built against BaseURL, e.g. by the generated client) with the
// token and OData headers, inside the concurrency cap and the throttling
// gate, retrying idempotent GETs. It implements odataq.Doer, the doer of
// the generated Service. A status below 400 returns the response with its body
// buffered; any other final answer returns (nil, *Error), the body already
// read and closed.
func (c *Conn) Do(req *http.Request) (*http.Response, error) {
	resp, body, e := c.do(req, false)
	if e != nil {
		return nil, e
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// opName names a request for errors and logs without its query (which may
// hold customer data): "GET salesorders".
func opName(req *http.Request) string {
	p := req.URL.Path
	if i := strings.Index(p, APIPath); i >= 0 {
		p = p[i+len(APIPath):]
	}
	if i := strings.IndexAny(p, "(/"); i >= 0 {
		p = p[:i]
	}
	return req.Method + " " + p
}

// do sends req with retries. With stream, a successful response keeps its
// body unread (and its concurrency slot until the body is closed).
func (c *Conn) do(req *http.Request, stream bool) (*http.Response, []byte, *Error) {
	ctx := req.Context()
	op := opName(req)
	if c.closed.Load() {
		return nil, nil, &Error{Kind: KindCanceled, Op: op, Message: "the connection is closed"}
	}
	if req.URL.Scheme != "https" || !strings.EqualFold(req.URL.Host, c.host) {
		// The bearer token must only ever go to the org it was issued for.
		return nil, nil, &Error{Kind: KindBadRequest, Op: op,
			Message: fmt.Sprintf("refusing to send the Dataverse token to %s://%s", req.URL.Scheme, req.URL.Host),
			Remedy:  "Send requests only to the organization URL " + c.orgURL + "."}
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	attempts := 1
	if (req.Method == http.MethodGet || req.Method == http.MethodHead) && replayable {
		attempts = c.maxAttempts
	}
	reauthed := false
	for attempt := 1; ; attempt++ {
		if attempt > 1 && req.GetBody != nil {
			b, err := req.GetBody()
			if err != nil {
				return nil, nil, &Error{Kind: KindBadRequest, Op: op, Err: err}
			}
			req.Body = b
		}
		resp, body, tok, e := c.attempt(ctx, req, op, stream)
		if e == nil {
			return resp, body, nil
		}
		if e.Status == http.StatusUnauthorized && tok != "" && !reauthed && replayable {
			// (tok == "": Entra itself answered 401 to the sign-in, e.g. a
			// wrong secret; signing in again cannot help.)
			// Dataverse refused a token MSAL still considers valid (its
			// clock runs ahead, or the token was revoked). MSAL would hand
			// out the same token until it nears expiry, failing every
			// request for up to an hour, so get a new one and try once more.
			reauthed = true
			if fresh, re := c.tokens.refresh(ctx, tok); re == nil && fresh != tok {
				c.log.Warn("dataverse rejected the access token; signed in again", "op", op)
				attempt--
				continue
			}
			return nil, nil, e
		}
		if attempt >= attempts || !e.transient {
			return nil, nil, e
		}
		wait := e.RetryAfter
		if wait <= 0 {
			wait = backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && wait >= time.Until(dl) {
			return nil, nil, e // waiting would outlast the caller
		}
		if e.Kind == KindThrottled && e.Op == op {
			wait = 0 // a Dataverse 429 closed the gate, which holds the next attempt back
		}
		if wait > 0 {
			select {
			case <-c.clock.After(wait):
			case <-ctx.Done():
				return nil, nil, ctxError(op, ctx.Err())
			case <-abandonOf(ctx).Done():
				c.abandoned.Add(1)
				return nil, nil, abandonedError(op)
			}
		}
		c.retries.Add(1)
		c.log.Debug("dataverse retry", "op", op, "attempt", attempt+1, "after", wait, "kind", e.Kind.String(), "status", e.Status)
	}
}

// backoff is capped exponential backoff with jitter ("equal jitter": half
// fixed, half random), so a fleet of callers does not retry in lockstep.
func backoff(attempt int) time.Duration {
	d := backoffBase << (attempt - 1)
	if d > backoffCap || d <= 0 {
		d = backoffCap
	}
	return d/2 + rand.N(d/2+1)
}

// attempt sends one request: gate, concurrency slot, token, round trip,
// buffered body, classification.
func (c *Conn) attempt(ctx context.Context, req *http.Request, op string, stream bool) (_ *http.Response, _ []byte, tok string, _ *Error) {
	release, e := c.enter(ctx, op)
	if e != nil {
		return nil, nil, "", e
	}
	handedOver := false
	defer func() {
		if !handedOver {
			release()
		}
	}()
	tok, e = c.tokens.token(ctx)
	if e != nil {
		return nil, nil, "", e
	}
	sendCtx := ctx
	if !stream {
		var over func()
		sendCtx, over = c.preemptible(ctx)
		defer over()
	}
	r := req.Clone(sendCtx)
	h := r.Header
	if h.Get("Accept") == "" {
		h.Set("Accept", "application/json")
	}
	h.Set("OData-MaxVersion", "4.0")
	h.Set("OData-Version", "4.0")
	if h.Get("If-None-Match") == "" {
		h.Set("If-None-Match", "null")
	}
	h.Set("User-Agent", c.userAgent)
	h.Set("Authorization", "Bearer "+tok)

	c.requests.Add(1)
	resp, err := c.httpc.Do(r)
	if err != nil {
		if errors.Is(context.Cause(sendCtx), errPreempted) {
			return nil, nil, tok, abandonedError(op)
		}
		if ctx.Err() != nil {
			return nil, nil, tok, ctxError(op, ctx.Err())
		}
		return nil, nil, tok, netError(op, err, RemedyNetwork)
	}
	if stream && resp.StatusCode < 400 {
		handedOver = true
		resp.Body = &releasingBody{ReadCloser: resp.Body, release: sync.OnceFunc(release)}
		return resp, nil, tok, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	resp.Body.Close()
	if errors.Is(context.Cause(sendCtx), errPreempted) {
		// Preempted while the answer arrived: it may be cut short (a
		// server that stops writing when the request goes away still sent
		// its status), and no one is waiting for it.
		return nil, nil, tok, abandonedError(op)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, tok, ctxError(op, ctx.Err())
		}
		return nil, nil, tok, netError(op, err, RemedyNetwork)
	}
	if len(body) > maxBody {
		return nil, nil, tok, &Error{Kind: KindBadRequest, Op: op, Status: resp.StatusCode, Message: "the response body is larger than 256 MiB",
			Remedy: "Request fewer rows per page (Prefer: odata.maxpagesize) or fewer columns ($select)."}
	}
	if resp.StatusCode >= 400 {
		e := c.httpError(op, resp, body)
		if e.Kind == KindThrottled {
			c.throttled.Add(1)
			c.closeGate(e.RetryAfter, e.Code)
			c.log.Warn("dataverse throttled", "op", op, "code", e.Code, "retryAfter", e.RetryAfter)
		}
		return nil, nil, tok, e
	}
	return resp, body, tok, nil
}

// enter waits for the throttling gate and a concurrency slot. The gate is
// checked again once the slot is held, so a request that queued for a slot
// while a 429 arrived does not slip into the Retry-After window.
//
// The wait for a slot is bounded by slotWait (KindBusy past it), and ends
// at once when the request is abandoned (WithAbandon); an abandoned request
// that got its slot gives it back without sending.
func (c *Conn) enter(ctx context.Context, op string) (release func(), e *Error) {
	ab := abandonOf(ctx).Done()
	for {
		if e := c.waitGate(ctx, op); e != nil {
			return nil, e
		}
		if e := c.acquire(ctx, op, ab); e != nil {
			return nil, e
		}
		select {
		case <-ab:
			<-c.sem
			c.abandoned.Add(1)
			return nil, abandonedError(op)
		default:
		}
		if c.gateRemaining() <= 0 {
			return func() { <-c.sem }, nil
		}
		<-c.sem
	}
}

// acquire takes a concurrency slot, waiting at most slotWait (real time:
// the slot wait is a deadline of ours, like a context's).
func (c *Conn) acquire(ctx context.Context, op string, ab <-chan struct{}) *Error {
	select {
	case c.sem <- struct{}{}:
		return nil // the common case: no timer
	default:
	}
	var expired <-chan time.Time
	if c.slotWait > 0 {
		t := time.NewTimer(c.slotWait)
		defer t.Stop()
		expired = t.C
	}
	// Only a request that has waited preemptAfter may preempt an orphan:
	// callers who hang up sooner than that (a flood of them) must not take
	// turns cancelling each other's sent requests, each of which Dataverse
	// would still have to serve.
	patient := time.NewTimer(c.preemptAfter())
	defer patient.Stop()
	waitedLong := false
	defer func() {
		if waitedLong {
			c.omu.Lock()
			c.slotWaiters--
			c.omu.Unlock()
		}
	}()
	for {
		select {
		case c.sem <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctxError(op, ctx.Err())
		case <-ab:
			c.abandoned.Add(1)
			return abandonedError(op)
		case <-patient.C:
			waitedLong = true
			c.omu.Lock()
			c.slotWaiters++
			c.preemptLocked()
			c.omu.Unlock()
		case <-expired:
			c.shed.Add(1)
			return &Error{Kind: KindBusy, Op: op, RetryAfter: time.Second,
				Message: fmt.Sprintf("all %d concurrency slots stayed busy for %v", cap(c.sem), c.slotWait),
				Remedy:  RemedyBusy}
		}
	}
}

// preemptAfter is how long a request waits for a slot before it preempts
// an orphaned request: 100 ms, or half of a shorter SlotWait.
func (c *Conn) preemptAfter() time.Duration {
	d := 100 * time.Millisecond
	if c.slotWait > 0 {
		d = min(d, c.slotWait/2)
	}
	return d
}

// abandonKey is the context key of WithAbandon.
type abandonKey struct{}

// WithAbandon returns a context whose requests are given up once abandoned
// is done (the caller cancels it when everyone waiting for the answer has
// left): a request still waiting for the throttling gate, a concurrency
// slot or a retry backoff then fails at once with KindCanceled wrapping
// ErrAbandoned, and no further attempt starts. A request already sent runs
// on, so that its answer can still be cached, until another request has
// waited 100 ms for a concurrency slot: then it is cancelled to free its
// slot (Stats.Preempted). Its own deadline and cancellation stay with ctx.
func WithAbandon(ctx, abandoned context.Context) context.Context {
	return context.WithValue(ctx, abandonKey{}, abandoned)
}

// abandonOf returns the context of WithAbandon, or one that is never done.
func abandonOf(ctx context.Context) context.Context {
	if a, ok := ctx.Value(abandonKey{}).(context.Context); ok {
		return a
	}
	return context.Background()
}

// preemptible makes a sent request cancellable in favour of a request
// waiting for a slot once ctx's WithAbandon context is done. It returns the
// context to send with and a function to call when the request is over.
func (c *Conn) preemptible(ctx context.Context) (context.Context, func()) {
	ab, ok := ctx.Value(abandonKey{}).(context.Context)
	if !ok {
		return ctx, func() {}
	}
	rctx, cancel := context.WithCancelCause(ctx)
	s := &sending{cancel: cancel}
	stop := context.AfterFunc(ab, func() {
		c.omu.Lock()
		defer c.omu.Unlock()
		if c.slotWaiters > 0 {
			c.preempted.Add(1)
			cancel(errPreempted)
			return
		}
		if c.orphans == nil {
			c.orphans = make(map[*sending]struct{})
		}
		c.orphans[s] = struct{}{}
	})
	return rctx, func() {
		if !stop() {
			c.omu.Lock()
			delete(c.orphans, s)
			c.omu.Unlock()
		}
		cancel(nil)
	}
}

// preemptLocked cancels one orphaned request, if there is one, for a
// request about to wait for a slot. c.omu is held.
func (c *Conn) preemptLocked() {
	for s := range c.orphans {
		delete(c.orphans, s)
		c.preempted.Add(1)
		s.cancel(errPreempted)
		return
	}
}

func abandonedError(op string) *Error {
	return &Error{Kind: KindCanceled, Op: op, Err: ErrAbandoned, Message: "not sent: everyone waiting for it left"}
}

func (c *Conn) gateRemaining() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gateUntil.IsZero() {
		return 0
	}
	return c.gateUntil.Sub(c.clock.Now())
}

// closeGate holds every request back for d (extending, never shortening).
func (c *Conn) closeGate(d time.Duration, code string) {
	if d <= 0 {
		d = time.Second
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if until := c.clock.Now().Add(d); until.After(c.gateUntil) {
		c.gateUntil = until
		c.gateCode = code
	}
}

// waitGate waits until the gate opens, or fails fast with KindThrottled when
// the caller's deadline comes first.
func (c *Conn) waitGate(ctx context.Context, op string) *Error {
	for {
		rem := c.gateRemaining()
		if rem <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && rem >= time.Until(dl) {
			c.gateRejected.Add(1)
			c.mu.Lock()
			code := c.gateCode
			c.mu.Unlock()
			return &Error{Kind: KindThrottled, Op: op, Code: code, RetryAfter: rem,
				Message: "held back: Dataverse asked this client to pause after a 429",
				Remedy:  remedyThrottled(code, rem)}
		}
		select {
		case <-c.clock.After(rem):
		case <-ctx.Done():
			return ctxError(op, ctx.Err())
		case <-abandonOf(ctx).Done():
			c.abandoned.Add(1)
			return abandonedError(op)
		}
	}
}

// dataverseErrorBody is the Web API error JSON.
type dataverseErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// httpError classifies a Dataverse answer with status >= 400.
func (c *Conn) httpError(op string, resp *http.Response, body []byte) *Error {
	e := &Error{Op: op, Status: resp.StatusCode}
	var eb dataverseErrorBody
	isDataverse := json.Unmarshal(body, &eb) == nil && (eb.Error.Code != "" || eb.Error.Message != "")
	if isDataverse {
		e.Code = strings.ToLower(eb.Error.Code)
		e.Message = c.red.clean(firstLine(eb.Error.Message))
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized:
		e.Kind, e.Remedy = KindAuth, RemedyNoAppUser401
	case s == http.StatusForbidden:
		e.Kind = KindPermission
		switch {
		case e.Code == "0x80072560":
			e.Remedy = RemedyNoAppUser403
		case e.Code == "0x80040220" || strings.Contains(eb.Error.Message, "is missing prv"):
			e.Remedy = remedyPrivilege(privilegeTable(eb.Error.Message, op))
		default:
			e.Remedy = RemedyForbidden
		}
	case s == http.StatusNotFound:
		switch {
		case op == "GET WhoAmI" || !isDataverse:
			e.Kind, e.Remedy = KindConfig, RemedyOrgURL
		case e.Code == "0x80040217":
			e.Kind, e.Remedy = KindNotFound, RemedyNoRecord
		default:
			e.Kind, e.Remedy = KindNotFound, RemedyNoResource
		}
	case s == http.StatusTooManyRequests:
		e.Kind = KindThrottled
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now())
		if e.RetryAfter <= 0 {
			e.RetryAfter = time.Second
		}
		e.Remedy = remedyThrottled(e.Code, e.RetryAfter)
		e.transient = true
	case s >= 500:
		e.Kind, e.Remedy = KindUnavailable, RemedyUnavailable
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now())
		e.transient = s == http.StatusBadGateway || s == http.StatusServiceUnavailable || s == http.StatusGatewayTimeout
	default:
		e.Kind, e.Remedy = KindBadRequest, RemedyBadRequest
	}
	return e
}

// privilegeTable extracts the table from "... on OTC=1088 for entity
// 'salesorder'. ...", falling back to the entity set in op.
func privilegeTable(msg, op string) string {
	const marker = "for entity '"
	if i := strings.Index(msg, marker); i >= 0 {
		rest := msg[i+len(marker):]
		if j := strings.IndexByte(rest, '\''); j > 0 {
			return rest[:j]
		}
	}
	if _, set, ok := strings.Cut(op, " "); ok && set != "" {
		return set
	}
	return "the requested table"
}

// parseRetryAfter reads delta-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 24*3600 {
			n = 24 * 3600
		}
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, 24*time.Hour) // as for seconds: a far date must not close the gate for months
		}
	}
	return 0
}

// escapeQuery percent-encodes the bytes that may not appear raw in a URL
// query, leaving existing escapes and the query syntax alone.
func escapeQuery(q string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		ch := q[i]
		if ch <= ' ' || ch >= 0x7f || strings.IndexByte("\"<>\\^`{|}", ch) >= 0 {
			if b.Len() == 0 {
				b.Grow(len(q) + 16)
				b.WriteString(q[:i])
			}
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(ch)
		}
	}
	if b.Len() == 0 {
		return q
	}
	return b.String()
}

// releasingBody gives a streamed response's concurrency slot back when the
// caller closes the body.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
