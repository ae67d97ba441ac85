package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dvgate/dvgate/gateway"
	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/sidecar/internal/httpapi"
)

// handlers implements the generated StrictServerInterface over the
// integration registry. Bare /v1/... paths and /v1/integrations/{name}/...
// paths share one implementation each.
type handlers struct{ h *handler }

var _ httpapi.StrictServerInterface = (*handlers)(nil)

// backend finds the named integration's current backend; release must be
// called when done.
func (a *handlers) backend(ctx context.Context, name, kind string) (integration.Backend, func(), error) {
	ri := info(ctx)
	ri.integration, ri.kind = name, kind
	b, release, ok := a.h.cfg.Registry.Acquire(name)
	if !ok {
		return nil, nil, errNotFound(fmt.Sprintf("No integration named %q is configured.", name))
	}
	return b, release, nil
}

func ageSeconds(m gateway.Meta) int { return int(m.Age / time.Second) }

// customer answers GetCustomer and GetCustomerIn with the encoded body,
// memoized per cached answer (see answerMemo).
func (a *handlers) customer(ctx context.Context, name, email string, mode *httpapi.Mode) (*jsonAnswer, error) {
	ri := info(ctx)
	ri.email = maskEmail(email)
	var m string
	if mode != nil {
		if !mode.Valid() {
			return nil, errInvalid("The mode %q is not one of both, contacts, accounts.", *mode)
		}
		m = string(*mode)
	}
	b, release, err := a.backend(ctx, name, "customer")
	if err != nil {
		return nil, err
	}
	defer release()
	c, meta, err := b.Customer(ctx, email, m)
	if err != nil {
		return nil, plusHint(err, email)
	}
	body, err := a.h.customers.get(c, encodeCustomer)
	if err != nil {
		return nil, err
	}
	ri.cache = meta.Outcome.String()
	return ri.answer.set(body, meta), nil
}

// order answers GetOrder and GetOrderIn, as customer does; with email,
// scoped to that customer (integration.OrderFor).
func (a *handlers) order(ctx context.Context, name, ref string, email *string) (*jsonAnswer, error) {
	b, release, err := a.backend(ctx, name, "order")
	if err != nil {
		return nil, err
	}
	defer release()
	var e string
	if email != nil {
		e = *email
	}
	o, meta, err := integration.OrderFor(ctx, b, ref, e)
	if err != nil {
		return nil, plusHint(err, e)
	}
	body, err := a.h.orders.get(o, encodeOrder)
	if err != nil {
		return nil, err
	}
	ri := info(ctx)
	ri.cache = meta.Outcome.String()
	return ri.answer.set(body, meta), nil
}

// maxLimit matches the maximum of the limit parameter in openapi.yaml.
const maxLimit = 50

func (a *handlers) recentOrders(ctx context.Context, name string, typ httpapi.CustomerType, id string, limit *int) (httpapi.OrdersFoundJSONResponse, error) {
	var out httpapi.OrdersFoundJSONResponse
	if !typ.Valid() {
		return out, errInvalid("The customer type %q is not contact or account.", typ)
	}
	n := 10
	if limit != nil {
		n = *limit
	}
	if n < 1 || n > maxLimit {
		return out, errInvalid("The limit %d is not between 1 and %d.", n, maxLimit)
	}
	b, release, err := a.backend(ctx, name, "recent_orders")
	if err != nil {
		return out, err
	}
	defer release()
	list, meta, err := b.RecentOrders(ctx, string(typ), id, n)
	if err != nil {
		return out, err
	}
	info(ctx).cache = meta.Outcome.String()
	out.Body.Orders = make([]httpapi.OrderSummary, 0, len(list))
	for i := range list {
		out.Body.Orders = append(out.Body.Orders, orderSummaryOf(&list[i]))
	}
	out.Headers = httpapi.OrdersFoundResponseHeaders{Age: ageSeconds(meta), XCache: meta.Outcome.String()}
	return out, nil
}

