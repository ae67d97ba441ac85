package dataversetest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fault describes a misbehaviour to inject. A Fault applies to requests
// matching Path (prefix match on the URL path; "" = all Web API paths;
// "token" = the Entra token endpoint), for the next Count matching requests
// (0 = until removed) and, when Fraction is set, only to that random fraction
// of them. Several faults may apply to one request: their latencies add up,
// and the first of Reset, Status, Malformed, Body (in that order) decides
// the response.
type Fault struct {
	Path     string
	Count    int
	Fraction float64
	// Status forces an HTTP status. 429 gets the documented service
	// protection body (0x80072322) and Retry-After; other statuses get a
	// Dataverse error body (or an Entra one on the token endpoint).
	Status int
	// RetryAfter is sent as Retry-After in whole seconds (rounded up) with
	// Status 429 or 503; for 429 it defaults to 1 s.
	RetryAfter time.Duration
	// Latency is added before the response; Jitter adds uniform 0..Jitter.
	// Latency uses real time (it exists to exercise client timeouts) and
	// ends early when the client goes away.
	Latency time.Duration
	Jitter  time.Duration
	// Malformed answers 200 with a truncated JSON body.
	Malformed bool
	// Reset closes the connection without a response.
	Reset bool
	// SlowBody writes the (real) response body in pieces spread over this
	// long.
	SlowBody time.Duration
	// Body answers 200 with this JSON body (OData headers) instead of the
	// real answer: a well-formed answer to some other question, such as an
	// unexpected @odata.context.
	Body string
}

type activeFault struct {
	Fault
	id        int
	remaining int
}

// faultSet is the list of active faults; its own mutex keeps fault
// bookkeeping off the server's state lock.
type faultSet struct {
	mu     sync.Mutex
	next   int
	faults []*activeFault
}

// InjectFault activates f until it has applied Count times or remove is
// called.
func (s *Server) InjectFault(f Fault) (remove func()) {
	_, remove = s.injectFault(f)
	return remove
}

func (s *Server) injectFault(f Fault) (id int, remove func()) {
	fs := &s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.next++
	af := &activeFault{Fault: f, id: fs.next, remaining: f.Count}
	fs.faults = append(fs.faults, af)
	return af.id, func() {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		fs.removeLocked(af.id)
	}
}

// ClearFaults removes all faults.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = nil
}

func (fs *faultSet) removeLocked(id int) {
	for i, f := range fs.faults {
		if f.id == id {
			fs.faults = append(fs.faults[:i:i], fs.faults[i+1:]...)
			return
		}
	}
}

// plan collects the faults that apply to one request and consumes their
// counts.
func (fs *faultSet) plan(path string, token bool) (p Fault, any bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, f := range append([]*activeFault(nil), fs.faults...) {
		switch {
		case f.Path == "token":
			if !token {
				continue
			}
		case f.Path == "":
			if token {
				continue
			}
		case !strings.HasPrefix(path, f.Path):
			continue
		}
		if f.Fraction > 0 && rand.Float64() >= f.Fraction {
			continue
		}
		any = true
		p.Latency += f.Latency
		if f.Jitter > 0 {
			p.Latency += time.Duration(rand.Int64N(int64(f.Jitter) + 1))
		}
		if p.Status == 0 && !p.Reset && !p.Malformed && p.Body == "" {
			p.Reset, p.Status, p.Malformed, p.RetryAfter, p.Body = f.Reset, f.Status, f.Malformed, f.RetryAfter, f.Body
		}
		if f.SlowBody > p.SlowBody {
			p.SlowBody = f.SlowBody
		}
		if f.Count > 0 {
			f.remaining--
			if f.remaining <= 0 {
				fs.removeLocked(f.id)
			}
		}
	}
	return p, any
}

// applyFaults applies matching faults. It returns done when it has answered
// the request (or dropped the connection); otherwise the caller serves it.
// inner serves the request normally (for SlowBody).
func (s *Server) applyFaults(w http.ResponseWriter, r *http.Request, token bool, inner func(http.ResponseWriter)) (done bool) {
	p, ok := s.faults.plan(r.URL.Path, token)
	if !ok {
		return false
	}
	if p.Latency > 0 {
		if r.Body != nil && r.Body != http.NoBody {
			// net/http notices a client going away only once the request
			// body was read to the end; without this a delayed token POST
			// would outlive its client (and block Close) for the whole
			// latency.
			b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		t := time.NewTimer(p.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	switch {
	case p.Reset:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return true
		}
		panic(http.ErrAbortHandler) // fallback: net/http aborts the response
	case p.Status != 0:
		retry := p.RetryAfter
		if p.Status == http.StatusTooManyRequests && retry == 0 {
			retry = time.Second
		}
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
		}
		if token {
			code, n, msg := "temporarily_unavailable", 90033, "A transient error has occurred. Please try again."
			if p.Status < 500 && p.Status != http.StatusTooManyRequests {
				code, n, msg = "invalid_request", 900144, "Injected failure."
			}
			s.entraError(w, p.Status, code, n, msg)
			return true
		}
		switch p.Status {
		case http.StatusTooManyRequests:
			writeError(w, p.Status, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.")
		default:
			writeError(w, p.Status, "0x80040216", "An unexpected error occurred: "+http.StatusText(p.Status)+".")
		}
		return true
	case p.Malformed:
		w.Header().Set("Content-Type", jsonContentType)
		setODataVersion(w.Header())
		w.WriteHeader(http.StatusOK)
		if token {
			_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":35`))
		} else {
			_, _ = w.Write([]byte(`{"@odata.context":"` + s.url + webAPIPrefix + `$metadata#contacts","value":[{"@odata.etag":"W/\"1`))
		}
		return true
	case p.Body != "":
		w.Header().Set("Content-Type", jsonContentType)
		setODataVersion(w.Header())
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(p.Body))
		return true
	}
	if p.SlowBody > 0 {
		// Record the real response, then dribble it out.
		rec := &bufferedWriter{header: w.Header(), status: http.StatusOK}
		inner(rec)
		w.WriteHeader(rec.status)
		body := rec.buf.Bytes()
		const pieces = 10
		step := (len(body) + pieces - 1) / pieces
		fl, _ := w.(http.Flusher)
		for i := 0; i < len(body); i += max(step, 1) {
			end := min(i+max(step, 1), len(body))
			if i > 0 {
				t := time.NewTimer(p.SlowBody / pieces)
				select {
				case <-t.C:
				case <-r.Context().Done():
					t.Stop()
					return true
				}
			}
			_, _ = w.Write(body[i:end])
			if fl != nil {
				fl.Flush()
			}
		}
		return true
	}
	return false
}

// bufferedWriter records a response.
type bufferedWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) WriteHeader(code int)        { b.status = code }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.buf.Write(p) }
