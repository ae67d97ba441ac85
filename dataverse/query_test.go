package dataverse

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/dataversetest"
)

// TestQueriesAndPaging runs readable filters and follows an absolute
// @odata.nextLink through Get, as the gateway does.
func TestQueriesAndPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, dataversetest.Options{Seed: []byte(`{"tables":{"contact":[
		{"contactid":"10000000-0000-4000-8000-000000000001","firstname":"Alex","lastname":"Wu","emailaddress1":"alex.wu@example.test"},
		{"contactid":"10000000-0000-4000-8000-000000000002","firstname":"Bo","lastname":"Li","emailaddress1":"bo.li@example.test"},
		{"contactid":"10000000-0000-4000-8000-000000000003","firstname":"Cy","lastname":"Ng","emailaddress1":"cy.ng@example.test"},
		{"contactid":"10000000-0000-4000-8000-000000000004","firstname":"Di","lastname":"Roe"}]}}`)}, nil)
	ctx := t.Context()
	type page struct {
		Value []struct {
			ContactID string `json:"contactid"`
			Email     string `json:"emailaddress1"`
		} `json:"value"`
		NextLink string `json:"@odata.nextLink"`
	}
	get := func(path string, prefer ...string) page {
		t.Helper()
		r, err := e.conn.Get(ctx, path, prefer...)
		if err != nil {
			t.Fatalf("Get %s: %v", path, err)
		}
		var p page
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatalf("Get %s: %v", path, err)
		}
		return p
	}
	first := get("contacts?$select=emailaddress1&$filter=emailaddress1 ne null", "odata.maxpagesize=2")
	if len(first.Value) != 2 || !strings.HasPrefix(first.NextLink, e.sim.URL()+"/api/data/v9.2/contacts?") {
		t.Fatalf("first page: %+v", first)
	}
	second := get(first.NextLink, "odata.maxpagesize=2")
	if len(second.Value) == 0 || second.Value[0].ContactID == first.Value[0].ContactID {
		t.Errorf("second page %+v repeats or is empty", second)
	}
	email := first.Value[0].Email
	byEmail := get("contacts?$select=emailaddress1&$filter=emailaddress1 eq '" + email + "'")
	if len(byEmail.Value) != 1 || byEmail.Value[0].ContactID != first.Value[0].ContactID {
		t.Errorf("filter by %q: %+v", email, byEmail)
	}
	if f := e.sim.Requests()[len(e.sim.Requests())-1].Filter; f != "emailaddress1 eq '"+email+"'" {
		t.Errorf("simulator decoded $filter %q", f)
	}
}
