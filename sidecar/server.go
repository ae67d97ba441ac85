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
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServerConfig configures the HTTP handler.
type ServerConfig struct {
	Registry *Registry
	Logger   *slog.Logger // nil = discard
	Metrics  *Metrics     // nil = none
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
}

// Server is the sidecar's http.Handler. It is safe for concurrent use.
type Server struct {
	cfg      ServerConfig
	log      *slog.Logger
	now      func() time.Time
	handler  http.Handler
	spec     []byte
	tokenSum [sha256.Size]byte
	draining atomic.Bool
}

// NewServer builds the handler: the generated routes of openapi.yaml behind
// request-id, logging, metrics, authentication and limit middleware, plus
// /metrics and /openapi.json.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Registry == nil {
		return nil, errors.New("sidecar: ServerConfig.Registry is required")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 25 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Clock}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.APIToken != "" {
		s.tokenSum = sha256.Sum256([]byte(cfg.APIToken))
	}
	doc, err := GetSpec()
	if err != nil {
		return nil, fmt.Errorf("sidecar: embedded OpenAPI document: %w", err)
	}
	if s.spec, err = json.MarshalIndent(doc, "", "  "); err != nil {
		return nil, fmt.Errorf("sidecar: embedded OpenAPI document: %w", err)
	}

	mux := http.NewServeMux()
	strict := NewStrictHandlerWithOptions(&api{s: s}, []StrictMiddlewareFunc{recordOperation},
		StrictHTTPServerOptions{RequestErrorHandlerFunc: s.requestError, ResponseErrorHandlerFunc: s.responseError})
	HandlerWithOptions(strict, StdHTTPServerOptions{BaseRouter: mux, ErrorHandlerFunc: s.requestError})
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
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errNotFound(fmt.Sprintf("No such endpoint: %s %s; see /openapi.json.", r.Method, r.URL.Path)))
	})
	s.handler = s.limits(s.authenticate(mux))
	return s, nil
}

// Drain makes /readyz fail, so that a load balancer stops sending new
// requests while the server shuts down.
func (s *Server) Drain() { s.draining.Store(true) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	ri := &reqInfo{id: requestID(r.Header.Get("X-Request-Id")), op: "other"}
	w.Header().Set("X-Request-Id", ri.id)
	sw := &statusWriter{ResponseWriter: w}
	s.cfg.Metrics.inflight(1)
	defer s.cfg.Metrics.inflight(-1)
	s.handler.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri)))
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	d := s.now().Sub(start)
	s.cfg.Metrics.request(ri.op, sw.status, d)
	if ri.op == "Healthz" || ri.op == "Readyz" || ri.op == "metrics" {
		return // probes and scrapes would drown the log
	}
	attrs := []slog.Attr{
		slog.String("requestId", ri.id), slog.String("method", r.Method), slog.String("op", ri.op),
		slog.Int("status", sw.status), slog.Float64("durationMs", float64(d.Microseconds())/1000),
	}
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
		case e.Status >= 500 && e.Code != ErrorCodeInternal:
			level = slog.LevelWarn
		case e.Status >= 500:
			level = slog.LevelError
		}
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
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
	err         *APIError
}

type reqInfoKey struct{}

func info(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{} // not under ServeHTTP (direct handler tests)
}

func recordOperation(f StrictHandlerFunc, operationID string) StrictHandlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, request any) (any, error) {
		info(ctx).op = operationID
		return f(ctx, w, r, request)
	}
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID echoes a caller's well-formed id, else makes one.
func requestID(in string) string {
	if requestIDPattern.MatchString(in) {
		return in
	}
	return rand.Text()
}

// authenticate requires the API token, compared in constant time (of
// SHA-256 sums, so the token's length does not leak either).
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.cfg.APIToken == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.tokenSum[:]) != 1 {
			s.fail(w, r, &APIError{Code: ErrorCodeAuth, Status: http.StatusUnauthorized,
				Message: "Missing or wrong API token: send the gateway's DVGATE_API_TOKEN as \"Authorization: Bearer <token>\"."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limits bounds the request body and, for the API, the time to answer.
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// fail writes an error document and records it for the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *APIError) {
	info(r.Context()).err = e
	writeError(w, e)
}

// requestError answers parameters the generated binding rejected.
func (s *Server) requestError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		req *RequiredParamError
		bad *InvalidParamFormatError
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
func (s *Server) responseError(w http.ResponseWriter, r *http.Request, err error) {
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
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}
