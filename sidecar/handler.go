package sidecar

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/sidecar/internal/httpapi"
)

// handlerConfig configures the HTTP handler.
type handlerConfig struct {
	Registry *integration.Registry
	Logger   *slog.Logger // nil = discard
	Metrics  *metrics     // nil = none
	// Gatherer is served at /metrics; nil = no /metrics.
	Gatherer prometheus.Gatherer
	// APIToken, when set, is required as "Authorization: Bearer <token>" on
	// every path except /healthz and /readyz.
	APIToken string
	// RequestTimeout bounds one API request, so the caller gets a 504
	// rather than waiting on Dataverse; default 25s.
	RequestTimeout time.Duration
	// MaxBodyBytes limits request bodies; default 64 KiB (no operation
	// takes a body today).
	MaxBodyBytes int64
	Clock        func() time.Time // nil = time.Now
	// MCP serves the MCP tools at /mcp and
	// /v1/integrations/{integration}/mcp; nil = not served.
	MCP http.Handler
}

// handler is the sidecar's http.Handler. It is safe for concurrent use.
type handler struct {
	cfg handlerConfig
	log *slog.Logger
	now func() time.Time
	// realClock: now is time.Now, so its readings serve as wall-clock
	// time too (one clock read fewer per request; see wallClock).
	realClock bool
	handler   http.Handler
	spec      []byte
	tokenSum  [sha256.Size]byte
	draining  atomic.Bool
	inFlight  atomic.Int64 // requests being served, for the shutdown log line
	// Request ids: idPrefix (random per Server) and a counter.
	idPrefix string
	idSeq    atomic.Uint64
	// ops holds each operation's metrics, resolved at newHandler; read-only.
	ops map[string]*opMetrics
	// Encoded answers of the hot lookups (see answerMemo).
	orders    *answerMemo[gateway.Order]
	customers *answerMemo[gateway.Customer]
}

// newHandler builds the handler: the generated routes of openapi.yaml behind
// request-id, logging, metrics, authentication and limit middleware, plus
// /metrics and /openapi.json.
func newHandler(cfg handlerConfig) (*handler, error) {
	if cfg.Registry == nil {
		return nil, errors.New("sidecar: handlerConfig.Registry is required")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 25 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	s := &handler{cfg: cfg, log: cfg.Logger, now: cfg.Clock, realClock: cfg.Clock == nil,
		orders: newAnswerMemo[gateway.Order](), customers: newAnswerMemo[gateway.Customer]()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.idPrefix = rand.Text()[:13] + "-"
	if cfg.APIToken != "" {
		s.tokenSum = sha256.Sum256([]byte(cfg.APIToken))
	}
	doc, err := httpapi.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("sidecar: embedded OpenAPI document: %w", err)
	}
	if s.spec, err = json.MarshalIndent(doc, "", "  "); err != nil {
		return nil, fmt.Errorf("sidecar: embedded OpenAPI document: %w", err)
	}

	mux := http.NewServeMux()
	strict := httpapi.NewStrictHandlerWithOptions(&handlers{h: s}, nil,
		httpapi.StrictHTTPServerOptions{RequestErrorHandlerFunc: s.requestError, ResponseErrorHandlerFunc: s.responseError})
	routes := &opRouter{ServeMux: mux, ops: routeOperations(doc)}
	httpapi.HandlerWithOptions(strict, httpapi.StdHTTPServerOptions{BaseRouter: routes, ErrorHandlerFunc: s.requestError})
	if routes.err != nil {
		return nil, routes.err
	}
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		info(r.Context()).op = "openapi"
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.spec)
	})
	if cfg.Gatherer != nil {
		ph := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			info(r.Context()).op = "metrics"
			ph.ServeHTTP(w, r)
		})
	}
	ops := append(operationIDs(doc), "openapi", "metrics", "other")
	if cfg.MCP != nil {
		mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
			info(r.Context()).op = "mcp"
			cfg.MCP.ServeHTTP(w, r)
		})
		mux.HandleFunc("/v1/integrations/{integration}/mcp", func(w http.ResponseWriter, r *http.Request) {
			ri := info(r.Context())
			ri.op, ri.integration = "mcp", r.PathValue("integration")
			cfg.MCP.ServeHTTP(w, r)
		})
		ops = append(ops, "mcp")
	}
	patterns := append(routes.patterns, "GET /openapi.json")
	if cfg.Gatherer != nil {
		patterns = append(patterns, "GET /metrics")
	}
	known := methodsOf(patterns)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := known(r.URL.Path); allow != "" {
			// The path exists: the method is what is wrong (RFC 9110 15.5.6).
			w.Header().Set("Allow", allow)
			s.fail(w, r, &apiError{domainError{Code: integration.CodeInvalidInput,
				Message: fmt.Sprintf("%s is not allowed on %s: use %s.", r.Method, r.URL.Path, allow)}, http.StatusMethodNotAllowed})
			return
		}
		s.fail(w, r, errNotFound(fmt.Sprintf("No such endpoint: %s %s; see /openapi.json.", r.Method, r.URL.Path)))
	})
	s.handler = s.authenticate(s.checkQuery(mux))
	s.ops = map[string]*opMetrics{}
	for _, op := range ops {
		s.ops[op] = s.cfg.Metrics.op(op)
	}
	return s, nil
}

