package odataq

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strings"
)

// Doer sends HTTP requests: *http.Client, or dataverse.Conn, which adds the
// token and OData headers and turns a non-2xx answer into its own error.
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// EditFn changes a request before it is sent (its query string, or its URL
// to follow a nextLink).
type EditFn = func(ctx context.Context, req *http.Request) error

// ErrNotFound is returned by the generated First methods when no row matches.
var ErrNotFound = errors.New("odataq: no matching row")

// StatusError is a non-2xx answer that reached the generated client, which
// happens with a plain *http.Client as the Doer (dataverse.Conn returns its
// own typed error instead).
type StatusError struct {
	Method     string
	URL        string
	StatusCode int
	// Body is the start of the response body (at most 4 KiB).
	Body []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("odataq: %s %s: HTTP %d: %s", e.Method, e.URL, e.StatusCode, strings.TrimSpace(string(e.Body)))
}

// ResponseError returns the error for a response that carried no JSON
// result: a *StatusError for a non-2xx status, otherwise an error saying the
// body was not the expected JSON.
func ResponseError(rsp *http.Response, body []byte) error {
	if rsp == nil {
		return errors.New("odataq: no response")
	}
	if len(body) > 4096 {
		body = body[:4096]
	}
	u := ""
	if rsp.Request != nil && rsp.Request.URL != nil {
		u = rsp.Request.URL.Redacted()
	}
	if rsp.StatusCode < 200 || rsp.StatusCode > 299 {
		m := ""
		if rsp.Request != nil {
			m = rsp.Request.Method
		}
		return &StatusError{Method: m, URL: u, StatusCode: rsp.StatusCode, Body: body}
	}
	return fmt.Errorf("odataq: %s: HTTP %d with Content-Type %q, not a JSON entity", u, rsp.StatusCode, rsp.Header.Get("Content-Type"))
}

// Editor returns an EditFn that sets the request's query string to
// rawQuery (already encoded by Query.Encode, bypassing net/url's form
// encoding, which writes a space as '+') and, if not empty, the Prefer header.
func Editor(rawQuery, prefer string) EditFn {
	return func(_ context.Context, req *http.Request) error {
		req.URL.RawQuery = rawQuery
		if prefer != "" {
			req.Header.Set("Prefer", prefer)
		}
		return nil
	}
}

// Follow returns an EditFn that replaces the request URL with an
// @odata.nextLink, unchanged as Dataverse requires. The link must point to
// the same scheme and host as base, so that a forged link cannot send the
// caller's credentials elsewhere.
func Follow(base, link, prefer string) (EditFn, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("odataq: bad @odata.nextLink: %w", err)
	}
	b, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("odataq: bad base URL: %w", err)
	}
	if !u.IsAbs() {
		u = b.ResolveReference(u)
	}
	if !strings.EqualFold(u.Scheme, b.Scheme) || !strings.EqualFold(u.Host, b.Host) {
		return nil, fmt.Errorf("odataq: @odata.nextLink %q leaves %s://%s", u.Redacted(), b.Scheme, b.Host)
	}
	return func(_ context.Context, req *http.Request) error {
		req.URL = u
		req.Host = u.Host
		if prefer != "" {
			req.Header.Set("Prefer", prefer)
		}
		return nil
	}, nil
}

// Page is one page of a collection.
type Page[E any] struct {
	Value    []E
	NextLink string
}

// FetchFn fetches one page, applying edit to the request.
type FetchFn[E any] func(ctx context.Context, edit EditFn) (Page[E], error)

// Pages returns the rows of q, following @odata.nextLink page by page (one
// request per page, made while the caller iterates). It yields a single
// error and stops on the first failure; breaking out of the loop stops
// fetching. base is the service root that links must stay on.
func Pages[T, E any](ctx context.Context, base string, q Query[T], fetch FetchFn[E]) iter.Seq2[E, error] {
	return func(yield func(E, error) bool) {
		var zero E
		if err := q.Err(); err != nil {
			yield(zero, err)
			return
		}
		prefer := q.Prefer()
		edit := Editor(q.Encode(), prefer)
		for {
			p, err := fetch(ctx, edit)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, e := range p.Value {
				if !yield(e, nil) {
					return
				}
			}
			if p.NextLink == "" {
				return
			}
			if edit, err = Follow(base, p.NextLink, prefer); err != nil {
				yield(zero, err)
				return
			}
		}
	}
}

// Get sends GET base+path?query with the query's Prefer header through doer
// and decodes the JSON entity. The generated Get, GetByXxx and WhoAmI
// methods are one call of it.
func Get[T, E any](ctx context.Context, doer Doer, base, path string, q Query[T]) (*E, error) {
	if err := q.Err(); err != nil {
		return nil, err
	}
	u := strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(path, "/")
	var e E
	if err := get(ctx, doer, u, Editor(q.Encode(), q.Prefer()), &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// KeyLiteral returns the escaped literal for one alternate-key value, for
// paths such as salesorders(ordernumber='ORD%2B1').
func KeyLiteral(v any) (string, error) {
	lit, ok := Literal(v)
	if !ok {
		return "", fmt.Errorf("odataq: no OData literal for a key of type %T", v)
	}
	return Escape(lit), nil
}
