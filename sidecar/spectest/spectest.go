// Package spectest checks HTTP exchanges against the sidecar's OpenAPI
// document, for tests: a response that does not match the published
// contract (a renamed field, a float amount, an undocumented status) fails
// the test that produced it. Only test code imports it.
package spectest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/dvgate/dvgate/sidecar/internal/httpapi"
)

var load = sync.OnceValues(func() (routers.Router, error) {
	doc, err := httpapi.GetSpec()
	if err != nil {
		return nil, err
	}
	doc.Servers = nil // match any host
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	return legacy.NewRouter(doc)
})

// Check fails t unless the response (status, headers, JSON body) is one the
// document allows for the request. body is the response body already read.
func Check(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	router, err := load()
	if err != nil {
		t.Fatalf("spectest: OpenAPI document: %v", err)
	}
	r := req.Clone(context.Background())
	r.Body = http.NoBody
	route, params, err := router.FindRoute(r)
	if err != nil {
		t.Errorf("spectest: %s %s is not in the OpenAPI document: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("spectest: %s %s -> %d does not match the OpenAPI document: %v\nbody: %s", req.Method, req.URL, resp.StatusCode, err, body)
	}
}
