package csdl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// scanner is a small pull tokenizer for the restricted XML of CSDL documents:
// elements, attributes, character data, entity and character references,
// comments, processing instructions, CDATA sections and a DOCTYPE (skipped).
// It is several times faster than encoding/xml's Decoder because it neither
// resolves namespaces nor copies names and attribute values: a token's slices
// point into the read buffer and stay valid only until the next call to next.
// Element names are returned without their namespace prefix.
type scanner struct {
	r   io.Reader
	buf []byte
	pos int // next unread byte
	end int // end of valid data
	eof bool

	// Position tracking: line is the line number at buf offset counted, and
	// lineStart the buf offset of that line's first byte (may be negative).
	line      int
	lineStart int
	counted   int

	// The current token.
	kind      tokKind
	name      []byte // local name of a start or end element
	attrs     []attr
	selfClose bool
	text      []byte // character data (decoded)
	start     int    // buf offset of the token's first byte

	scratch  []byte // decoded attribute values and text of the current token
	names    []byte // open element names, concatenated
	nameEnd  []int  // end offsets in names of each open element
	rootSeen bool
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokStart
	tokEnd
	tokText
)

type attr struct {
	name, value []byte
}

// errNeedMore is returned by the token parsers when the buffer ends inside a
// token; the caller refills the buffer and parses the token again.
var errNeedMore = errors.New("need more input")

// syntaxError is a malformed-document error at a buffer offset.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

const initialBufSize = 64 << 10

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, initialBufSize), line: 1}
}

