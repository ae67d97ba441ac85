package csdl

import "fmt"

// Error is a problem in a CSDL document: malformed XML, a reference to a
// type that no schema declares, a missing key. Pos is where the offending
// element starts; Element is its local name ("Property"), "" for errors
// of the XML syntax itself.
type Error struct {
	Pos
	Element string
	Msg     string
}

// Error formats the error as "csdl: line 12, column 5: <Property>: msg".
func (e *Error) Error() string {
	if e.Element == "" {
		return fmt.Sprintf("csdl: line %d, column %d: %s", e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("csdl: line %d, column %d: <%s>: %s", e.Line, e.Column, e.Element, e.Msg)
}
