package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/gateway"
)

// bodyUpstream answers every request with 200 and the same body.
type bodyUpstream struct{ body []byte }

func (u bodyUpstream) BaseURL() string { return "https://org.example.crm4.dynamics.com/api/data/v9.2/" }

func (u bodyUpstream) WhoAmI(context.Context) (dataverse.WhoAmIResult, error) {
	return dataverse.WhoAmIResult{}, nil
}

func (u bodyUpstream) Do(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Request: req, ContentLength: int64(len(u.body)),
		Header: http.Header{"Content-Type": {"application/json; odata.metadata=minimal"}, "Odata-Version": {"4.0"}},
		Body:   io.NopCloser(bytes.NewReader(u.body))}, nil
}

// FuzzDecodeAnswers feeds arbitrary bodies to every lookup as Dataverse's
// answer: never a panic (which the gateway would turn into a 500 for every
// waiter), and either an answer with an id or an error the sidecar maps to
// a status other than 500.
func FuzzDecodeAnswers(f *testing.F) {
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"value":null}`, `{"value":[]}`, `{"value":[null]}`, `{"value":[{}]}`,
		`{"value":[{"contactid":"4faf1f34-f06d-4e51-80d0-00155db07cb1","emailaddress1":"a@b.c"}]}`,
		`{"value":[{"salesorderid":"4faf1f34-f06d-4e51-80d0-00155db07cb1","totalamount":"x","order_details":[null,{"quantity":1e400}]}]}`,
		`{"salesorderid":"4faf1f34-f06d-4e51-80d0-00155db07cb1","statecode":99999999999,"order_details":{}}`,
		`{"value":[{"salesorderid":"not-a-guid"}]}`, `{"@odata.context":"x#systemusers","value":[{"fullname":"SYSTEM"}]}`,
		`{"value":[{"@odata.etag":"W/\"1`, "\xff\xfe", `{"value":[{"createdon":"yesterday","modifiedon":1}]}`} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, which uint8) {
		// A small cache: a default one (64 MiB of TinyLFU counters) per
		// input would dominate the fuzzer's time.
		cache, err := gateway.NewCache(gateway.CacheConfig{MaxBytes: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		defer cache.Close()
		g, err := gateway.New(gateway.Config{Conn: bodyUpstream{body}, Cache: cache, Budget: gateway.Budget{Rate: -1}})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		ctx := context.Background()
		var id string
		switch which % 4 {
		case 0:
			var c *gateway.Customer
			if c, _, err = g.Customer(ctx, "a@b.c"); err == nil {
				id = c.ID
			}
		case 1:
			var o *gateway.Order
			if o, _, err = g.Order(ctx, "ORD-1"); err == nil {
				id = o.ID
			}
		case 2:
			var o *gateway.Order
			if o, _, err = g.Order(ctx, "4faf1f34-f06d-4e51-80d0-00155db07cb1"); err == nil {
				id = o.ID
			}
		case 3:
			var list []gateway.OrderSummary
			if list, _, err = g.RecentOrders(ctx, "contact", "4faf1f34-f06d-4e51-80d0-00155db07cb1", 5); err == nil {
				id = "list"
				for _, s := range list {
					if s.ID == "" {
						t.Fatalf("recent orders hold a row without id: %+v", list)
					}
				}
			}
		}
		var pe *gateway.PanicError
		if errors.As(err, &pe) {
			t.Fatalf("decoding %q panicked: %v\n%s", body, pe.Value, pe.Stack)
		}
		if err == nil && id == "" {
			t.Fatalf("answer without an id from %q", body)
		}
		if code := gateway.ErrorCode(err); err != nil && code == "internal" {
			t.Fatalf("error %v maps to %s", err, code)
		}
	})
}
