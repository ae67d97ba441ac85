package dataversetest

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWhoAmI(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	tok := secretToken(t, s)
	for _, path := range []string{"WhoAmI", "WhoAmI()"} {
		r := get(t, s, tok, path)
		org, user, bu := s.WhoAmI()
		want := `{"@odata.context":"` + s.URL() + `/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse","BusinessUnitId":"` + bu + `","UserId":"` + user + `","OrganizationId":"` + org + `"}`
		if r.status != 200 || r.body != want {
			t.Errorf("%s: %d %s\nwant %s", path, r.status, r.body, want)
		}
		if got := r.header.Get("Content-Type"); got != "application/json; odata.metadata=minimal" {
			t.Errorf("Content-Type %q", got)
		}
		if got := r.header.Get("OData-Version"); got != "4.0" {
			t.Errorf("OData-Version %q", got)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestServer(t, Options{Seed: EmptySeed, Clock: clock.Now})
	s.SetTokenLifetime(time.Hour)
	valid := secretToken(t, s)
	now := clock.Now()
	otherAud := s.mintToken(tokenClaims{Aud: "https://other.crm.dynamics.com", AppID: s.ClientID(), Exp: now.Add(time.Hour).Unix()})
	expired := s.mintToken(tokenClaims{Aud: s.URL(), AppID: s.ClientID(), Exp: now.Add(-time.Second).Unix()})
	forged := valid[:strings.LastIndexByte(valid, '.')] + ".AAAA"
	wantChallenge := "Bearer authorization_uri=" + s.AuthorityHost() + s.TenantID() + "/oauth2/authorize, resource_id=" + s.URL() + "/"
	for _, tc := range []struct{ name, token string }{
		{"missing", ""}, {"wrong audience", otherAud}, {"expired", expired}, {"forged", forged}, {"garbage", "abc"},
	} {
		r := get(t, s, tc.token, "WhoAmI")
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != wantChallenge {
			t.Errorf("%s: %d %q, want 401 %q", tc.name, r.status, r.header.Get("WWW-Authenticate"), wantChallenge)
		}
	}
	if r := get(t, s, valid, "WhoAmI"); r.status != 200 {
		t.Fatalf("valid token: %d", r.status)
	}
	clock.Advance(time.Hour)
	if r := get(t, s, valid, "WhoAmI"); r.status != http.StatusUnauthorized {
		t.Errorf("token after its lifetime: %d, want 401", r.status)
	}
}

func TestApplicationUserMissing(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	tok := secretToken(t, s)
	s.SetApplicationUser(false)
	r := get(t, s, tok, "WhoAmI")
	want := `{"error":{"code":"0x80072560","message":"The user is not a member of the organization."}}`
	if r.status != http.StatusForbidden || r.body != want {
		t.Errorf("got %d %s", r.status, r.body)
	}
	s.SetApplicationUser(true)
	if r := get(t, s, tok, "WhoAmI"); r.status != 200 {
		t.Errorf("after restoring the user: %d", r.status)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      Fault
		wantStatus []int // statuses of three consecutive WhoAmI calls
		wantRetry  string
		wantBody   string
	}{
		{"503 twice", Fault{Status: 503, Count: 2}, []int{503, 503, 200}, "", ""},
		{"429 with retry", Fault{Status: 429, Count: 1, RetryAfter: 1500 * time.Millisecond}, []int{429, 200, 200}, "2",
			`{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}`},
		{"other path untouched", Fault{Path: "/api/data/v9.2/contacts", Status: 500}, []int{200, 200, 200}, "", ""},
		{"fraction 1", Fault{Status: 502, Fraction: 1}, []int{502, 502, 502}, "", ""},
		{"malformed", Fault{Malformed: true, Count: 1}, []int{200, 200, 200}, "", ""},
		{"latency", Fault{Latency: time.Millisecond, Jitter: time.Millisecond, Count: 1}, []int{200, 200, 200}, "", ""},
		{"slow body", Fault{SlowBody: 5 * time.Millisecond, Count: 1}, []int{200, 200, 200}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, Options{Seed: EmptySeed})
			tok := secretToken(t, s)
			s.InjectFault(tc.fault)
			var got []int
			for i := range 3 {
				r := get(t, s, tok, "WhoAmI")
				got = append(got, r.status)
				if i == 0 && tc.wantRetry != "" && r.header.Get("Retry-After") != tc.wantRetry {
					t.Errorf("Retry-After %q, want %q", r.header.Get("Retry-After"), tc.wantRetry)
				}
				if i == 0 && tc.wantBody != "" && r.body != tc.wantBody {
					t.Errorf("body %s", r.body)
				}
				if i == 0 && tc.fault.Malformed && !strings.HasPrefix(r.body, `{"@odata.context"`) {
					t.Errorf("malformed body %q", r.body)
				}
				if i == 0 && tc.fault.SlowBody > 0 && !strings.Contains(r.body, "WhoAmIResponse") {
					t.Errorf("slow body lost content: %q", r.body)
				}
			}
			if diff := cmp.Diff(tc.wantStatus, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if n := s.WebAPIRequests(); n != 3 {
				t.Errorf("WebAPIRequests = %d, want 3", n)
			}
		})
	}
}

func TestFaultResetAndRemove(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	tok := secretToken(t, s)
	remove := s.InjectFault(Fault{Reset: true})
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/api/data/v9.2/WhoAmI", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.Client().Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Fatalf("reset fault: got a response %d", resp.StatusCode)
	}
	if errors.Is(err, http.ErrHandlerTimeout) {
		t.Fatal(err)
	}
	remove()
	if r := get(t, s, tok, "WhoAmI"); r.status != 200 {
		t.Errorf("after remove: %d", r.status)
	}
	reqs := s.Requests()
	if len(reqs) < 2 || reqs[0].Status != 0 || reqs[len(reqs)-1].Status != 200 {
		t.Errorf("request log statuses: %+v", reqs)
	}
}

