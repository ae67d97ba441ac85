package dataversetest

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/dataversetest/internal/seedgen"
	"github.com/dvgate/dvgate/testdata"
	"github.com/google/go-cmp/cmp"
	"io/fs"
)

// batchBody builds a $batch body. Each GET part ends with a single CRLF
// after its headers, right before the next boundary, as widely used
// clients send it (wire facts §11.1); extraCRLF adds the blank line.
func batchBody(boundary string, extraCRLF bool, paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		b.WriteString("--" + boundary + "\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n")
		b.WriteString("GET " + p + " HTTP/1.1\r\nAccept: application/json\r\n")
		if extraCRLF {
			b.WriteString("\r\n\r\n")
		}
	}
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.String()
}

// postBatch sends a batch and returns the status and the part status lines.
func postBatch(t *testing.T, s *Server, tok, body string, hdr ...string) (int, http.Header, []string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/data/v9.2/$batch", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", `multipart/mixed; boundary="batch_AAA"`)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "multipart/mixed" || !strings.HasPrefix(params["boundary"], "batchresponse_") {
		t.Fatalf("batch response %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(resp.Body, params["boundary"])
	var statuses []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		statuses = append(statuses, strings.SplitN(string(b), "\r\n", 2)[0])
	}
	return resp.StatusCode, resp.Header, statuses
}

