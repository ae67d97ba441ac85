package odataq

import (
	"errors"
	"strconv"
	"strings"
)

// Query holds the query options for table T. The zero Query selects
// everything; methods return modified copies.
type Query[T any] struct {
	sel      []string
	filter   Filter[T]
	order    []string
	top      int
	expand   []Expansion[T]
	annots   []string
	pageSize int
}

// Select sets $select; calling it again adds columns.
func (q Query[T]) Select(cols ...Column[T]) Query[T] {
	s := make([]string, len(q.sel), len(q.sel)+len(cols))
	copy(s, q.sel)
	for _, c := range cols {
		s = append(s, c.ColumnName())
	}
	q.sel = s
	return q
}

// Filter sets $filter; calling it again and-combines.
func (q Query[T]) Filter(f ...Filter[T]) Query[T] {
	q.filter = And(append([]Filter[T]{q.filter}, f...)...)
	return q
}

// OrderBy sets $orderby; calling it again adds items.
func (q Query[T]) OrderBy(o ...Order[T]) Query[T] {
	s := make([]string, len(q.order), len(q.order)+len(o))
	copy(s, q.order)
	for _, x := range o {
		s = append(s, x.text)
	}
	q.order = s
	return q
}

// Top sets $top (n <= 0 removes it). Dataverse ignores $top when a page size
// is requested.
func (q Query[T]) Top(n int) Query[T] {
	q.top = max(n, 0)
	return q
}

// Expand adds $expand items.
func (q Query[T]) Expand(e ...Expansion[T]) Query[T] {
	s := make([]Expansion[T], len(q.expand), len(q.expand)+len(e))
	copy(s, q.expand)
	q.expand = append(s, e...)
	return q
}

// Annotations asks for instance annotations in the Prefer header, such as
// FormattedValues or "*". Without it, responses carry none.
func (q Query[T]) Annotations(names ...string) Query[T] {
	s := make([]string, len(q.annots), len(q.annots)+len(names))
	copy(s, q.annots)
	q.annots = append(s, names...)
	return q
}

// Annotation names for Query.Annotations.
const (
	AllAnnotations       = "*"
	FormattedValues      = "OData.Community.Display.V1.FormattedValue"
	LookupLogicalName    = "Microsoft.Dynamics.CRM.lookuplogicalname"
	NavigationProperty   = "Microsoft.Dynamics.CRM.associatednavigationproperty"
	maxDataversePageSize = 5000
)

// PageSize asks for pages of n rows (Prefer: odata.maxpagesize, at most
// 5000); n <= 0 leaves the server default (5000).
func (q Query[T]) PageSize(n int) Query[T] {
	q.pageSize = min(max(n, 0), maxDataversePageSize)
	return q
}

// Err returns the first error building the query, or nil.
func (q Query[T]) Err() error {
	errs := []error{q.filter.err}
	for _, e := range q.expand {
		errs = append(errs, e.err)
	}
	return errors.Join(errs...)
}

// Encode returns the URL query string ("$select=a,b&$filter=..."), with
// values percent-encoded as the package comment describes.
func (q Query[T]) Encode() string { return q.options("&") }

// options renders the options joined by sep: "&" at the top level, "%3B"
// inside an $expand.
func (q Query[T]) options(sep string) string {
	var parts []string
	if len(q.sel) > 0 {
		parts = append(parts, "$select="+Escape(strings.Join(q.sel, ",")))
	}
	if q.filter.expr != "" {
		parts = append(parts, "$filter="+Escape(q.filter.expr))
	}
	if len(q.order) > 0 {
		parts = append(parts, "$orderby="+Escape(strings.Join(q.order, ",")))
	}
	if q.top > 0 {
		parts = append(parts, "$top="+strconv.Itoa(q.top))
	}
	if len(q.expand) > 0 {
		items := make([]string, len(q.expand))
		for i, e := range q.expand {
			// Nested options are already escaped; the ; and = between them
			// are structural.
			items[i] = e.render()
		}
		parts = append(parts, "$expand="+strings.Join(items, ","))
	}
	return strings.Join(parts, sep)
}

// Prefer returns the Prefer header value for the query's annotations and
// page size, "" for none.
func (q Query[T]) Prefer() string {
	var p []string
	if len(q.annots) > 0 {
		p = append(p, `odata.include-annotations="`+strings.Join(q.annots, ",")+`"`)
	}
	if q.pageSize > 0 {
		p = append(p, "odata.maxpagesize="+strconv.Itoa(q.pageSize))
	}
	return strings.Join(p, ",")
}

// WithTop returns q with $top set, keeping other options; used by First.
func (q Query[T]) withTop(n int) Query[T] { q.top = n; q.pageSize = 0; return q }

// First returns q limited to one row and without a page size, for the
// generated First methods.
func First[T any](q Query[T]) Query[T] { return q.withTop(1) }
