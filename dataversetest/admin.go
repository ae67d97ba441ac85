package dataversetest

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The admin API (Options.Admin) lets a test harness in any language do what
// Go tests do with Server's methods. It lives under /_dvsim/, a path that
// neither the Web API (/api/...) nor Entra (/{tenant}/...) ever has, on the
// same port. It has no authentication: the simulator is for tests only.
//
//	GET    /_dvsim/state     -> AdminState
//	POST   /_dvsim/state     <- AdminStateChange -> AdminState
//	POST   /_dvsim/faults    <- AdminFault -> {"id": N}
//	DELETE /_dvsim/faults    clears all faults
//	DELETE /_dvsim/faults/N  removes fault N
//	GET    /_dvsim/counters  -> Counters (webAPI, token, byPath)
//	POST   /_dvsim/reset     clears faults and counters, restores the app
//	                         user, read privileges and the secret's validity
const adminPrefix = "/_dvsim/"

// AdminState is the org and Entra state the admin API reports.
type AdminState struct {
	ApplicationUser bool     `json:"applicationUser"`
	DeniedTables    []string `json:"deniedTables"`
	SecretExpired   bool     `json:"secretExpired"`
	TokenLifetime   int64    `json:"tokenLifetimeSeconds"`
	Faults          []int    `json:"faults"`
}

// AdminStateChange switches states; absent fields are left as they are.
type AdminStateChange struct {
	// ApplicationUser false: every Web API call answers 403 0x80072560.
	ApplicationUser *bool `json:"applicationUser,omitempty"`
	// DenyRead / AllowRead: table logical names; reads answer 403 0x80040220.
	DenyRead  []string `json:"denyRead,omitempty"`
	AllowRead []string `json:"allowRead,omitempty"`
	// ExpireClientSecret: token requests with the secret fail with
	// AADSTS7000222; ClientSecret rotates it (and un-expires it).
	ExpireClientSecret bool   `json:"expireClientSecret,omitempty"`
	ClientSecret       string `json:"clientSecret,omitempty"`
	// RevokeTokens: tokens issued so far answer 401 with the challenge.
	RevokeTokens bool `json:"revokeTokens,omitempty"`
	// TokenLifetimeSeconds sets expires_in of tokens issued from now on.
	TokenLifetimeSeconds int64 `json:"tokenLifetimeSeconds,omitempty"`
}

// AdminFault is a Fault in JSON, durations in milliseconds. Status 429
// answers as service protection does (0x80072322 with Retry-After).
type AdminFault struct {
	Path         string  `json:"path,omitempty"`
	Count        int     `json:"count,omitempty"`
	Fraction     float64 `json:"fraction,omitempty"`
	Status       int     `json:"status,omitempty"`
	RetryAfterMs int64   `json:"retryAfterMs,omitempty"`
	LatencyMs    int64   `json:"latencyMs,omitempty"`
	JitterMs     int64   `json:"jitterMs,omitempty"`
	Malformed    bool    `json:"malformed,omitempty"`
	Reset        bool    `json:"reset,omitempty"`
	SlowBodyMs   int64   `json:"slowBodyMs,omitempty"`
	Body         string  `json:"body,omitempty"`
}

func (f AdminFault) fault() Fault {
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	return Fault{Path: f.Path, Count: f.Count, Fraction: f.Fraction, Status: f.Status, RetryAfter: ms(f.RetryAfterMs),
		Latency: ms(f.LatencyMs), Jitter: ms(f.JitterMs), Malformed: f.Malformed, Reset: f.Reset, SlowBody: ms(f.SlowBodyMs), Body: f.Body}
}

// State reports the org and Entra state (as the admin API does).
func (s *Server) State() AdminState {
	s.mu.Lock()
	st := AdminState{ApplicationUser: s.appUser, SecretExpired: s.secretExpired, TokenLifetime: int64(s.tokenLifetime / time.Second), DeniedTables: []string{}}
	for t := range s.denied {
		st.DeniedTables = append(st.DeniedTables, t)
	}
	s.mu.Unlock()
	slices.Sort(st.DeniedTables)
	s.faults.mu.Lock()
	st.Faults = []int{}
	for _, f := range s.faults.faults {
		st.Faults = append(st.Faults, f.id)
	}
	s.faults.mu.Unlock()
	return st
}

// ChangeState applies an AdminStateChange (as the admin API does).
func (s *Server) ChangeState(c AdminStateChange) {
	if c.ApplicationUser != nil {
		s.SetApplicationUser(*c.ApplicationUser)
	}
	for _, t := range c.DenyRead {
		s.DenyRead(t)
	}
	for _, t := range c.AllowRead {
		s.AllowRead(t)
	}
	if c.ClientSecret != "" {
		s.SetClientSecret(c.ClientSecret)
	}
	if c.ExpireClientSecret {
		s.ExpireClientSecret()
	}
	if c.RevokeTokens {
		s.RevokeTokens()
	}
	if c.TokenLifetimeSeconds > 0 {
		s.SetTokenLifetime(time.Duration(c.TokenLifetimeSeconds) * time.Second)
	}
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, adminPrefix)
	decode := func(v any) bool {
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			writeJSONValue(w, http.StatusBadRequest, map[string]string{"error": "bad JSON: " + err.Error()})
			return false
		}
		return true
	}
	switch {
	case rest == "state" && r.Method == http.MethodGet:
		writeJSONValue(w, http.StatusOK, s.State())
	case rest == "state" && r.Method == http.MethodPost:
		var c AdminStateChange
		if decode(&c) {
			s.ChangeState(c)
			writeJSONValue(w, http.StatusOK, s.State())
		}
	case rest == "faults" && r.Method == http.MethodPost:
		var f AdminFault
		if decode(&f) {
			id, _ := s.injectFault(f.fault())
			writeJSONValue(w, http.StatusOK, map[string]int{"id": id})
		}
	case rest == "faults" && r.Method == http.MethodDelete:
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(rest, "faults/") && r.Method == http.MethodDelete:
		id, err := strconv.Atoi(strings.TrimPrefix(rest, "faults/"))
		if err != nil {
			writeJSONValue(w, http.StatusBadRequest, map[string]string{"error": "fault id must be a number"})
			return
		}
		s.faults.mu.Lock()
		s.faults.removeLocked(id)
		s.faults.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case rest == "counters" && r.Method == http.MethodGet:
		c := s.Counters()
		writeJSONValue(w, http.StatusOK, map[string]any{"webAPI": c.WebAPI, "token": c.Token, "byPath": c.ByPath})
	case rest == "reset" && r.Method == http.MethodPost:
		s.ClearFaults()
		s.ResetCounters()
		s.mu.Lock()
		s.appUser, s.secretExpired, s.denied, s.identities = true, false, map[string]bool{}, defaultIdentities()
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSONValue(w, http.StatusNotFound, map[string]string{"error": "unknown admin endpoint " + r.Method + " " + r.URL.Path})
	}
}