func TestTokenFault(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	s.InjectFault(Fault{Path: "token", Status: 503, Count: 1})
	if st, body := postToken(t, s, nil); st != 503 || !strings.Contains(body, `"error":"temporarily_unavailable"`) {
		t.Errorf("token fault: %d %s", st, body)
	}
	tok := secretToken(t, s)
	if r := get(t, s, tok, "WhoAmI"); r.status != 200 {
		t.Errorf("Web API unaffected by token fault: %d", r.status)
	}
	if s.TokenRequests() != 2 || s.WebAPIRequests() != 1 {
		t.Errorf("counters: token %d web %d", s.TokenRequests(), s.WebAPIRequests())
	}
}

func TestCounters(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	tok := secretToken(t, s)
	get(t, s, tok, "WhoAmI")
	get(t, s, tok, "WhoAmI")
	get(t, s, "", "WhoAmI()")
	c := s.Counters()
	want := Counters{WebAPI: 3, Token: 1,
		ByPath:  map[string]int{"/api/data/v9.2/WhoAmI": 2, "/api/data/v9.2/WhoAmI()": 1},
		ByToken: map[string]int{tok: 2, "": 1}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
	s.ResetCounters()
	if s.WebAPIRequests() != 0 || s.TokenRequests() != 0 || len(s.Requests()) != 0 {
		t.Error("ResetCounters left counts")
	}
}

func TestServiceProtection(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestServer(t, Options{Seed: EmptySeed, Clock: clock.Now, Limits: Limits{Requests: 3, Window: 10 * time.Second}})
	tok := secretToken(t, s)
	for i := range 3 {
		if r := get(t, s, tok, "WhoAmI"); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		clock.Advance(time.Second)
	}
	r := get(t, s, tok, "WhoAmI")
	want := `{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 3 over time window of 10 seconds."}}`
	if r.status != 429 || r.body != want || r.header.Get("Retry-After") != "7" {
		t.Errorf("throttled: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	clock.Advance(7 * time.Second)
	if r := get(t, s, tok, "WhoAmI"); r.status != 200 {
		t.Errorf("after the window slid: %d %s", r.status, r.body)
	}
}

func TestServiceProtectionExecutionTime(t *testing.T) {
	t.Parallel()
	// A clock that advances 1 s on each reading makes every request "take" time.
	clock := newFakeClock()
	stepping := func() time.Time { clock.Advance(time.Second); return clock.Now() }
	s := newTestServer(t, Options{Seed: EmptySeed, Clock: stepping, Limits: Limits{ExecutionTime: 2 * time.Second, Window: time.Hour}})
	tok := secretToken(t, s)
	var last response
	for range 4 {
		last = get(t, s, tok, "WhoAmI")
	}
	if last.status != 429 || !strings.Contains(last.body, `"code":"0x80072321"`) || !strings.Contains(last.body, "exceeded limit of 2,000  milliseconds over time window of 3600 seconds.") {
		t.Errorf("execution time limit: %d %s", last.status, last.body)
	}
}

func TestGroupThousands(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1200000: "1,200,000"} {
		if got := groupThousands(in); got != want {
			t.Errorf("groupThousands(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	l := newLimiter(Limits{Concurrent: 1}.withDefaults())
	now := time.Unix(0, 0)
	done, _, err := l.admit("u", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.admit("u", now); err == nil || err.code != "0x80072326" || err.msg != "Number of concurrent requests exceeded the limit of 1." {
		t.Errorf("second concurrent request: %+v", err)
	}
	if _, _, err := l.admit("other", now); err != nil {
		t.Errorf("limits are per user: %+v", err)
	}
	done(now)
	if _, _, err := l.admit("u", now); err != nil {
		t.Errorf("after done: %+v", err)
	}
}
