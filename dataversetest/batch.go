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
	"slices"
	"strings"

	"github.com/google/uuid"
)

const maxBatchParts = 1000

// serveBatch executes a multipart/mixed $batch of requests and change sets
// (execute-batch-operations-using-web-api.md). The batch was
// authenticated (and counted against service protection) as a whole. Without
// Prefer: odata.continue-on-error the first failing request ends the batch:
// the answer is 400 and holds the parts up to and including that failure
// ("Handling errors"; wire facts §11.1); with it every part is answered.
func (s *Server) serveBatch(w http.ResponseWriter, r *http.Request) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		writeError(w, http.StatusBadRequest, codeBadRequest, "The batch request must have a \"Content-Type\" header of multipart/mixed with a boundary.")
		return
	}
	continueOnError := false
	for _, line := range r.Header.Values("Prefer") {
		for _, p := range splitPrefer(line) {
			continueOnError = continueOnError || strings.TrimSpace(p) == "odata.continue-on-error"
		}
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var out bytes.Buffer
	boundary := "batchresponse_" + uuid.NewString()
	n := 0
	failed := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "The batch request body is malformed: "+err.Error())
			return
		}
		n++
		if n > maxBatchParts {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("The maximum number of requests in a batch is %d.", maxBatchParts))
			return
		}
		rec := httptest.NewRecorder()
		if pmt, pparams, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); strings.HasPrefix(pmt, "multipart/") {
			parts, failed := s.serveChangeset(part, pparams["boundary"])
			if failed != nil {
				rec = failed
			} else {
				writeChangesetResponse(&out, boundary, parts)
				continue
			}
		} else if inner, err := readBatchRequest(part); err != nil {
			writeError(rec, http.StatusBadRequest, codeBadRequest, "The batch part is not an HTTP request: "+err.Error())
		} else {
			inner = inner.WithContext(r.Context())
			rc := &reqCtx{req: &Request{Filter: inner.URL.Query().Get("$filter")}}
			s.route(rec, inner, rc)
		}
		writeBatchPart(&out, boundary, rec, "")
		if rec.Code >= 400 && !continueOnError {
			failed = true
			break
		}
	}
	fmt.Fprintf(&out, "--%s--\r\n", boundary)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+boundary)
	setODataVersion(w.Header())
	if continueOnError {
		w.Header().Set("Preference-Applied", "odata.continue-on-error")
	}
	if failed {
		w.WriteHeader(http.StatusBadRequest)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	_, _ = w.Write(out.Bytes())
}

// readBatchRequest parses one application/http part. Widely used clients
// end a GET part with a single CRLF after its headers, right before the
// next boundary, so the blank line that ends the headers may be missing
// (the multipart reader takes the last CRLF as part of the boundary);
// http.ReadRequest alone reports "unexpected EOF" there (wire facts
// §11.1). A body, if any, is everything after the blank line.
func readBatchRequest(part io.Reader) (*http.Request, error) {
	raw, err := io.ReadAll(io.LimitReader(part, 64<<20))
	if err != nil {
		return nil, err
	}
	head, body, found := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !found {
		head, body, found = bytes.Cut(raw, []byte("\n\n"))
	}
	if !found {
		head, body = bytes.TrimRight(raw, "\r\n"), nil
	}
	// A URL relative to the service root ("GET accounts?… HTTP/1.1", OData
	// 4.01 §11.7.7.1) becomes an absolute path for http.ReadRequest.
	if method, rest, ok := bytes.Cut(head, []byte(" ")); ok && len(rest) > 0 && rest[0] != '/' && !bytes.HasPrefix(rest, []byte("http")) {
		head = slices.Concat(method, []byte(" "+webAPIPrefix), rest)
	}
	req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(head), strings.NewReader("\r\n\r\n"))))
	if err != nil {
		return nil, err
	}
	body = bytes.TrimRight(body, "\r\n")
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return req, nil
}

