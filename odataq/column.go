package odataq

// Column is a column of table T: what Select and OrderBy accept.
type Column[T any] interface {
	// ColumnName is the column's logical name as the Web API spells it
	// ("name", "_customerid_value").
	ColumnName() string
	isColumnOf(T)
}

// Col is a column of table T whose values are of Go type V. It is a string
// type so that generated code can declare columns as untyped constants.
type Col[T, V any] string

// ColumnName returns the logical name.
func (c Col[T, V]) ColumnName() string { return string(c) }
func (Col[T, V]) isColumnOf(T)         {}

// Eq is c eq v.
func (c Col[T, V]) Eq(v V) Filter[T] { return compare[T](string(c), "eq", v) }

// Ne is c ne v.
func (c Col[T, V]) Ne(v V) Filter[T] { return compare[T](string(c), "ne", v) }

// Gt is c gt v.
func (c Col[T, V]) Gt(v V) Filter[T] { return compare[T](string(c), "gt", v) }

// Ge is c ge v.
func (c Col[T, V]) Ge(v V) Filter[T] { return compare[T](string(c), "ge", v) }

// Lt is c lt v.
func (c Col[T, V]) Lt(v V) Filter[T] { return compare[T](string(c), "lt", v) }

// Le is c le v.
func (c Col[T, V]) Le(v V) Filter[T] { return compare[T](string(c), "le", v) }

// IsNull is c eq null.
func (c Col[T, V]) IsNull() Filter[T] { return compare[T](string(c), "eq", nil) }

// NotNull is c ne null.
func (c Col[T, V]) NotNull() Filter[T] { return compare[T](string(c), "ne", nil) }

// Asc orders by c ascending. The direction is written out ("name asc"),
// as in Microsoft's examples, so that logged queries read unambiguously.
func (c Col[T, V]) Asc() Order[T] { return Order[T]{string(c) + " asc"} }

// Desc orders by c descending.
func (c Col[T, V]) Desc() Order[T] { return Order[T]{string(c) + " desc"} }

// StringCol is a text column of table T: a Col[T, string] with the string
// functions. Dataverse compares strings case-insensitively, and treats % _
// [ ] as wildcards inside contains/startswith/endswith: prefer Eq for exact
// matches such as e-mail addresses.
type StringCol[T any] string

// ColumnName returns the logical name.
func (c StringCol[T]) ColumnName() string { return string(c) }
func (StringCol[T]) isColumnOf(T)         {}

func (c StringCol[T]) col() Col[T, string] { return Col[T, string](c) }

// Eq is c eq v.
func (c StringCol[T]) Eq(v string) Filter[T] { return c.col().Eq(v) }

// Ne is c ne v.
func (c StringCol[T]) Ne(v string) Filter[T] { return c.col().Ne(v) }

// Gt is c gt v.
func (c StringCol[T]) Gt(v string) Filter[T] { return c.col().Gt(v) }

// Ge is c ge v.
func (c StringCol[T]) Ge(v string) Filter[T] { return c.col().Ge(v) }

// Lt is c lt v.
func (c StringCol[T]) Lt(v string) Filter[T] { return c.col().Lt(v) }

// Le is c le v.
func (c StringCol[T]) Le(v string) Filter[T] { return c.col().Le(v) }

// IsNull is c eq null.
func (c StringCol[T]) IsNull() Filter[T] { return c.col().IsNull() }

// NotNull is c ne null.
func (c StringCol[T]) NotNull() Filter[T] { return c.col().NotNull() }

// Contains is contains(c,'s').
func (c StringCol[T]) Contains(s string) Filter[T] { return call[T]("contains", string(c), s) }

// StartsWith is startswith(c,'s').
func (c StringCol[T]) StartsWith(s string) Filter[T] { return call[T]("startswith", string(c), s) }

// EndsWith is endswith(c,'s').
func (c StringCol[T]) EndsWith(s string) Filter[T] { return call[T]("endswith", string(c), s) }

// Asc orders by c ascending ("name asc").
func (c StringCol[T]) Asc() Order[T] { return Order[T]{string(c) + " asc"} }

// Desc orders by c descending.
func (c StringCol[T]) Desc() Order[T] { return Order[T]{string(c) + " desc"} }

// Order is one $orderby item of table T.
type Order[T any] struct{ text string }

// String returns the item as OData text ("createdon desc").
func (o Order[T]) String() string { return o.text }

// Nav is a navigation property of table T leading to table U.
type Nav[T, U any] string

// Name returns the navigation property's name ("order_details").
func (n Nav[T, U]) Name() string { return string(n) }

// Expand expands n with the options of q ($select, $filter, $orderby, $top,
// $expand). Dataverse rejects $orderby and $top inside a nested collection
// expand; that rule is the server's to enforce.
//
// The ';' between nested options is sent percent-encoded (%3B), which
// Dataverse decodes like any query byte: a raw ';' makes Go's url.ParseQuery
// (and so Go servers and proxies on the way) drop the whole $expand option.
func (n Nav[T, U]) Expand(q Query[U]) Expansion[T] {
	return Expansion[T]{text: string(n), opts: q.options("%3B"), err: q.Err()}
}

// All expands n with all of its columns.
func (n Nav[T, U]) All() Expansion[T] { return Expansion[T]{text: string(n)} }

// Expansion is one $expand item of table T.
type Expansion[T any] struct {
	text string
	opts string
	err  error
}

func (e Expansion[T]) render() string {
	if e.opts == "" {
		return e.text
	}
	return e.text + "(" + e.opts + ")"
}
