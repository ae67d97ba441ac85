package dataversetest

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dvgate/dvgate/dataversetest/internal/seedgen"
	"github.com/google/go-cmp/cmp"
)

// Tests of the behaviours issue 17 found missing or wrong. Each names its
// documented source (see ../shared/docs/dataverse-wire-facts.md, cited
// as "wire facts").

// count-rows.md (wire facts §11.2): $count=true adds @odata.count; the
// /$count segment answers text/plain, with the BOM retrieve-entity-using-
// web-api.md mentions (§1.4).
func TestCount(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	alexOrder := seedgen.ID("salesorder", seedgen.AlexOrderNumber)
	r := get(t, s, tok, q("accounts", "$select", "name", "$count", "true"), "Prefer", "odata.maxpagesize=5")
	m := decode(t, r.body)
	if r.status != 200 || m["@odata.count"] != float64(20) || len(m["value"].([]any)) != 5 {
		t.Errorf("$count=true: %d count %v, %d rows", r.status, m["@odata.count"], len(m["value"].([]any)))
	}
	if !strings.HasPrefix(r.body, `{"@odata.context":"`+s.URL()+`/api/data/v9.2/$metadata#accounts(name)","@odata.count":20,"value":[`) {
		t.Errorf("member order: %.120s", r.body)
	}
	r = get(t, s, tok, q("accounts", "$select", "name", "$count", "true"), "Prefer", `odata.include-annotations="*"`)
	if m := decode(t, r.body); m["@Microsoft.Dynamics.CRM.totalrecordcount"] != float64(20) || m["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] != false {
		t.Errorf("totalrecordcount with $count: %v %v", m["@Microsoft.Dynamics.CRM.totalrecordcount"], m["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"])
	}
	for _, tc := range []struct{ path, want string }{
		{"accounts/$count", "\ufeff20"},
		{q("accounts/$count", "$filter", "statecode eq 1"), "\ufeff2"},
		{"salesorders(" + alexOrder + ")/order_details/$count", "\ufeff3"},
	} {
		r := get(t, s, tok, tc.path)
		if r.status != 200 || r.header.Get("Content-Type") != "text/plain" || r.body != tc.want {
			t.Errorf("%s: %d %q %q, want 200 text/plain %q", tc.path, r.status, r.header.Get("Content-Type"), r.body, tc.want)
		}
	}
	if r := get(t, s, tok, q("salesorders", "$expand", "order_details($count=true)")); r.status != 400 {
		t.Errorf("$count inside $expand (join-tables.md: not supported): %d", r.status)
	}
}

// rawHeaders sends a GET over a raw TLS connection and returns the header
// block exactly as written, since net/http's client canonicalises names.
func rawHeaders(t *testing.T, s *Server, tok, path string) string {
	t.Helper()
	host := strings.TrimPrefix(s.URL(), "https://")
	conn, err := tls.Dial("tcp", host, s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /api/data/v9.2/"+path+" HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+tok+"\r\nConnection: close\r\n\r\n")
	var b strings.Builder
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil || line == "\r\n" {
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// Header spelling (compose-http-requests-handle-errors.md shows
// "OData-Version: 4.0"; wire facts §11.4), the request id of a real
// capture (§1.4) and the service protection debug headers (api-limits.md,
// §3.3).
func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	h := rawHeaders(t, s, tok, "WhoAmI")
	for _, want := range []string{"\r\nOData-Version: 4.0\r\n", "\r\nx-ms-service-request-id: ", "\r\nx-ms-ratelimit-burst-remaining-xrm-requests: 5999\r\n", "\r\nx-ms-ratelimit-time-remaining-xrm-requests: 1,200.00\r\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("headers lack %q:\n%s", want, h)
		}
	}
	if strings.Contains(h, "Odata-Version") {
		t.Errorf("canonicalised Odata-Version:\n%s", h)
	}
}

