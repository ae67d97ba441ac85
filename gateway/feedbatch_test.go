package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dvgate/dvgate/dataversetest"
)

// A poll after the initial sync follows every table's deltaLink in one
// $batch; what the batch cannot answer (a next page, a failing part, a
// failed batch) is asked with plain GETs, with the same outcome as
// without the batch. Each case checks the requests the poll sent (the
// simulator's log), the poll's error, the counters, and that the change
// made before the poll reached the cached answers.
func TestFeedBatchPoll(t *testing.T) {
	t.Parallel()
	const api = "/api/data/v9.2/"
	tests := []struct {
		name string
		// setup changes the org (and the follower) once the answers are
		// cached.
		setup     func(t *testing.T, e *feedEnv)
		want      []string // outcomes of demoOrder and Alex's email after the poll
		wantPaths []string // requests of the poll
		wantErr   string
		wantOps   int64 // operations of the poll
		// wantPaths2 are the requests of the next poll ("" = no check).
		wantPaths2 []string
	}{{
		name: "a deleted line in the batch answer",
		setup: func(t *testing.T, e *feedEnv) {
			e.write(t, "DELETE", "salesorderdetails("+demoLine(t, e)+")", "")
		},
		want:      []string{demoOrder + " miss", alexEmail + " hit"},
		wantPaths: []string{api + "$batch"},
		wantOps:   5,
	}, {
		name: "a next page inside the batch",
		setup: func(t *testing.T, e *feedEnv) {
			// 5,001 new contacts, then Alex's phone: the contacts' first
			// page (5,000 rows) comes in the batch, Alex on the next.
			createContacts(t, e, 5001)
			e.write(t, "PATCH", "contacts("+alexID+")", `{"telephone1":"+1 555 0199"}`)
		},
		want:      []string{demoOrder + " hit", alexEmail + " miss"}, // the order does not show the phone
		wantPaths: []string{api + "$batch", api + "contacts"},
		wantOps:   6,
	}, {
		name: "a failing part (one table's token expired)",
		setup: func(t *testing.T, e *feedEnv) {
			e.write(t, "PATCH", "salesorders("+demoID+")", `{"name":"Changed"}`)
			e.f.mu.Lock()
			e.f.links["products"] = expireToken(t, e.f.links["products"])
			e.f.mu.Unlock()
		},
		want: []string{demoOrder + " miss", alexEmail + " hit"},
		// The part failed: products is asked again on its own, which fails
		// as without the batch; the tables before it were applied.
		wantPaths:  []string{api + "$batch", api + "products"},
		wantErr:    "expired",
		wantOps:    5,
		wantPaths2: []string{api + "$batch", api + "products"}, // the others batched, products read again
	}, {
		name: "the batch fails",
		setup: func(t *testing.T, e *feedEnv) {
			e.write(t, "PATCH", "contacts("+alexID+")", `{"telephone1":"+1 555 0198"}`)
			e.sim.InjectFault(dataversetest.Fault{Path: api + "$batch", Count: 1, Status: http.StatusServiceUnavailable})
		},
		want:       []string{demoOrder + " hit", alexEmail + " miss"}, // the order does not show the phone
		wantPaths:  []string{api + "$batch", api + "contacts", api + "accounts", api + "salesorders", api + "salesorderdetails", api + "products"},
		wantOps:    5,
		wantPaths2: []string{api + "$batch"}, // a 503 passes: batch again
	}, {
		name: "the batch is refused",
		setup: func(t *testing.T, e *feedEnv) {
			e.write(t, "PATCH", "contacts("+alexID+")", `{"telephone1":"+1 555 0197"}`)
			e.sim.InjectFault(dataversetest.Fault{Path: api + "$batch", Count: 1, Status: http.StatusBadRequest})
		},
		want:      []string{demoOrder + " hit", alexEmail + " miss"}, // the order does not show the phone
		wantPaths: []string{api + "$batch", api + "contacts", api + "accounts", api + "salesorders", api + "salesorderdetails", api + "products"},
		wantOps:   5,
		// A refusal would come back: the next polls go table by table.
		wantPaths2: []string{api + "contacts", api + "accounts", api + "salesorders", api + "salesorderdetails", api + "products"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newFeedEnv(t, dataversetest.Options{})
			ctx := context.Background()
			e.poll(t)
			orders, emails := []string{demoOrder}, []string{alexEmail}
			_ = e.outcomes(t, orders, emails)
			tc.setup(t, e)
			before, n := e.f.Stats(), len(e.sim.Requests())
			err := e.f.Poll(ctx)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Poll: %v, want an error containing %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantPaths, paths(e.sim.Requests()[n:])); diff != "" {
				t.Errorf("requests of the poll (-want +got):\n%s", diff)
			}
			if ops := e.f.Stats().Operations - before.Operations; ops != tc.wantOps {
				t.Errorf("operations %d, want %d", ops, tc.wantOps)
			}
			if diff := cmp.Diff(tc.want, e.outcomes(t, orders, emails)); diff != "" {
				t.Errorf("answers after the poll (-want +got):\n%s", diff)
			}
			if tc.wantPaths2 != nil {
				n := len(e.sim.Requests())
				e.poll(t)
				if diff := cmp.Diff(tc.wantPaths2, paths(e.sim.Requests()[n:])); diff != "" {
					t.Errorf("requests of the next poll (-want +got):\n%s", diff)
				}
				if !e.f.Stats().Up {
					t.Errorf("the feed is not up after the resync: %+v", e.f.Stats())
				}
			}
		})
	}
}

