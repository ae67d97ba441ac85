package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/dvgate/dvgate/dataverse"
)

const fakeBase = "https://org.example.crm4.dynamics.com/api/data/v9.2/"

// fakeUpstream answers Do from a route table keyed by entity set (the path
// after the Web API root, up to "(" or "?") and records each request.
type fakeUpstream struct {
	mu     sync.Mutex
	routes map[string]func(q url.Values, path string) (string, error) // body or error
	seen   []seenRequest
}

type seenRequest struct {
	Path     string // relative to the Web API root, e.g. "salesorders(…)"
	RawQuery string
	Query    url.Values
	Prefer   string
}

func newFake() *fakeUpstream {
	return &fakeUpstream{routes: map[string]func(url.Values, string) (string, error){}}
}

func (f *fakeUpstream) on(set string, h func(q url.Values, path string) (string, error)) {
	f.mu.Lock()
	f.routes[set] = h
	f.mu.Unlock()
}

// reply answers set with a fixed body.
func (f *fakeUpstream) reply(set, body string) {
	f.on(set, func(url.Values, string) (string, error) { return body, nil })
}

// fail answers set with a dataverse error of the given kind.
func (f *fakeUpstream) fail(set string, kind dataverse.Kind, status int) {
	f.on(set, func(url.Values, string) (string, error) {
		return "", &dataverse.Error{Kind: kind, Status: status, Op: "GET " + set}
	})
}

func (f *fakeUpstream) BaseURL() string { return fakeBase }

func (f *fakeUpstream) WhoAmI(ctx context.Context) (dataverse.WhoAmIResult, error) {
	return dataverse.WhoAmIResult{OrganizationID: "org-1", UserID: "user-1", BusinessUnitID: "bu-1"}, nil
}

func (f *fakeUpstream) Do(req *http.Request) (*http.Response, error) {
	path := strings.TrimPrefix(req.URL.Path, "/api/data/v9.2/")
	set := path
	if i := strings.IndexByte(set, '('); i >= 0 {
		set = set[:i]
	}
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{Path: path, RawQuery: req.URL.RawQuery, Query: req.URL.Query(), Prefer: req.Header.Get("Prefer")})
	h := f.routes[set]
	f.mu.Unlock()
	if h == nil {
		return nil, &dataverse.Error{Kind: dataverse.KindNotFound, Status: 404, Op: "GET " + set}
	}
	body, err := h(req.URL.Query(), path)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(body)))}, nil
}

func (f *fakeUpstream) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakeUpstream) paths() []string {
	var p []string
	for _, r := range f.requests() {
		p = append(p, r.Path)
	}
	return p
}