// fill reads more input, compacting the buffer and growing it when a single
// token does not fit.
func (s *scanner) fill() error {
	if s.eof {
		return io.ErrUnexpectedEOF
	}
	if s.pos > 0 {
		// Count lines in the discarded prefix before it goes away.
		s.advancePos(s.pos)
		n := copy(s.buf, s.buf[s.pos:s.end])
		s.counted -= s.pos
		s.lineStart -= s.pos
		s.start -= s.pos
		s.end = n
		s.pos = 0
	}
	if s.end == len(s.buf) {
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	for {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err == io.EOF {
			s.eof = true
			return nil
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// advancePos counts lines up to buffer offset off.
func (s *scanner) advancePos(off int) {
	if off <= s.counted {
		return
	}
	seg := s.buf[s.counted:off]
	if n := bytes.Count(seg, nl); n > 0 {
		s.line += n
		s.lineStart = s.counted + bytes.LastIndexByte(seg, '\n') + 1
	}
	s.counted = off
}

var nl = []byte{'\n'}

// posOf returns the 1-based line and column (in bytes) of buffer offset off,
// which must not precede the last offset asked for.
func (s *scanner) posOf(off int) Pos {
	s.advancePos(off)
	return Pos{Line: s.line, Column: off - s.lineStart + 1}
}

// tokPos is the position of the current token.
func (s *scanner) tokPos() Pos { return s.posOf(s.start) }

// next reads the next token. At the end of a well-formed document it sets
// kind to tokEOF and returns nil.
func (s *scanner) next() error {
	for {
		err := s.token()
		if err != errNeedMore {
			return err
		}
		if s.eof {
			return &syntaxError{off: s.pos, msg: "unexpected end of document"}
		}
		if err := s.fill(); err != nil {
			return err
		}
	}
}

func (s *scanner) token() error {
	s.scratch = s.scratch[:0]
	s.attrs = s.attrs[:0]
	s.text = nil
	s.start = s.pos
	b := s.buf[s.pos:s.end]
	if len(b) == 0 {
		if !s.eof {
			return errNeedMore
		}
		if !s.rootSeen {
			return &syntaxError{off: s.pos, msg: "no root element"}
		}
		if len(s.nameEnd) > 0 {
			return &syntaxError{off: s.pos, msg: fmt.Sprintf("unexpected end of document: <%s> not closed", s.top())}
		}
		s.kind = tokEOF
		return nil
	}
	if b[0] != '<' {
		i := bytes.IndexByte(b, '<')
		if i < 0 {
			if !s.eof {
				return errNeedMore
			}
			i = len(b)
		}
		return s.charData(b[:i])
	}
	if len(b) < 2 {
		return errNeedMore
	}
	switch b[1] {
	case '/':
		return s.endTag(b)
	case '?':
		i := bytes.Index(b, []byte("?>"))
		if i < 0 {
			return errNeedMore
		}
		s.pos += i + 2
		return s.token()
	case '!':
		return s.bang(b)
	}
	return s.startTag(b)
}

func (s *scanner) charData(raw []byte) error {
	s.pos += len(raw)
	if len(s.nameEnd) == 0 {
		// Outside the root element only white space is allowed.
		if len(bytes.TrimLeft(raw, " \t\r\n")) > 0 {
			return &syntaxError{off: s.start, msg: "text outside the root element"}
		}
		return s.token()
	}
	t, err := s.decode(raw, false)
	if err != nil {
		return &syntaxError{off: s.start, msg: err.Error()}
	}
	s.kind = tokText
	s.text = t
	return nil
}

func (s *scanner) bang(b []byte) error {
	switch {
	case bytes.HasPrefix(b, []byte("<!--")):
		i := bytes.Index(b[4:], []byte("-->"))
		if i < 0 {
			return errNeedMore
		}
		s.pos += 4 + i + 3
		return s.token()
	case bytes.HasPrefix(b, []byte("<![CDATA[")):
		i := bytes.Index(b[9:], []byte("]]>"))
		if i < 0 {
			return errNeedMore
		}
		if len(s.nameEnd) == 0 {
			return &syntaxError{off: s.start, msg: "CDATA outside the root element"}
		}
		s.kind = tokText
		s.text = b[9 : 9+i]
		s.pos += 9 + i + 3
		return nil
	case bytes.HasPrefix(b, []byte("<!DOCTYPE")):
		depth := 0
		for i := 9; i < len(b); i++ {
			switch b[i] {
			case '[':
				depth++
			case ']':
				depth--
			case '>':
				if depth <= 0 {
					s.pos += i + 1
					return s.token()
				}
			}
		}
		return errNeedMore
	}
	if len(b) < 9 {
		return errNeedMore
	}
	return &syntaxError{off: s.start, msg: "invalid markup after <!"}
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// Byte classes for the scanning loops.
const (
	clNameEnd  = 1 << iota // ends an XML name
	clAttrSpec             // needs attention in an attribute value
	clTextSpec             // needs attention in character data
)

var class = func() (t [256]uint8) {
	for _, c := range []byte(" \n\t\r/>=<\"'") {
		t[c] |= clNameEnd
	}
	for _, c := range []byte("&<\n\r\t") {
		t[c] |= clAttrSpec
	}
	for _, c := range []byte("&<") {
		t[c] |= clTextSpec
	}
	return t
}()

// scanName returns the length of the XML name at the start of b, or -1 when
// b ends before the name does.
func scanName(b []byte) int {
	for i, c := range b {
		if class[c]&clNameEnd != 0 {
			return i
		}
	}
	return -1
}

func validNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= 0x80
}

func localName(n []byte) []byte {
	if i := bytes.IndexByte(n, ':'); i >= 0 {
		return n[i+1:]
	}
	return n
}

func (s *scanner) startTag(b []byte) error {
	if !validNameStart(b[1]) {
		return &syntaxError{off: s.start, msg: "invalid element name"}
	}
	n := scanName(b[1:])
	if n < 0 {
		return errNeedMore
	}
	full := b[1 : 1+n]
	i := 1 + n
	for {
		// White space, then an attribute, "/>" or ">".
		sp := i
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return errNeedMore
		}
		switch b[i] {
		case '>':
			s.selfClose = false
			s.pos += i + 1
			return s.openElement(full)
		case '/':
			if i+1 >= len(b) {
				return errNeedMore
			}
			if b[i+1] != '>' {
				return &syntaxError{off: s.start + i, msg: "expected /> in element " + string(full)}
			}
			s.selfClose = true
			s.pos += i + 2
			return s.openElement(full)
		}
		if i == sp || !validNameStart(b[i]) {
			return &syntaxError{off: s.start + i, msg: fmt.Sprintf("invalid attribute in <%s>", full)}
		}
		an := scanName(b[i:])
		if an < 0 {
			return errNeedMore
		}
		name := b[i : i+an]
		i += an
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return errNeedMore
		}
		if b[i] != '=' {
			return &syntaxError{off: s.start + i, msg: fmt.Sprintf("attribute %s in <%s> has no value", name, full)}
		}
		i++
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			return errNeedMore
		}
		q := b[i]
		if q != '"' && q != '\'' {
			return &syntaxError{off: s.start + i, msg: fmt.Sprintf("attribute %s in <%s> is not quoted", name, full)}
		}
		i++
		j := bytes.IndexByte(b[i:], q)
		if j < 0 {
			return errNeedMore
		}
		v, err := s.decode(b[i:i+j], true)
		if err != nil {
			return &syntaxError{off: s.start + i, msg: fmt.Sprintf("attribute %s in <%s>: %v", name, full, err)}
		}
		s.attrs = append(s.attrs, attr{name: name, value: v})
		i += j + 1
	}
}

func (s *scanner) openElement(full []byte) error {
	if len(s.nameEnd) == 0 {
		if s.rootSeen {
			return &syntaxError{off: s.start, msg: "more than one root element"}
		}
		s.rootSeen = true
	}
	s.kind = tokStart
	s.name = localName(full)
	if !s.selfClose {
		s.names = append(s.names, full...)
		s.nameEnd = append(s.nameEnd, len(s.names))
	}
	return nil
}

// top is the name of the innermost open element.
func (s *scanner) top() []byte {
	n := len(s.nameEnd)
	if n == 0 {
		return nil
	}
	from := 0
	if n > 1 {
		from = s.nameEnd[n-2]
	}
	return s.names[from:s.nameEnd[n-1]]
}

func (s *scanner) endTag(b []byte) error {
	n := scanName(b[2:])
	if n < 0 {
		return errNeedMore
	}
	full := b[2 : 2+n]
	i := 2 + n
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i >= len(b) {
		return errNeedMore
	}
	if b[i] != '>' {
		return &syntaxError{off: s.start + i, msg: fmt.Sprintf("invalid end element </%s", full)}
	}
	open := s.top()
	if open == nil {
		return &syntaxError{off: s.start, msg: fmt.Sprintf("unexpected end element </%s>", full)}
	}
	if !bytes.Equal(open, full) {
		return &syntaxError{off: s.start, msg: fmt.Sprintf("element <%s> closed by </%s>", open, full)}
	}
	s.names = s.names[:len(s.names)-len(open)]
	s.nameEnd = s.nameEnd[:len(s.nameEnd)-1]
	s.kind = tokEnd
	s.name = localName(full)
	s.pos += i + 1
	return nil
}

// decode resolves entity and character references in raw and, for attribute
// values, normalizes white space characters to spaces. It returns raw itself
// when nothing needs changing, else a slice of s.scratch.
func (s *scanner) decode(raw []byte, attrValue bool) ([]byte, error) {
	mask := uint8(clTextSpec)
	if attrValue {
		mask = clAttrSpec
	}
	clean := true
	for _, c := range raw {
		if class[c]&mask != 0 {
			clean = false
			break
		}
	}
	if clean {
		return raw, nil
	}
	from := len(s.scratch)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '<':
			return nil, errors.New("'<' in text or attribute value")
		case '\n', '\t':
			if attrValue {
				c = ' '
			}
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				continue
			}
			if attrValue {
				c = ' '
			} else {
				c = '\n'
			}
		case '&':
			j := bytes.IndexByte(raw[i:], ';')
			if j < 0 {
				return nil, errors.New("unterminated entity reference")
			}
			ref := raw[i+1 : i+j]
			i += j
			if r, ok := predefined(ref); ok {
				s.scratch = append(s.scratch, r)
				continue
			}
			r, ok := charRef(ref)
			if !ok {
				return nil, fmt.Errorf("invalid entity reference &%s;", ref)
			}
			s.scratch = utf8.AppendRune(s.scratch, r)
			continue
		}
		s.scratch = append(s.scratch, c)
	}
	return s.scratch[from:], nil
}

func predefined(ref []byte) (byte, bool) {
	switch string(ref) {
	case "amp":
		return '&', true
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "quot":
		return '"', true
	case "apos":
		return '\'', true
	}
	return 0, false
}

func charRef(ref []byte) (rune, bool) {
	if len(ref) < 2 || ref[0] != '#' {
		return 0, false
	}
	digits, base := ref[1:], rune(10)
	if digits[0] == 'x' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 || len(digits) > 8 {
		return 0, false
	}
	var r rune
	for _, c := range digits {
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return 0, false
		}
		r = r*base + d
	}
	if r == 0 || !utf8.ValidRune(r) {
		return 0, false
	}
	return r, true
}

// skipBOM skips a UTF-8 byte order mark at the start of the document.
func (s *scanner) skipBOM() error {
	for s.end < 3 && !s.eof {
		if err := s.fill(); err != nil {
			return err
		}
	}
	if bytes.HasPrefix(s.buf[:s.end], []byte("\xef\xbb\xbf")) {
		s.pos, s.counted, s.lineStart = 3, 3, 3
	}
	return nil
}