// Stale answers only where the change reached them: a poll with nothing
// changed is one request and leaves cached answers alone.
func TestFeedBatchNothingChanged(t *testing.T) {
	t.Parallel()
	e := newFeedEnv(t, dataversetest.Options{})
	e.poll(t)
	_ = e.outcomes(t, []string{demoOrder}, []string{alexEmail})
	before, n := e.f.Stats(), len(e.sim.Requests())
	e.poll(t)
	if diff := cmp.Diff([]string{"/api/data/v9.2/$batch"}, paths(e.sim.Requests()[n:])); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	after := e.f.Stats()
	if got := [2]int64{after.Requests - before.Requests, after.Operations - before.Operations}; got != [2]int64{1, 5} {
		t.Errorf("requests, operations = %v, want [1 5]", got)
	}
	if diff := cmp.Diff([]string{demoOrder + " hit", "alex.wu@example.com hit"},
		e.outcomes(t, []string{demoOrder}, []string{alexEmail})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

const alexEmail = "alex.wu@example.com"

func paths(reqs []dataversetest.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Path)
	}
	return out
}

// demoLine is the id of a line of demoOrder.
func demoLine(t *testing.T, e *feedEnv) string {
	t.Helper()
	o, _, err := e.g.Order(context.Background(), demoOrder)
	if err != nil || len(o.Lines) == 0 {
		t.Fatalf("demo order: %v", err)
	}
	r, err := e.w.Get(context.Background(), "salesorderdetails?$select=salesorderdetailid&$filter=_salesorderid_value eq "+demoID)
	if err != nil {
		t.Fatal(err)
	}
	_, id, ok := strings.Cut(string(r.Body), `"salesorderdetailid":"`)
	if !ok {
		t.Fatalf("no line: %s", r.Body)
	}
	return id[:36]
}

// createContacts creates n contacts through $batch requests of 1,000.
func createContacts(t *testing.T, e *feedEnv, n int) {
	t.Helper()
	for start := 0; start < n; start += 1000 {
		var b strings.Builder
		for i := start; i < min(n, start+1000); i++ {
			fmt.Fprintf(&b, "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"+
				"POST contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"+
				`{"lastname":"N%d","emailaddress1":"n%d@late.example"}`+"\r\n", i, i)
		}
		b.WriteString("--b--\r\n")
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.w.BaseURL()+"$batch", strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "multipart/mixed; boundary=b")
		resp, err := e.w.Do(req)
		if err != nil {
			t.Fatalf("creating contacts: %v", err)
		}
		resp.Body.Close()
	}
}

// expireToken gives a deltaLink's $deltatoken an issue date of 2020.
func expireToken(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	v, _, ok := strings.Cut(q.Get("$deltatoken"), "!")
	if !ok {
		t.Fatalf("no $deltatoken in %s", link)
	}
	q.Set("$deltatoken", v+"!01/01/2020 00:00:00")
	u.RawQuery = q.Encode()
	return u.String()
}