// page-results.md: a nextLink is followed unchanged (wire facts §1.9); the
// paging cookie names the last row, so following it without the Prefer
// header still continues (issue 17; §11.4).
func TestNextLinkWithoutPrefer(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	r := get(t, s, tok, q("accounts", "$select", "name"), "Prefer", "odata.maxpagesize=7")
	m := decode(t, r.body)
	next := strings.TrimPrefix(m["@odata.nextLink"].(string), s.URL()+"/api/data/v9.2/")
	r2 := get(t, s, tok, next)
	m2 := decode(t, r2.body)
	vals := m2["value"].([]any)
	if r2.status != 200 || len(vals) != 13 || m2["@odata.nextLink"] != nil {
		t.Fatalf("page 2 without Prefer: %d, %d rows, nextLink %v", r2.status, len(vals), m2["@odata.nextLink"])
	}
	first := m["value"].([]any)
	if vals[0].(map[string]any)["accountid"] == first[len(first)-1].(map[string]any)["accountid"] {
		t.Error("page 2 repeats the last row of page 1")
	}
}

// join-tables.md (wire facts §1.7, §11.3): with a nested $expand and
// odata.maxpagesize, each expanded collection is paged and carries
// <nav>@odata.nextLink with a $skiptoken; a single $expand is not paged and
// its nextLink has no paging information.
func TestNestedExpandPaging(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	nested := q("salesorders", "$filter", "ordernumber eq '"+seedgen.AlexOrderNumber+"'", "$select", "name",
		"$expand", "order_details($select=lineitemnumber;$expand=productid($select=name))")
	r := get(t, s, tok, nested, "Prefer", "odata.maxpagesize=2")
	order := decode(t, r.body)["value"].([]any)[0].(map[string]any)
	lines := order["order_details"].([]any)
	link, _ := order["order_details@odata.nextLink"].(string)
	if len(lines) != 2 || !strings.Contains(link, "$skiptoken=") {
		t.Fatalf("nested expand page 1: %d lines, link %q", len(lines), link)
	}
	for _, prefer := range []string{"odata.maxpagesize=2", ""} {
		var hdr []string
		if prefer != "" {
			hdr = []string{"Prefer", prefer}
		}
		r2 := get(t, s, tok, strings.TrimPrefix(link, s.URL()+"/api/data/v9.2/"), hdr...)
		m := decode(t, r2.body)
		rest, _ := m["value"].([]any)
		if r2.status != 200 || len(rest) != 1 || m["@odata.nextLink"] != nil {
			t.Fatalf("following the nested link (Prefer %q): %d %s", prefer, r2.status, r2.body)
		}
		if _, ok := rest[0].(map[string]any)["productid"]; !ok {
			t.Errorf("the followed page lost the inner $expand: %s", r2.body)
		}
	}
	// single expand: every row, a link without paging information
	r = get(t, s, tok, q("salesorders", "$filter", "ordernumber eq '"+seedgen.AlexOrderNumber+"'", "$select", "name",
		"$expand", "order_details($select=lineitemnumber)"), "Prefer", "odata.maxpagesize=2")
	order = decode(t, r.body)["value"].([]any)[0].(map[string]any)
	link, _ = order["order_details@odata.nextLink"].(string)
	if len(order["order_details"].([]any)) != 3 || link == "" || strings.Contains(link, "skiptoken") {
		t.Errorf("single expand: %d lines, link %q", len(order["order_details"].([]any)), link)
	}
	// the server's default page size applies without Prefer
	small := newTestServer(t, Options{PageSize: 2})
	r = get(t, small, secretToken(t, small), nested)
	order = decode(t, r.body)["value"].([]any)[0].(map[string]any)
	if len(order["order_details"].([]any)) != 2 || order["order_details@odata.nextLink"] == nil {
		t.Errorf("Options.PageSize: %d lines", len(order["order_details"].([]any)))
	}
}

