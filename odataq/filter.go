package odataq

import (
	"errors"
	"fmt"
	"strings"
)

// Operator precedence of a rendered filter, to parenthesize only when needed.
const (
	precOr = iota
	precAnd
	precUnary // not, comparisons, function calls, parenthesized
)

// Filter is a $filter expression over table T. The zero Filter is empty:
// And and Or skip it, and a Query with an empty filter has no $filter.
type Filter[T any] struct {
	expr string // plain OData text, not URL-encoded
	prec int
	err  error
}

// String returns the filter as OData text, not URL-encoded.
func (f Filter[T]) String() string { return f.expr }

// Err returns the first error building the filter (a value of a type that
// has no OData literal), or nil.
func (f Filter[T]) Err() error { return f.err }

// IsZero reports whether f is empty.
func (f Filter[T]) IsZero() bool { return f.expr == "" && f.err == nil }

// And combines filters with and; empty ones are skipped.
func And[T any](fs ...Filter[T]) Filter[T] { return join(" and ", precAnd, fs) }

// Or combines filters with or; empty ones are skipped.
func Or[T any](fs ...Filter[T]) Filter[T] { return join(" or ", precOr, fs) }

// Not negates f. Not of an empty filter is empty.
func Not[T any](f Filter[T]) Filter[T] {
	if f.IsZero() || f.err != nil {
		return f
	}
	// not binds tighter than eq in OData, so the operand is always
	// parenthesized: "not (name eq null)".
	return Filter[T]{expr: "not (" + f.expr + ")", prec: precUnary}
}

// And returns f and g.
func (f Filter[T]) And(g ...Filter[T]) Filter[T] { return And(append([]Filter[T]{f}, g...)...) }

// Or returns f or g.
func (f Filter[T]) Or(g ...Filter[T]) Filter[T] { return Or(append([]Filter[T]{f}, g...)...) }

func join[T any](op string, prec int, fs []Filter[T]) Filter[T] {
	var parts []string
	var errs []error
	for _, f := range fs {
		if f.err != nil {
			errs = append(errs, f.err)
			continue
		}
		if f.expr == "" {
			continue
		}
		parts = append(parts, paren(f, prec))
	}
	if len(errs) > 0 {
		return Filter[T]{err: errors.Join(errs...)}
	}
	switch len(parts) {
	case 0:
		return Filter[T]{}
	case 1:
		// A single operand keeps its own precedence.
		for _, f := range fs {
			if f.expr != "" {
				return f
			}
		}
	}
	return Filter[T]{expr: strings.Join(parts, op), prec: prec}
}

// paren wraps f in parentheses when its operator binds looser than prec
// requires. Parenthesizing "a and b" inside an or is not needed, but the
// explicit form is kept for readability only where precedence demands it.
func paren[T any](f Filter[T], prec int) string {
	if f.prec < prec {
		return "(" + f.expr + ")"
	}
	return f.expr
}

func compare[T any](col, op string, v any) Filter[T] {
	lit, ok := Literal(v)
	if !ok {
		return Filter[T]{err: fmt.Errorf("odataq: %s %s: no OData literal for a value of type %T", col, op, v)}
	}
	return Filter[T]{expr: col + " " + op + " " + lit, prec: precUnary}
}

func call[T any](fn, col, s string) Filter[T] {
	return Filter[T]{expr: fn + "(" + col + "," + quote(s) + ")", prec: precUnary}
}

// Raw returns a filter from OData text written by the caller, for functions
// this package does not cover (Microsoft.Dynamics.CRM.In, lambda operators).
// The text is not checked; never build it from untrusted input.
func Raw[T any](expr string) Filter[T] {
	if expr == "" {
		return Filter[T]{}
	}
	return Filter[T]{expr: "(" + expr + ")", prec: precUnary}
}
