package fleet

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Transport wraps base (nil = http.DefaultTransport) for a dataverse.Conn's
// HTTP client so that the fleet-wide throttle gate also covers what the
// gateway does not see: the connection's own retries and WhoAmI. A 429 from
// Dataverse is recorded for every replica at once, before the connection
// waits out its Retry-After; and while another replica's 429 holds the org
// back, a Web API request is answered locally with a 429 carrying the
// remaining Retry-After, so the connection behaves exactly as if Dataverse
// had said it (it closes its own gate, then retries or fails) without
// sending anything. Requests to Entra pass through untouched.
func (r *Redis) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{r: r, base: base}
}

type transport struct {
	r    *Redis
	base http.RoundTripper
}

const heldBody = `{"error":{"code":"","message":"Held back by dvgate: Dataverse throttled another replica signed in as this application user."}}`

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.Contains(req.URL.Path, "/api/data/") {
		return t.base.RoundTrip(req)
	}
	org := req.URL.Scheme + "://" + req.URL.Host
	if d := t.r.Blocked(req.Context(), org); d > 0 {
		if req.Body != nil {
			req.Body.Close()
		}
		return &http.Response{
			Status: "429 Too Many Requests", StatusCode: http.StatusTooManyRequests,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Retry-After": {retryAfterHeader(d)}, "Content-Type": {"application/json"},
				"X-Dvgate-Held": {"fleet"}},
			Body: io.NopCloser(bytes.NewReader([]byte(heldBody))), ContentLength: int64(len(heldBody)),
			Request: req,
		}, nil
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		d := time.Second
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
			d = time.Duration(s) * time.Second
		} else if at, err := http.ParseTime(resp.Header.Get("Retry-After")); err == nil && time.Until(at) > 0 {
			d = time.Until(at)
		}
		t.r.Block(req.Context(), org, d)
	}
	return resp, err
}