// perform-conditional-operations-using-web-api.md (wire facts §11.4):
// If-None-Match with the current ETag answers 304; "If-None-Match: null"
// (compose-http-requests-handle-errors.md, §1.2) never matches.
// Single-property GET: retrieve-entity-using-web-api.md (§1.4).
func TestConditionalGetAndProperty(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	alex := seedgen.ID("salesorder", seedgen.AlexOrderNumber)
	r := get(t, s, tok, "salesorders("+alex+")?$select=name")
	etag := r.header.Get("ETag")
	for _, tc := range []struct {
		inm  string
		want int
	}{{etag, 304}, {`W/"1"`, 200}, {"null", 200}, {"*", 304}} {
		r := get(t, s, tok, "salesorders("+alex+")?$select=name", "If-None-Match", tc.inm)
		if r.status != tc.want || (tc.want == 304 && r.body != "") {
			t.Errorf("If-None-Match %s: %d %q, want %d", tc.inm, r.status, r.body, tc.want)
		}
	}
	r = get(t, s, tok, "salesorders("+alex+")/ordernumber")
	want := `{"@odata.context":"` + s.URL() + `/api/data/v9.2/$metadata#salesorders(` + alex + `)/ordernumber","value":"` + seedgen.AlexOrderNumber + `"}`
	if r.status != 200 || r.body != want {
		t.Errorf("single property: %d %s\nwant %s", r.status, r.body, want)
	}
	r = get(t, s, tok, "salesorders("+alex+")/ordernumber/$value")
	if r.status != 200 || r.body != seedgen.AlexOrderNumber || r.header.Get("Content-Type") != "text/plain" {
		t.Errorf("/$value: %d %q %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	if r := get(t, s, tok, "salesorders("+alex+")/nope/$value"); r.status != 404 {
		t.Errorf("/$value of an unknown property: %d", r.status)
	}
}

// send issues a Web API request with a body.
func send(t *testing.T, s *Server, tok, method, path, body string, hdr ...string) response {
	t.Helper()
	req, _ := http.NewRequest(method, s.URL()+"/api/data/v9.2/"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, string(b)}
}

// create-entity-web-api.md: 204 + OData-EntityId, or 201 with the row for
// Prefer: return=representation; update-delete-entities-using-web-api.md:
// PATCH 204 (upsert), DELETE 204; perform-conditional-operations: If-Match
// with an old etag answers 412 0x80060882, If-Match: * on a missing record
// 404. modifiedon comes from the clock and every write bumps the version.
func TestWrites(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestServer(t, Options{Clock: clock.Now})
	other := newTestServer(t, Options{}) // shares the demo snapshot
	tok := secretToken(t, s)
	account := decode(t, get(t, s, tok, "accounts?$select=name&$top=1").body)["value"].([]any)[0].(map[string]any)["accountid"].(string)

	r := send(t, s, tok, "POST", "contacts", `{"firstname":"Ada","lastname":"Lovelace","emailaddress1":"ada@example.com","parentcustomerid_account@odata.bind":"/accounts(`+account+`)"}`)
	loc := r.header.Get("OData-EntityId")
	if r.status != 204 || !strings.HasPrefix(loc, s.URL()+"/api/data/v9.2/contacts(") {
		t.Fatalf("create: %d %q %s", r.status, loc, r.body)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(loc, s.URL()+"/api/data/v9.2/contacts("), ")")
	r = get(t, s, tok, q("contacts", "$select", "fullname,modifiedon,_parentcustomerid_value", "$filter", "emailaddress1 eq 'ADA@example.com'"))
	got := decode(t, r.body)["value"].([]any)
	if len(got) != 1 {
		t.Fatalf("created row not found by its indexed email: %s", r.body)
	}
	row := got[0].(map[string]any)
	want := map[string]any{"fullname": "Ada Lovelace", "modifiedon": "2026-03-02T09:00:00Z", "_parentcustomerid_value": account, "contactid": id}
	delete(row, "@odata.etag")
	if diff := cmp.Diff(want, row); diff != "" {
		t.Errorf("created row (-want +got):\n%s", diff)
	}
	if r := get(t, other, secretToken(t, other), "contacts("+id+")"); r.status != 404 {
		t.Errorf("a write leaked into another server's data: %d", r.status)
	}

	r = send(t, s, tok, "POST", "contacts?$select=fullname", `{"firstname":"Grace","lastname":"Hopper"}`, "Prefer", "return=representation")
	if r.status != 201 || r.header.Get("Preference-Applied") != "return=representation" || !strings.Contains(r.body, `"fullname":"Grace Hopper"`) ||
		!strings.Contains(r.body, `$metadata#contacts(fullname)/$entity"`) {
		t.Errorf("create with representation: %d %q %s", r.status, r.header.Get("Preference-Applied"), r.body)
	}

	etag := get(t, s, tok, "contacts("+id+")").header.Get("ETag")
	clock.Advance(time.Minute)
	if r := send(t, s, tok, "PATCH", "contacts("+id+")", `{"lastname":"King"}`, "If-Match", etag); r.status != 204 {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	r = get(t, s, tok, "contacts("+id+")?$select=fullname,modifiedon")
	if r.header.Get("ETag") == etag || !strings.Contains(r.body, `"fullname":"Ada King","modifiedon":"2026-03-02T09:01:00Z"`) {
		t.Errorf("after update: ETag %s (was %s) %s", r.header.Get("ETag"), etag, r.body)
	}
	if r := send(t, s, tok, "PATCH", "contacts("+id+")", `{"lastname":"X"}`, "If-Match", etag); r.status != 412 ||
		!strings.Contains(r.body, `"code":"0x80060882"`) {
		t.Errorf("stale If-Match: %d %s", r.status, r.body)
	}
	missing := "00000000-0000-0000-0000-0000000000aa"
	if r := send(t, s, tok, "PATCH", "contacts("+missing+")", `{"lastname":"X"}`, "If-Match", "*"); r.status != 404 {
		t.Errorf("If-Match * on a missing record: %d %s", r.status, r.body)
	}
	if r := send(t, s, tok, "PATCH", "contacts("+missing+")", `{"lastname":"Upserted"}`); r.status != 204 || get(t, s, tok, "contacts("+missing+")").status != 200 {
		t.Errorf("upsert: %d %s", r.status, r.body)
	}
	if r := send(t, s, tok, "PATCH", "contacts("+id+")", `{"lastname":"X"}`, "If-None-Match", "*"); r.status != 412 {
		t.Errorf("If-None-Match * on an existing record: %d %s", r.status, r.body)
	}
	if r := send(t, s, tok, "POST", "contacts", `{"nope":1}`); r.status != 400 {
		t.Errorf("unknown property: %d %s", r.status, r.body)
	}
	if r := send(t, s, tok, "DELETE", "contacts("+id+")", ""); r.status != 204 {
		t.Errorf("delete: %d %s", r.status, r.body)
	}
	if r := get(t, s, tok, "contacts("+id+")"); r.status != 404 {
		t.Errorf("after delete: %d", r.status)
	}
	if r := get(t, s, tok, q("contacts", "$filter", "emailaddress1 eq 'ada@example.com'")); len(decode(t, r.body)["value"].([]any)) != 0 {
		t.Errorf("deleted row still in the email index: %s", r.body)
	}
}

// create-entity-web-api.md, "Create related table rows in one operation":
// a deep insert creates the related rows too, all or nothing.
func TestDeepInsert(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	tok := secretToken(t, s)
	r := send(t, s, tok, "POST", "accounts?$select=name", `{"name":"Deep","primarycontactid":{"firstname":"Pat","lastname":"Prime"},
		"contact_customer_accounts":[{"lastname":"Kid1"},{"lastname":"Kid2"}]}`, "Prefer", "return=representation")
	if r.status != 201 {
		t.Fatalf("deep insert: %d %s", r.status, r.body)
	}
	id := decode(t, r.body)["accountid"].(string)
	r = get(t, s, tok, "accounts("+id+")?$select=name&$expand=primarycontactid($select=fullname),contact_customer_accounts($select=lastname)")
	m := decode(t, r.body)
	var kids []string
	for _, k := range m["contact_customer_accounts"].([]any) {
		kids = append(kids, k.(map[string]any)["lastname"].(string))
	}
	slices.Sort(kids)
	primary, _ := m["primarycontactid"].(map[string]any)
	if primary == nil || primary["fullname"] != "Pat Prime" || !slices.Equal(kids, []string{"Kid1", "Kid2"}) {
		t.Errorf("related rows: %s", r.body)
	}
	r = send(t, s, tok, "POST", "accounts", `{"name":"Half","contact_customer_accounts":[{"lastname":"Ok"},{"nope":1}]}`)
	if r.status != 400 {
		t.Errorf("deep insert with a bad child: %d %s", r.status, r.body)
	}
	for path, want := range map[string]string{"accounts/$count": "\ufeff1", "contacts/$count": "\ufeff3"} {
		if got := get(t, s, tok, path).body; got != want {
			t.Errorf("%s after a failed deep insert: %q, want %q", path, got, want)
		}
	}
	if r := send(t, s, tok, "PATCH", "accounts("+id+")", `{"primarycontactid":{"lastname":"X"}}`); r.status != 400 {
		t.Errorf("deep update: %d, want 400", r.status)
	}
}