// execute-batch-operations-using-web-api.md: parts are application/http
// requests; "Handling errors": without Prefer: odata.continue-on-error the
// first failure ends the batch with that error (wire facts §11.1).
func TestBatch(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	ok, missing := s.URL()+"/api/data/v9.2/WhoAmI", "/api/data/v9.2/nopes"
	tests := []struct {
		name       string
		body       string
		prefer     string
		wantStatus int
		wantParts  []string
	}{
		{"single CRLF before the boundary (real clients)", batchBody("batch_AAA", false, ok, "contacts?$select=fullname&$top=1"), "", 200,
			[]string{"HTTP/1.1 200 OK", "HTTP/1.1 200 OK"}},
		{"blank line before the boundary", batchBody("batch_AAA", true, ok, ok), "", 200,
			[]string{"HTTP/1.1 200 OK", "HTTP/1.1 200 OK"}},
		{"stops at the first error", batchBody("batch_AAA", false, ok, missing, ok), "", 400,
			[]string{"HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found"}},
		{"continue-on-error answers every part", batchBody("batch_AAA", false, ok, missing, ok), "odata.continue-on-error", 200,
			[]string{"HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 200 OK"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.prefer != "" {
				hdr = []string{"Prefer", tc.prefer}
			}
			status, h, parts := postBatch(t, s, tok, tc.body, hdr...)
			if status != tc.wantStatus {
				t.Errorf("status %d, want %d", status, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.wantParts, parts); diff != "" {
				t.Errorf("parts (-want +got):\n%s", diff)
			}
			if tc.prefer != "" && h.Get("Preference-Applied") != tc.prefer {
				t.Errorf("Preference-Applied %q", h.Get("Preference-Applied"))
			}
		})
	}
	before := s.WebAPIRequests()
	postBatch(t, s, tok, batchBody("batch_AAA", false, ok, ok, ok))
	if n := s.WebAPIRequests() - before; n != 1 {
		t.Errorf("a batch is one request: %d", n)
	}
}

// A customised CSDL (new columns, a new table, an alternate key) works with
// no code change.
func TestCustomSchema(t *testing.T) {
	t.Parallel()
	x, _ := fs.ReadFile(testdata.FS(), "csdl/org-custom.xml")
	defs, _ := fs.ReadFile(testdata.FS(), "entitydefs/org-custom.json")
	seed := `{"tables":{"salesorder":[{"salesorderid":"` + seedgen.ID("salesorder", "x") + `","ordernumber":"ORD-9","contoso_trackingnumber":"TRK-1"}]}}`
	s := newTestServer(t, Options{CSDL: x, EntityDefs: defs, Seed: []byte(seed)})
	tok := secretToken(t, s)
	r := get(t, s, tok, "salesorders(ordernumber='ORD-9')?$select=contoso_trackingnumber")
	if r.status != 200 || !strings.Contains(r.body, `"contoso_trackingnumber":"TRK-1"`) {
		t.Errorf("alternate key retrieve: %d %s", r.status, r.body)
	}
	if r := get(t, s, tok, "salesorders(ordernumber='nope')"); r.status != 404 {
		t.Errorf("missing alternate key: %d %s", r.status, r.body)
	}
	if r := get(t, s, tok, "$metadata"); r.status != 200 || r.header.Get("Content-Type") != "application/xml" || r.body != string(x) {
		t.Errorf("$metadata: %d %q", r.status, r.header.Get("Content-Type"))
	}
}

// Writes outside change sets in a $batch (execute-batch-operations-using-
// web-api.md): the part's body follows its headers.
func TestBatchWrite(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	tok := secretToken(t, s)
	body := "--batch_AAA\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
		"POST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"Batched\"}\r\n" +
		"--batch_AAA\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
		"GET accounts?$select=name HTTP/1.1\r\nAccept: application/json\r\n" +
		"\r\n--batch_AAA--\r\n"
	status, _, parts := postBatch(t, s, tok, body)
	if diff := cmp.Diff([]string{"HTTP/1.1 204 No Content", "HTTP/1.1 200 OK"}, parts); status != 200 || diff != "" {
		t.Errorf("status %d, parts (-want +got):\n%s", status, diff)
	}
	if r := get(t, s, tok, "accounts?$select=name"); !strings.Contains(r.body, `"name":"Batched"`) {
		t.Errorf("the batched create is missing: %s", r.body)
	}
}

// changeset builds a change set part of a batch.
func changeset(parts ...string) string {
	var b strings.Builder
	b.WriteString("--batch_AAA\r\nContent-Type: multipart/mixed; boundary=changeset_BBB\r\n\r\n")
	for i, p := range parts {
		b.WriteString("--changeset_BBB\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: " + itoa(i+1) + "\r\n\r\n" + p + "\r\n")
	}
	b.WriteString("--changeset_BBB--\r\n")
	return b.String()
}

// Change sets (execute-batch-operations-using-web-api.md, "Change sets"):
// all or nothing, "$n" references the Content-ID n's entity.
func TestBatchChangeset(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	tok := secretToken(t, s)
	statusLines := regexp.MustCompile(`HTTP/1\.1 \d+[^\r]*`)
	send := func(body string) (int, []string) {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/data/v9.2/$batch", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", `multipart/mixed; boundary="batch_AAA"`)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, statusLines.FindAllString(string(b), -1)
	}
	ok := changeset(
		"POST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"Contoso\"}",
		"POST contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"lastname\":\"Ng\",\"parentcustomerid_account@odata.bind\":\"$1\"}",
		"PATCH $1 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"Contoso Ltd\"}",
	) + "--batch_AAA--\r\n"
	status, lines := send(ok)
	if diff := cmp.Diff([]string{"HTTP/1.1 204 No Content", "HTTP/1.1 204 No Content", "HTTP/1.1 204 No Content"}, lines); status != 200 || diff != "" {
		t.Fatalf("change set: %d (-want +got):\n%s", status, diff)
	}
	r := get(t, s, tok, "contacts?$select=lastname&$expand=parentcustomerid_account($select=name)")
	if !strings.Contains(r.body, `"lastname":"Ng"`) || !strings.Contains(r.body, `"name":"Contoso Ltd"`) {
		t.Errorf("after the change set: %s", r.body)
	}

	bad := changeset(
		"POST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"Rolled back\"}",
		"POST contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"nope\":1}",
	) + "--batch_AAA--\r\n"
	status, lines = send(bad)
	if diff := cmp.Diff([]string{"HTTP/1.1 400 Bad Request"}, lines); status != 400 || diff != "" {
		t.Errorf("failing change set: %d (-want +got):\n%s", status, diff)
	}
	if r := get(t, s, tok, "accounts/$count"); r.body != "\ufeff1" {
		t.Errorf("the failed change set left rows behind: %q accounts", r.body)
	}
}
