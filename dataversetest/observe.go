package dataversetest

import (
	"maps"
	"net/http"
	"sync"
	"time"
)

// Request is one Web API request as the simulator saw it.
type Request struct {
	Time     time.Time // arrival, by the server's Clock
	Method   string
	Path     string // URL path, e.g. "/api/data/v9.2/contacts"
	RawQuery string
	Header   http.Header
	Status   int    // response status; 0 if the connection was dropped
	Token    string // bearer token presented, "" if none
	// Filter is the decoded $filter, "" if none.
	Filter string
	// ParsedFilter is the parsed $filter (an Expr), nil if none or invalid.
	ParsedFilter any
}

// Counters is a snapshot of the request counters.
type Counters struct {
	WebAPI int // Web API requests, including rejected ones
	Token  int // token endpoint POSTs
	// ManagedIdentityToken counts requests to the managed identity
	// endpoint (IMDS and App Service shapes) that passed its header check.
	ManagedIdentityToken int
	ByPath               map[string]int // Web API requests per URL path
	ByToken              map[string]int // Web API requests per bearer token ("" = none)
}

// observer keeps the request log and counters.
type observer struct {
	mu      sync.Mutex
	reqs    []*Request
	web     int
	token   int
	miToken int
	byPath  map[string]int
	byToken map[string]int
}

// maxLog bounds the request log so long benchmarks don't grow memory.
const maxLog = 100_000

func (o *observer) begin(r *Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.web++
	if o.byPath == nil {
		o.byPath, o.byToken = map[string]int{}, map[string]int{}
	}
	o.byPath[r.Path]++
	o.byToken[r.Token]++
	if len(o.reqs) < maxLog {
		o.reqs = append(o.reqs, r)
	}
}

func (o *observer) finish(r *Request, status int, f string, parsed any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.Status, r.Filter, r.ParsedFilter = status, f, parsed
}

func (o *observer) countManagedIdentityToken() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.miToken++
}

func (o *observer) countToken() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.token++
}

// Requests returns a copy of the Web API request log (not token requests),
// in arrival order.
func (s *Server) Requests() []Request {
	o := &s.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Request, len(o.reqs))
	for i, r := range o.reqs {
		out[i] = *r
		out[i].Header = r.Header.Clone()
	}
	return out
}

// WebAPIRequests counts Web API requests, including rejected ones.
func (s *Server) WebAPIRequests() int {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return s.obs.web
}

// TokenRequests counts POSTs to the token endpoint.
func (s *Server) TokenRequests() int {
	s.obs.mu.Lock()
	defer s.obs.mu.Unlock()
	return s.obs.token
}

// Counters returns a snapshot of all counters.
func (s *Server) Counters() Counters {
	o := &s.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	return Counters{WebAPI: o.web, Token: o.token, ManagedIdentityToken: o.miToken, ByPath: maps.Clone(o.byPath), ByToken: maps.Clone(o.byToken)}
}

// ResetCounters clears the counters and the request log.
func (s *Server) ResetCounters() {
	o := &s.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reqs, o.web, o.token, o.miToken, o.byPath, o.byToken = nil, 0, 0, 0, nil, nil
}

// statusWriter records the status written.
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

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer (Hijack).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
