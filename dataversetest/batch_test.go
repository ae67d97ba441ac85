package dataversetest

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/dvgate/dvgate/dataversetest/internal/seedgen"
	"github.com/dvgate/dvgate/testdata"
	"io/fs"
)

func TestBatchOfGets(t *testing.T) {
	t.Parallel()
	s, tok := demo(t)
	body := "--batch_AAA\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
		"GET " + s.URL() + "/api/data/v9.2/WhoAmI HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n" +
		"--batch_AAA\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
		"GET /api/data/v9.2/nopes HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n--batch_AAA--\r\n"
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/data/v9.2/$batch", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", `multipart/mixed; boundary="batch_AAA"`)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != 200 || mt != "multipart/mixed" || !strings.HasPrefix(params["boundary"], "batchresponse_") {
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
	if strings.Join(statuses, "|") != "HTTP/1.1 200 OK|HTTP/1.1 404 Not Found" {
		t.Errorf("part statuses %v", statuses)
	}
	if s.WebAPIRequests() != 1 {
		t.Errorf("a batch is one request: %d", s.WebAPIRequests())
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