// drain makes /readyz fail, so that a load balancer stops sending new
// requests while the server shuts down.
func (s *handler) drain() { s.draining.Store(true) }

// ServeHTTP implements http.Handler.
//
// A cached lookup is the common request, so this path is kept cheap: one
// allocation holds the per-request state and context (request), header
// values are assigned without a slice each, the request timeout's timer is
// made only if something waits, metric children are resolved once per
// operation, and the log line's attributes are kept in request (no
// allocation of their own).
func (s *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	rq := &request{parent: r.Context(), sw: statusWriter{ResponseWriter: w}}
	ri := &rq.info
	ri.id, ri.op = s.requestID(r.Header.Get("X-Request-Id")), "other"
	rq.idVal[0] = ri.id
	w.Header()["X-Request-Id"] = rq.idVal[:]
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		// Bound the time to answer, so the caller gets a 504 rather than
		// waiting on Dataverse (see request for when the timer is made).
		rq.timed, rq.deadline = true, s.wallClock(start).Add(s.cfg.RequestTimeout)
		defer rq.release()
	}
	s.cfg.Metrics.inflight(1)
	defer s.cfg.Metrics.inflight(-1)
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	r = r.WithContext(rq)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(&rq.sw, r.Body, s.cfg.MaxBodyBytes)
	}
	s.handler.ServeHTTP(&rq.sw, r)
	status := rq.sw.status
	if status == 0 {
		status = http.StatusOK
	}
	end := s.now()
	d := end.Sub(start)
	s.opMetrics(ri.op).observe(status, d)
	if ri.op == "Healthz" || ri.op == "Readyz" || ri.op == "metrics" {
		return // probes and scrapes would drown the log
	}
	// The record keeps five attributes inline and allocates for more, so
	// everything after status goes in one group with an empty key, which
	// handlers inline (same flat JSON line); its attributes live in rq.
	rq.dur.set(d)
	attrs := append(rq.logAttrs[:0], slog.Any("durationMs", &rq.dur))
	if ri.integration != "" {
		attrs = append(attrs, slog.String("integration", ri.integration))
	}
	if ri.kind != "" {
		attrs = append(attrs, slog.String("kind", ri.kind))
	}
	if ri.email != "" {
		attrs = append(attrs, slog.String("email", ri.email))
	}
	if ri.cache != "" {
		attrs = append(attrs, slog.String("cache", ri.cache))
	}
	level := slog.LevelInfo
	if e := ri.err; e != nil {
		attrs = append(attrs, slog.String("error", string(e.Code)))
		if e.UpstreamStatus != 0 {
			attrs = append(attrs, slog.Int("upstreamStatus", e.UpstreamStatus))
		}
		if e.DataverseCode != "" {
			attrs = append(attrs, slog.String("dataverseCode", e.DataverseCode))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("cause", e.Err.Error()))
		}
		switch {
		case e.Status >= 500 && e.Code != integration.CodeInternal:
			level = slog.LevelWarn
		case e.Status >= 500:
			level = slog.LevelError
		}
	}
	// As Logger.LogAttrs, without its runtime.Callers for the source
	// position (always this line, so it says nothing).
	if h := s.log.Handler(); h.Enabled(rq, level) {
		rec := slog.NewRecord(s.wallClock(end), level, "request", 0)
		rec.AddAttrs(slog.String("requestId", ri.id), slog.String("method", r.Method), slog.String("op", ri.op),
			slog.Int("status", status), slog.Attr{Value: slog.GroupValue(attrs...)})
		_ = h.Handle(rq, rec)
	}
}