func writeBatchPart(out *bytes.Buffer, boundary string, rec *httptest.ResponseRecorder, contentID string) {
	fmt.Fprintf(out, "--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n", boundary)
	if contentID != "" {
		fmt.Fprintf(out, "Content-ID: %s\r\n", contentID)
	}
	out.WriteString("\r\n")
	fmt.Fprintf(out, "HTTP/1.1 %d %s\r\n", rec.Code, http.StatusText(rec.Code))
	for _, k := range []string{"Content-Type", "OData-Version", "OData-EntityId", "ETag", "Preference-Applied", "Location"} {
		v := rec.Header().Get(k)
		if vs := rec.Header()[k]; len(vs) > 0 { // OData-Version is set uncanonicalised
			v = vs[0]
		}
		if v != "" {
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

// changesetPart is one answered request of a change set.
type changesetPart struct {
	contentID string
	rec       *httptest.ResponseRecorder
}

// serveChangeset executes a change set atomically (execute-batch-
// operations-using-web-api.md, "Change sets"): its writes run under one
// exclusive lock and are undone if any fails, in which case failed is that
// request's answer, which replaces the change set in the batch response.
// "$n" at the start of a URL, or as an @odata.bind value, names the entity
// created or changed by the part with Content-ID n.
func (s *Server) serveChangeset(body io.Reader, boundary string) (parts []changesetPart, failed *httptest.ResponseRecorder) {
	fail := func(status int, msg string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		writeError(rec, status, codeBadRequest, msg)
		return rec
	}
	if boundary == "" {
		return nil, fail(http.StatusBadRequest, "The change set has no boundary.")
	}
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if err := s.ensureOwned(); err != nil {
		return nil, fail(http.StatusInternalServerError, "dataversetest: "+err.Error())
	}
	var undo undoLog
	entities := map[string]string{} // Content-ID -> "contacts(<id>)"
	mr := multipart.NewReader(body, boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return parts, nil
		}
		if err != nil {
			undo.rollback()
			return nil, fail(http.StatusBadRequest, "The change set is malformed: "+err.Error())
		}
		cid := part.Header.Get("Content-ID")
		req, err := readBatchRequest(part)
		if err != nil {
			undo.rollback()
			return nil, fail(http.StatusBadRequest, "The batch part is not an HTTP request: "+err.Error())
		}
		if req.Method == http.MethodGet {
			undo.rollback()
			return nil, fail(http.StatusBadRequest, "GET requests are not allowed in a change set.")
		}
		path := strings.TrimPrefix(req.URL.Path, webAPIPrefix)
		if ref, rest, ok := strings.Cut(strings.TrimPrefix(path, "$"), "/"); strings.HasPrefix(path, "$") {
			if e, found := entities[ref]; found {
				path = e
				if ok {
					path += "/" + rest
				}
			}
		}
		raw, _ := io.ReadAll(req.Body)
		for id, e := range entities {
			raw = bytes.ReplaceAll(raw, []byte(`"$`+id+`"`), []byte(`"/`+e+`"`))
		}
		req.Body = io.NopCloser(bytes.NewReader(raw))
		rec := httptest.NewRecorder()
		if b, err := readWriteBody(req); err != nil {
			writeAPIError(rec, err)
		} else if req.Method != http.MethodPost && req.Method != http.MethodPatch && req.Method != http.MethodDelete {
			writeError(rec, http.StatusMethodNotAllowed, codeBadRequest, "The HTTP method '"+req.Method+"' is not allowed in a change set.")
		} else {
			s.writeLocked(rec, req, path, b, &undo)
		}
		if rec.Code >= 400 {
			undo.rollback()
			return nil, rec
		}
		if loc := rec.Header().Get("OData-EntityId"); loc != "" && cid != "" {
			entities[cid] = strings.TrimPrefix(loc, s.url+webAPIPrefix)
		}
		parts = append(parts, changesetPart{cid, rec})
	}
}

// writeChangesetResponse writes a successful change set's answers as a
// nested multipart/mixed part of the batch response.
func writeChangesetResponse(out *bytes.Buffer, boundary string, parts []changesetPart) {
	cs := "changesetresponse_" + uuid.NewString()
	fmt.Fprintf(out, "--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n", boundary, cs)
	for _, p := range parts {
		writeBatchPart(out, cs, p.rec, p.contentID)
	}
	fmt.Fprintf(out, "--%s--\r\n", cs)
}
