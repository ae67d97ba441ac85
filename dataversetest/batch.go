package dataversetest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/google/uuid"
)

const maxBatchParts = 1000

// serveBatch executes a multipart/mixed $batch of GET requests. The batch
// was authenticated (and counted against service protection) as a whole.
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		writeError(w, http.StatusBadRequest, "0x80060888", "The batch request must have a \"Content-Type\" header of multipart/mixed with a boundary.")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var out bytes.Buffer
	boundary := "batchresponse_" + uuid.NewString()
	n := 0
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "0x80060888", "The batch request body is malformed: "+err.Error())
			return
		}
		n++
		if n > maxBatchParts {
			writeError(w, http.StatusBadRequest, "0x80060888", fmt.Sprintf("The maximum number of requests in a batch is %d.", maxBatchParts))
			return
		}
		rec := httptest.NewRecorder()
		if pmt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); strings.HasPrefix(pmt, "multipart/") {
			writeError(rec, http.StatusBadRequest, "0x80060888", "The simulator supports only GET requests in $batch, and GET is not allowed in a change set.")
		} else if inner, err := http.ReadRequest(bufio.NewReader(part)); err != nil {
			writeError(rec, http.StatusBadRequest, "0x80060888", "The batch part is not an HTTP request: "+err.Error())
		} else if inner.Method != http.MethodGet {
			writeError(rec, http.StatusMethodNotAllowed, "0x80060888", "The simulator is read-only: "+inner.Method+" is not supported.")
		} else {
			inner = inner.WithContext(r.Context())
			if !strings.HasPrefix(inner.URL.Path, "/") {
				inner.URL.Path = "/api/data/v9.2/" + inner.URL.Path
			}
			rc := &reqCtx{req: &Request{Filter: inner.URL.Query().Get("$filter")}}
			s.route(rec, inner, rc)
		}
		writeBatchPart(&out, boundary, rec)
	}
	fmt.Fprintf(&out, "--%s--\r\n", boundary)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+boundary)
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

func writeBatchPart(out *bytes.Buffer, boundary string, rec *httptest.ResponseRecorder) {
	fmt.Fprintf(out, "--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n", boundary)
	fmt.Fprintf(out, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
	for _, k := range []string{"Content-Type", "OData-Version", "ETag", "Preference-Applied"} {
		if v := rec.Header().Get(k); v != "" {
			if k == "Content-Type" && rec.Code == http.StatusOK && strings.HasPrefix(v, "application/json") {
				v = jsonContentType + "; odata.streaming=true"
			}
			fmt.Fprintf(out, "%s: %s\r\n", k, v)
		}
	}
	out.WriteString("\r\n")
	out.Write(rec.Body.Bytes())
	out.WriteString("\r\n")
}
