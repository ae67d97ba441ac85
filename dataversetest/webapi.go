package dataversetest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// reqCtx carries per-request facts from the handlers back to the log.
type reqCtx struct {
	req    *Request
	parsed Expr
	claims tokenClaims
}

// serveWebAPI is the entry point for /api/data/v9.2/...: it logs and counts
// the request, applies faults, then authenticates and dispatches.
func (s *Server) serveWebAPI(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	rc := &reqCtx{req: &Request{
		Time: s.clock(), Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Token: token, Filter: r.URL.Query().Get("$filter"),
	}}
	s.obs.begin(rc.req)
	// Every answer, errors included, carries a request id, as the real
	// service's x-ms-service-request-id (wire facts §1.4).
	w.Header()["x-ms-service-request-id"] = []string{uuid.NewString()}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		var parsed any
		if rc.parsed != nil {
			parsed = rc.parsed
		}
		s.obs.finish(rc.req, sw.status, rc.req.Filter, parsed)
		s.log.Debug("dataversetest", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery, "status", sw.status)
	}()
	if s.applyFaults(sw, r, false, func(w http.ResponseWriter) { s.serveWebAPIAuthed(w, r, rc) }) {
		return
	}
	s.serveWebAPIAuthed(sw, r, rc)
}

// serveWebAPIAuthed checks the token, the application user and service
// protection, then routes.
func (s *Server) serveWebAPIAuthed(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	claims, err := s.checkToken(r.Header.Get("Authorization"))
	if err != nil {
		w.Header().Set("WWW-Authenticate", "Bearer authorization_uri="+s.url+"/"+s.tenant+"/oauth2/authorize, resource_id="+s.url+"/")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.claims = claims
	s.mu.Lock()
	appUser := s.appUser
	s.mu.Unlock()
	if _, miUser, isMI := s.identityOf(claims.AppID); isMI {
		appUser = miUser // a managed identity's own application user
	}
	if !appUser {
		writeError(w, http.StatusForbidden, "0x80072560", "The user is not a member of the organization.")
		return
	}
	done, left, terr := s.throttle.admit(claims.AppID+"/"+claims.Oid, s.clock())
	if terr != nil {
		secs := int64((terr.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		writeError(w, http.StatusTooManyRequests, terr.code, terr.msg)
		return
	}
	defer func() { done(s.clock()) }()
	// The service protection debug headers (api-limits.md: "Don't depend on
	// these values"), spelled in lower case as the service sends them. The
	// number format of the time header is a guess (SUPPORT.md).
	if left.requests >= 0 {
		w.Header()["x-ms-ratelimit-burst-remaining-xrm-requests"] = []string{strconv.Itoa(left.requests)}
	}
	if left.execTime >= 0 {
		w.Header()["x-ms-ratelimit-time-remaining-xrm-requests"] = []string{formatSeconds(left.execTime)}
	}
	s.route(w, r, rc)
}

// route dispatches a request that passed authentication. Reads compute
// their answer into a buffer under the data read lock and send it after
// releasing it, so a slow client never holds up writers.
func (s *Server) route(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api/data/v9.2"), "/")
	if rest == "$batch" {
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, codeBadRequest, "The HTTP method '"+r.Method+"' is not allowed for $batch.")
			return
		}
		s.serveBatch(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		buf := &bufferedWriter{header: w.Header(), status: http.StatusOK}
		s.dmu.RLock()
		s.routeGet(buf, r, rc, rest)
		s.dmu.RUnlock()
		w.WriteHeader(buf.status)
		_, _ = w.Write(buf.buf.Bytes())
	case http.MethodPost, http.MethodPatch, http.MethodDelete:
		s.serveWrite(w, r, rest)
	default:
		writeError(w, http.StatusMethodNotAllowed, codeBadRequest, "The HTTP method '"+r.Method+"' is not supported.")
	}
}

func (s *Server) routeGet(w http.ResponseWriter, r *http.Request, rc *reqCtx, rest string) {
	switch rest {
	case "":
		s.serveServiceDocument(w)
	case "$metadata":
		w.Header().Set("Content-Type", "application/xml")
		setODataVersion(w.Header())
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(s.data.csdl)
	case "WhoAmI", "WhoAmI()", "Microsoft.Dynamics.CRM.WhoAmI", "Microsoft.Dynamics.CRM.WhoAmI()":
		w.Header().Set("Cache-Control", "no-cache")
		user := DefaultUserID
		if u, _, isMI := s.identityOf(rc.claims.AppID); isMI {
			user = u
		}
		writeOData(w, http.StatusOK, object{
			{"@odata.context", s.url + webAPIPrefix + "$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"},
			{"BusinessUnitId", DefaultBusinessUnitID},
			{"UserId", user},
			{"OrganizationId", DefaultOrganizationID},
		})
	default:
		if rest == "EntityDefinitions" || strings.HasPrefix(rest, "EntityDefinitions(") {
			s.serveEntityDefinitions(w, r, rest)
			return
		}
		s.serveResource(w, r, rc, rest)
	}
}

// apiError is a Dataverse error decided while handling a query.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func writeAPIError(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae.status, ae.code, ae.message)
		return
	}
	writeError(w, http.StatusInternalServerError, "0x80040216", "An unexpected error occurred.")
}

// formatSeconds writes a duration as seconds with two decimals and
// thousands separators ("1,199.50").
func formatSeconds(d time.Duration) string {
	cs := d.Milliseconds() / 10
	return groupThousands(cs/100) + "." + strconv.FormatInt(100+cs%100, 10)[1:]
}