// summary answers GetCustomerSummary and GetCustomerSummaryIn: 200 with the
// summary (fresh or stale), or 202 with Retry-After while Dataverse
// computes it (pending is then non-nil).
func (a *handlers) summary(ctx context.Context, name string, typ httpapi.CustomerType, id string) (found *httpapi.SummaryFoundJSONResponse, pending *httpapi.SummaryPendingJSONResponse, err error) {
	if !typ.Valid() {
		return nil, nil, errInvalid("The customer type %q is not contact or account.", typ)
	}
	b, release, err := a.backend(ctx, name, "summary")
	if err != nil {
		return nil, nil, err
	}
	defer release()
	s, meta, err := b.Summary(ctx, string(typ), id)
	var pe *gateway.PendingError
	if errors.As(err, &pe) {
		info(ctx).cache = "pending"
		secs := max(1, retryAfterSeconds(pe.RetryAfter))
		return nil, &httpapi.SummaryPendingJSONResponse{Body: httpapi.SummaryPending{Pending: httpapi.True, RetryAfterSeconds: secs},
			Headers: httpapi.SummaryPendingResponseHeaders{RetryAfter: secs}}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	info(ctx).cache = meta.Outcome.String()
	ct := httpapi.CustomerType(s.Customer.Type)
	out := httpapi.CustomerSummary{Customer: httpapi.Ref{Type: &ct, Id: s.Customer.ID, Name: s.Customer.Name},
		Orders:     httpapi.SummaryOrders{Count: s.Orders.Count, Open: s.Orders.Open, First: s.Orders.First, Last: s.Orders.Last},
		TotalSpent: money(s.TotalSpent), AsOf: s.AsOf, Stale: s.Stale}
	return &httpapi.SummaryFoundJSONResponse{Body: httpapi.SummaryResponse{Summary: out},
		Headers: httpapi.SummaryFoundResponseHeaders{Age: ageSeconds(meta), XCache: meta.Outcome.String()}}, nil, nil
}

func (a *handlers) refunds(ctx context.Context, name, ref string) (httpapi.RefundsFoundJSONResponse, error) {
	b, release, err := a.backend(ctx, name, "refunds")
	if err != nil {
		return httpapi.RefundsFoundJSONResponse{}, err
	}
	defer release()
	list, err := b.Refunds(ctx, ref)
	if err != nil {
		return httpapi.RefundsFoundJSONResponse{}, integration.RenameParam(err, "ref", "order")
	}
	out := httpapi.RefundsFoundJSONResponse{Refunds: make([]httpapi.Refund, 0, len(list)), Source: "none"}
	if cfg, ok := a.h.cfg.Registry.Config(name); ok && cfg.Refunds != nil {
		out.Source = cfg.Refunds.Table
	}
	for _, r := range list {
		rf := httpapi.Refund{Id: r.ID, Amount: money(r.Amount), Status: r.Status, Date: r.Date}
		if r.Reason != "" {
			reason := r.Reason
			rf.Reason = &reason
		}
		out.Refunds = append(out.Refunds, rf)
	}
	return out, nil
}

// plusHint adds to an invalid email with a space the likely cause: an
// unencoded '+' (sam+orders@example.com), which a query string decodes to
// a space.
func plusHint(err error, email string) error {
	var ie *gateway.InputError
	if !errors.As(err, &ie) || ie.Field != "email" || !strings.Contains(email, " ") {
		return err
	}
	e := *integration.ErrorOf(err, "")
	e.Message += " The address has a space where a '+' may have been: in a query string '+' means a space, so send it as %2B (email=sam%2Borders@example.com)."
	return &e
}

func (a *handlers) test(ctx context.Context, name string) (httpapi.TestPassedJSONResponse, error) {
	b, release, err := a.backend(ctx, name, "test")
	if err != nil {
		return httpapi.TestPassedJSONResponse{}, err
	}
	defer release()
	res, err := b.Test(ctx)
	if err != nil {
		return httpapi.TestPassedJSONResponse{}, err
	}
	return httpapi.TestPassedJSONResponse{Ok: true, OrganizationId: res.OrganizationID, UserId: res.UserID,
		BusinessUnitId: res.BusinessUnitID}, nil
}

func (a *handlers) Healthz(ctx context.Context, _ httpapi.HealthzRequestObject) (httpapi.HealthzResponseObject, error) {
	return httpapi.Healthz200JSONResponse{Status: "ok"}, nil
}

func (a *handlers) Readyz(ctx context.Context, _ httpapi.ReadyzRequestObject) (httpapi.ReadyzResponseObject, error) {
	out := httpapi.Readiness{Ready: true, Integrations: []httpapi.IntegrationReadiness{}}
	for _, st := range a.h.cfg.Registry.Readiness() {
		ir := httpapi.IntegrationReadiness{Name: st.Name, Ready: st.Ready}
		if st.Reason != "" {
			reason := st.Reason
			ir.Reason = &reason
		}
		if !st.ThrottledUntil.IsZero() {
			t := st.ThrottledUntil.UTC()
			ir.ThrottledUntil = &t
		}
		if exp := st.Credential.ExpiresOn.UTC(); !exp.IsZero() {
			days := st.CredentialDaysLeft
			ir.CredentialExpiresOn, ir.CredentialExpiresInDays = &exp, &days
		}
		out.Ready = out.Ready && st.Ready
		out.Integrations = append(out.Integrations, ir)
	}
	if a.h.draining.Load() {
		out.Ready = false
	}
	if a.h.cfg.APIToken != "" && !info(ctx).details {
		out.Integrations = []httpapi.IntegrationReadiness{} // ready or not, nothing more without the token
	}
	if !out.Ready {
		return httpapi.Readyz503JSONResponse(out), nil
	}
	return httpapi.Readyz200JSONResponse(out), nil
}

func (a *handlers) GetCustomer(ctx context.Context, req httpapi.GetCustomerRequestObject) (httpapi.GetCustomerResponseObject, error) {
	r, err := a.customer(ctx, integration.Default, req.Params.Email, req.Params.Mode)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (a *handlers) GetCustomerIn(ctx context.Context, req httpapi.GetCustomerInRequestObject) (httpapi.GetCustomerInResponseObject, error) {
	r, err := a.customer(ctx, req.Integration, req.Params.Email, req.Params.Mode)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (a *handlers) GetOrder(ctx context.Context, req httpapi.GetOrderRequestObject) (httpapi.GetOrderResponseObject, error) {
	r, err := a.order(ctx, integration.Default, req.Ref, req.Params.Email)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (a *handlers) GetOrderIn(ctx context.Context, req httpapi.GetOrderInRequestObject) (httpapi.GetOrderInResponseObject, error) {
	r, err := a.order(ctx, req.Integration, req.Ref, req.Params.Email)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (a *handlers) GetRecentOrders(ctx context.Context, req httpapi.GetRecentOrdersRequestObject) (httpapi.GetRecentOrdersResponseObject, error) {
	r, err := a.recentOrders(ctx, integration.Default, req.Type, req.Id.String(), req.Params.Limit)
	if err != nil {
		return nil, err
	}
	return httpapi.GetRecentOrders200JSONResponse{OrdersFoundJSONResponse: r}, nil
}

func (a *handlers) GetRecentOrdersIn(ctx context.Context, req httpapi.GetRecentOrdersInRequestObject) (httpapi.GetRecentOrdersInResponseObject, error) {
	r, err := a.recentOrders(ctx, req.Integration, req.Type, req.Id.String(), req.Params.Limit)
	if err != nil {
		return nil, err
	}
	return httpapi.GetRecentOrdersIn200JSONResponse{OrdersFoundJSONResponse: r}, nil
}

func (a *handlers) GetCustomerSummary(ctx context.Context, req httpapi.GetCustomerSummaryRequestObject) (httpapi.GetCustomerSummaryResponseObject, error) {
	found, pending, err := a.summary(ctx, integration.Default, req.Type, req.Id.String())
	switch {
	case err != nil:
		return nil, err
	case pending != nil:
		return httpapi.GetCustomerSummary202JSONResponse{SummaryPendingJSONResponse: *pending}, nil
	}
	return httpapi.GetCustomerSummary200JSONResponse{SummaryFoundJSONResponse: *found}, nil
}

func (a *handlers) GetCustomerSummaryIn(ctx context.Context, req httpapi.GetCustomerSummaryInRequestObject) (httpapi.GetCustomerSummaryInResponseObject, error) {
	found, pending, err := a.summary(ctx, req.Integration, req.Type, req.Id.String())
	switch {
	case err != nil:
		return nil, err
	case pending != nil:
		return httpapi.GetCustomerSummaryIn202JSONResponse{SummaryPendingJSONResponse: *pending}, nil
	}
	return httpapi.GetCustomerSummaryIn200JSONResponse{SummaryFoundJSONResponse: *found}, nil
}

func (a *handlers) GetRefunds(ctx context.Context, req httpapi.GetRefundsRequestObject) (httpapi.GetRefundsResponseObject, error) {
	r, err := a.refunds(ctx, integration.Default, req.Params.Order)
	if err != nil {
		return nil, err
	}
	return httpapi.GetRefunds200JSONResponse{RefundsFoundJSONResponse: r}, nil
}

func (a *handlers) GetRefundsIn(ctx context.Context, req httpapi.GetRefundsInRequestObject) (httpapi.GetRefundsInResponseObject, error) {
	r, err := a.refunds(ctx, req.Integration, req.Params.Order)
	if err != nil {
		return nil, err
	}
	return httpapi.GetRefundsIn200JSONResponse{RefundsFoundJSONResponse: r}, nil
}

func (a *handlers) TestConnection(ctx context.Context, _ httpapi.TestConnectionRequestObject) (httpapi.TestConnectionResponseObject, error) {
	r, err := a.test(ctx, integration.Default)
	if err != nil {
		return nil, err
	}
	return httpapi.TestConnection200JSONResponse{TestPassedJSONResponse: r}, nil
}

func (a *handlers) TestConnectionIn(ctx context.Context, req httpapi.TestConnectionInRequestObject) (httpapi.TestConnectionInResponseObject, error) {
	r, err := a.test(ctx, req.Integration)
	if err != nil {
		return nil, err
	}
	return httpapi.TestConnectionIn200JSONResponse{TestPassedJSONResponse: r}, nil
}
