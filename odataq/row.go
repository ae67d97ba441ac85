package odataq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
)

// Names returns the JSON member names that the fields of struct type T
// take (the name part of each json tag; a field without a tag is not a
// member of a generated model). Generated models call it once per type, in
// a sync.OnceValue, and pass the result to DecodeRow.
func Names[T any]() map[string]bool {
	t := reflect.TypeFor[T]()
	out := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// DecodeRow decodes the JSON object b into v (a pointer to the model's
// plain struct type, which has no UnmarshalJSON of its own) and returns the
// members that no field takes, so that a column the org added after
// generation stays reachable. known is Names of the model. It returns nil
// when every member is known.
//
// The members are found by one light scan of b's top level (no decoding,
// no allocation for a known member), after encoding/json has checked b.
func DecodeRow(b []byte, v any, known map[string]bool) (map[string]json.RawMessage, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	var extra map[string]json.RawMessage
	err := members(b, func(key, raw []byte) error {
		if known[string(key)] {
			return nil
		}
		k := string(key)
		if bytes.IndexByte(key, '\\') >= 0 {
			if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil {
				return err
			}
			if known[k] {
				return nil
			}
		}
		if extra == nil {
			extra = make(map[string]json.RawMessage)
		}
		extra[k] = json.RawMessage(raw)
		return nil
	})
	return extra, err
}

// members calls fn with the key (still escaped) and raw value of each
// top-level member of the JSON object b, which must be valid JSON.
func members(b []byte, fn func(key, raw []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("odataq: a row is a JSON object, not %.20q", b)
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return errors.New("odataq: unexpected end of a row")
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		end := skipString(b, i)
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		i = skipSpace(b, i+1) // the colon
		vend := skipValue(b, i)
		if err := fn(key, b[i:vend]); err != nil {
			return err
		}
		i = vend
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] ('"').
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// Extra decodes the member name of a model's Extra map (a column the model
// was generated without) into a V. ok is false when the row has no such
// member or it is null.
func Extra[V any](extra map[string]json.RawMessage, name string) (v V, ok bool, err error) {
	raw, found := extra[name]
	if !found || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return v, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("odataq: member %s: %w", name, err)
	}
	return v, true, nil
}

// GetPage sends GET url through doer, after edit, and decodes one page of a
// collection ({"value": [...], "@odata.nextLink": "..."}). The generated List
// and Next methods use it.
func GetPage[E any](ctx context.Context, doer Doer, url string, edit EditFn) (Page[E], error) {
	var wire struct {
		Value    []E    `json:"value"`
		NextLink string `json:"@odata.nextLink"`
	}
	if err := get(ctx, doer, url, edit, &wire); err != nil {
		return Page[E]{}, err
	}
	return Page[E]{Value: wire.Value, NextLink: wire.NextLink}, nil
}

// get sends GET url (changed by edit when not nil) and decodes a 200 answer
// into v.
func get(ctx context.Context, doer Doer, url string, edit EditFn, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if edit != nil {
		if err := edit(ctx, req); err != nil {
			return err
		}
	}
	rsp, err := doer.Do(req)
	if err != nil {
		return err
	}
	defer rsp.Body.Close()
	body, err := io.ReadAll(rsp.Body)
	if err != nil {
		return err
	}
	if rsp.StatusCode != http.StatusOK {
		return ResponseError(rsp, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("odataq: decoding %s: %w", req.URL.Redacted(), err)
	}
	return nil
}

// Member returns the member name of a decoded model row (a generated
// struct or a pointer to one) as JSON: the field whose json tag is name,
// encoded again, or else the row's Extra entry. ok is false when the row
// has no such member or it is null, so a caller reads a column by its
// logical name whether or not the model was generated with it.
func Member(row any, name string) (raw json.RawMessage, ok bool, err error) {
	v := reflect.ValueOf(row)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, false, nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, false, fmt.Errorf("odataq: Member of %T, not a model", row)
	}
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag != name {
			continue
		}
		f := v.Field(i)
		if (f.Kind() == reflect.Pointer || f.Kind() == reflect.Map || f.Kind() == reflect.Slice) && f.IsNil() {
			return nil, false, nil
		}
		raw, err := json.Marshal(f.Interface())
		if err != nil {
			return nil, false, fmt.Errorf("odataq: member %s: %w", name, err)
		}
		return raw, true, nil
	}
	if f := v.FieldByName("Extra"); f.IsValid() {
		if extra, isMap := f.Interface().(map[string]json.RawMessage); isMap {
			raw, found := extra[name]
			if !found || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
				return nil, false, nil
			}
			return raw, true, nil
		}
	}
	return nil, false, nil
}