// reqInfo collects what the access log line reports. It is written only by
// the goroutine serving the request.
type reqInfo struct {
	id          string
	op          string
	integration string
	kind        string // lookup kind: customer, order, recent_orders, refunds, test
	email       string // masked
	cache       string
	err         *apiError
	details     bool       // /readyz may name integrations (no API token configured, or the caller sent it)
	answer      jsonAnswer // a lookup's answer, written by the generated handler
}

type reqInfoKey struct{}

func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{} // not under ServeHTTP (direct handler tests)
}

// opRouter registers the generated routes on a ServeMux, each behind a
// handler that records its operation id for the log and metrics: resolved
// once per route instead of per request (as a strict middleware would).
type opRouter struct {
	*http.ServeMux
	ops      map[string]string // route pattern ("GET /v1/orders/{ref}") -> operation id
	patterns []string          // as registered
	err      error
}

func (o *opRouter) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	o.patterns = append(o.patterns, pattern)
	op, ok := o.ops[pattern]
	if !ok {
		o.err = errors.Join(o.err, fmt.Errorf("sidecar: generated route %q has no operation in the OpenAPI document", pattern))
	}
	o.ServeMux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		info(r.Context()).op = op
		h(w, r)
	})
}

// methodsOf returns a function that says which methods the routes
// (patterns "METHOD /path/{param}") allow on a path, as an Allow header
// value ("GET, HEAD"), or "" when no route has the path.
func methodsOf(patterns []string) func(path string) string {
	probe := http.NewServeMux()
	for _, p := range patterns {
		probe.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return func(path string) string {
		var allow []string
		for _, m := range methods {
			if _, p := probe.Handler(&http.Request{Method: m, Host: "h", URL: &url.URL{Path: path}}); p != "" {
				allow = append(allow, m)
			}
		}
		return strings.Join(allow, ", ")
	}
}

// checkQuery answers a query string that is not valid percent-encoding
// (a '%' not followed by two hex digits) as such: url.Query drops such a
// parameter, which the operation would then report as missing.
func (s *handler) checkQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bad := badEscape(r.URL.RawQuery); bad != "" {
			s.fail(w, r, errInvalid("The query string is not valid percent-encoding: %q is not %%XX with two hex digits; send a %% itself as %%25.", bad))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// badEscape returns the first malformed escape of a raw query ("%zz",
// "%4", "%"), or "".
func badEscape(q string) string {
	for i := strings.IndexByte(q, '%'); i >= 0; {
		if i+2 >= len(q) || !ishex(q[i+1]) || !ishex(q[i+2]) {
			return q[i:min(i+3, len(q))]
		}
		j := strings.IndexByte(q[i+3:], '%')
		if j < 0 {
			break
		}
		i += 3 + j
	}
	return ""
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// routeOperations maps each operation's route pattern, as the generated
// std-http code registers it (method, space, path template), to its id.
func routeOperations(doc *openapi3.T) map[string]string {
	out := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[method+" "+path] = op.OperationID
		}
	}
	return out
}

// requestID echoes a caller's well-formed id (1-128 of A-Z a-z 0-9 . _ : -),
// else makes one: a per-process random prefix and a counter, unique
// without reading crypto/rand per request.
func (s *handler) requestID(in string) string {
	if validRequestID(in) {
		return in
	}
	var buf [40]byte
	b := append(buf[:0], s.idPrefix...)
	b = strconv.AppendUint(b, s.idSeq.Add(1), 36)
	return string(b)
}

func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// authenticate requires the API token, compared in constant time (of
// SHA-256 sums, so the token's length does not leak either).
func (s *handler) authenticate(next http.Handler) http.Handler {
	if s.cfg.APIToken == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authed := s.tokenOK(r.Header.Get("Authorization"))
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			// Probes need no token; /readyz names integrations and their
			// state only to a caller that has one.
			info(r.Context()).details = authed
			next.ServeHTTP(w, r)
			return
		}
		if !authed {
			s.fail(w, r, &apiError{domainError{Code: integration.CodeAuth,
				Message: "Missing or wrong API token: send the gateway's DVGATE_API_TOKEN as \"Authorization: Bearer <token>\"."}, http.StatusUnauthorized})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenOK reports whether an Authorization header value carries the API
// token, as "Bearer <token>" (the scheme is case-insensitive, RFC 9110).
func (s *handler) tokenOK(h string) bool {
	scheme, got, ok := strings.Cut(strings.TrimSpace(h), " ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) == 1
}

// wallClock returns t, read from s.now, if that is the real clock, else
// time.Now: the request timeout and log timestamps are wall-clock time
// even under a test clock.
func (s *handler) wallClock(t time.Time) time.Time {
	if s.realClock {
		return t
	}
	return time.Now()
}

// opMetrics returns the metrics of op (an operation id, or one of the
// names NewServer adds).
func (s *handler) opMetrics(op string) *opMetrics {
	if m, ok := s.ops[op]; ok {
		return m
	}
	return s.cfg.Metrics.op(op) // not reached: every op is in s.ops
}

// operationIDs lists the document's operation ids.
func operationIDs(doc *openapi3.T) []string {
	var ids []string
	for _, p := range doc.Paths.Map() {
		for _, o := range p.Operations() {
			if o.OperationID != "" {
				ids = append(ids, o.OperationID)
			}
		}
	}
	return ids
}

// fail writes an error document and records it for the log.
func (s *handler) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	ri := info(r.Context())
	ri.err = e
	if e.Meta != nil {
		ri.cache = e.Meta.Outcome.String()
	}
	writeError(w, e)
}

// requestError answers parameters the generated binding rejected. Such a
// request is counted and logged under operation "other" (it reached no
// operation).
func (s *handler) requestError(w http.ResponseWriter, r *http.Request, err error) {
	info(r.Context()).op = "other"
	var (
		req *httpapi.RequiredParamError
		bad *httpapi.InvalidParamFormatError
	)
	switch {
	case errors.As(err, &req):
		s.fail(w, r, errInvalid("The query parameter %q is required.", req.ParamName))
	case errors.As(err, &bad):
		s.fail(w, r, errInvalid("The parameter %q is not valid: %v.", bad.ParamName, bad.Err))
	default:
		s.fail(w, r, errInvalid("The request is not valid: %v.", err))
	}
}

// responseError answers an error a handler returned.
func (s *handler) responseError(w http.ResponseWriter, r *http.Request, err error) {
	s.fail(w, r, asAPIError(err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maskEmail keeps the first character and the domain: a***@example.com.
func maskEmail(email string) string {
	local, domain, ok := strings.Cut(strings.TrimSpace(email), "@")
	if !ok || local == "" {
		return "***"
	}
	first := "\uFFFD" // as string([]rune(local)[0]) for invalid UTF-8
	if c, n := utf8.DecodeRuneInString(local); c != utf8.RuneError || n > 1 {
		first = local[:n]
	}
	return first + "***@" + domain
}
