package odataq

import (
	"bytes"
	"context"
	"encoding/json"
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
func DecodeRow(b []byte, v any, known map[string]bool) (map[string]json.RawMessage, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k := range all {
		if known[k] {
			delete(all, k)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
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
