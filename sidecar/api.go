package sidecar

import (
	"context"
	"fmt"
	"time"
)

// api implements the generated StrictServerInterface. Bare /v1/... paths
// and /v1/integrations/{name}/... paths share one implementation each.
type api struct{ s *Server }

var _ StrictServerInterface = (*api)(nil)

// backend finds the named integration's current backend; release must be
// called when done.
func (a *api) backend(ctx context.Context, name, kind string) (Backend, func(), error) {
	ri := info(ctx)
	ri.integration, ri.kind = name, kind
	b, release, ok := a.s.cfg.Registry.Acquire(name)
	if !ok {
		return nil, nil, errNotFound(fmt.Sprintf("No integration named %q is configured; configured: %v.", name, a.s.cfg.Registry.Names()))
	}
	return b, release, nil
}

func ageSeconds(m Meta) int { return int(m.Age / time.Second) }

// customer answers GetCustomer and GetCustomerIn with the encoded body
// (memoized per cached answer when the backend can, see encodedBackend).
func (a *api) customer(ctx context.Context, name, email string, mode *Mode) (*jsonAnswer, error) {
	ri := info(ctx)
	ri.email = maskEmail(email)
	var m Mode
	if mode != nil {
		if !mode.Valid() {
			return nil, errInvalid("The mode %q is not one of both, contacts, accounts.", *mode)
		}
		m = *mode
	}
	b, release, err := a.backend(ctx, name, "customer")
	if err != nil {
		return nil, err
	}
	defer release()
	var (
		body []byte
		meta Meta
	)
	if eb, ok := b.(encodedBackend); ok {
		body, meta, err = eb.CustomerJSON(ctx, email, m)
	} else {
		var c Customer
		if c, meta, err = b.Customer(ctx, email, m); err == nil {
			body, err = encodeCustomer(c)
		}
	}
	if err != nil {
		return nil, err
	}
	ri.cache = meta.Outcome
	return ri.answer.set(body, meta), nil
}

// order answers GetOrder and GetOrderIn, as customer does.
func (a *api) order(ctx context.Context, name, ref string) (*jsonAnswer, error) {
	b, release, err := a.backend(ctx, name, "order")
	if err != nil {
		return nil, err
	}
	defer release()
	var (
		body []byte
		meta Meta
	)
	if eb, ok := b.(encodedBackend); ok {
		body, meta, err = eb.OrderJSON(ctx, ref)
	} else {
		var o Order
		if o, meta, err = b.Order(ctx, ref); err == nil {
			body, err = encodeOrder(o)
		}
	}
	if err != nil {
		return nil, err
	}
	ri := info(ctx)
	ri.cache = meta.Outcome
	return ri.answer.set(body, meta), nil
}

// maxLimit matches the maximum of the limit parameter in openapi.yaml.
const maxLimit = 50

func (a *api) recentOrders(ctx context.Context, name string, typ CustomerType, id string, limit *int) (OrdersFoundJSONResponse, error) {
	var out OrdersFoundJSONResponse
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
	list, meta, err := b.RecentOrders(ctx, typ, id, n)
	if err != nil {
		return out, err
	}
	info(ctx).cache = meta.Outcome
	if list == nil {
		list = []OrderSummary{}
	}
	out.Body.Orders = list
	out.Headers = OrdersFoundResponseHeaders{Age: ageSeconds(meta), XCache: meta.Outcome}
	return out, nil
}

func (a *api) refunds(ctx context.Context, name, ref string) (RefundsFoundJSONResponse, error) {
	b, release, err := a.backend(ctx, name, "refunds")
	if err != nil {
		return RefundsFoundJSONResponse{}, err
	}
	defer release()
	list, err := b.Refunds(ctx, ref)
	if err != nil {
		return RefundsFoundJSONResponse{}, err
	}
	if list == nil {
		list = []Refund{}
	}
	return RefundsFoundJSONResponse{Refunds: list}, nil
}

func (a *api) test(ctx context.Context, name string) (TestPassedJSONResponse, error) {
	b, release, err := a.backend(ctx, name, "test")
	if err != nil {
		return TestPassedJSONResponse{}, err
	}
	defer release()
	res, err := b.Test(ctx)
	if err != nil {
		return TestPassedJSONResponse{}, err
	}
	res.Ok = true
	return TestPassedJSONResponse(res), nil
}

func (a *api) Healthz(ctx context.Context, _ HealthzRequestObject) (HealthzResponseObject, error) {
	return Healthz200JSONResponse{Status: "ok"}, nil
}

func (a *api) Readyz(ctx context.Context, _ ReadyzRequestObject) (ReadyzResponseObject, error) {
	out := Readiness{Ready: true, Integrations: []IntegrationReadiness{}}
	for _, st := range a.s.cfg.Registry.Readiness() {
		ir := IntegrationReadiness{Name: st.Name, Ready: st.Ready}
		if st.Reason != "" {
			reason := st.Reason
			ir.Reason = &reason
		}
		if !st.ThrottledUntil.IsZero() {
			t := st.ThrottledUntil.UTC()
			ir.ThrottledUntil = &t
		}
		out.Ready = out.Ready && st.Ready
		out.Integrations = append(out.Integrations, ir)
	}
	if a.s.draining.Load() {
		out.Ready = false
	}
	if !out.Ready {
		return Readyz503JSONResponse(out), nil
	}
	return Readyz200JSONResponse(out), nil
}

func (a *api) GetCustomer(ctx context.Context, req GetCustomerRequestObject) (GetCustomerResponseObject, error) {
	r, err := a.customer(ctx, DefaultIntegration, req.Params.Email, req.Params.Mode)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (a *api) GetCustomerIn(ctx context.Context, req GetCustomerInRequestObject) (GetCustomerInResponseObject, error) {
	r, err := a.customer(ctx, req.Integration, req.Params.Email, req.Params.Mode)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (a *api) GetOrder(ctx context.Context, req GetOrderRequestObject) (GetOrderResponseObject, error) {
	r, err := a.order(ctx, DefaultIntegration, req.Ref)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (a *api) GetOrderIn(ctx context.Context, req GetOrderInRequestObject) (GetOrderInResponseObject, error) {
	r, err := a.order(ctx, req.Integration, req.Ref)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (a *api) GetRecentOrders(ctx context.Context, req GetRecentOrdersRequestObject) (GetRecentOrdersResponseObject, error) {
	r, err := a.recentOrders(ctx, DefaultIntegration, req.Type, req.Id.String(), req.Params.Limit)
	if err != nil {
		return nil, err
	}
	return GetRecentOrders200JSONResponse{r}, nil
}

func (a *api) GetRecentOrdersIn(ctx context.Context, req GetRecentOrdersInRequestObject) (GetRecentOrdersInResponseObject, error) {
	r, err := a.recentOrders(ctx, req.Integration, req.Type, req.Id.String(), req.Params.Limit)
	if err != nil {
		return nil, err
	}
	return GetRecentOrdersIn200JSONResponse{r}, nil
}

func (a *api) GetRefunds(ctx context.Context, req GetRefundsRequestObject) (GetRefundsResponseObject, error) {
	r, err := a.refunds(ctx, DefaultIntegration, req.Params.Order)
	if err != nil {
		return nil, err
	}
	return GetRefunds200JSONResponse{r}, nil
}

func (a *api) GetRefundsIn(ctx context.Context, req GetRefundsInRequestObject) (GetRefundsInResponseObject, error) {
	r, err := a.refunds(ctx, req.Integration, req.Params.Order)
	if err != nil {
		return nil, err
	}
	return GetRefundsIn200JSONResponse{r}, nil
}

func (a *api) TestConnection(ctx context.Context, _ TestConnectionRequestObject) (TestConnectionResponseObject, error) {
	r, err := a.test(ctx, DefaultIntegration)
	if err != nil {
		return nil, err
	}
	return TestConnection200JSONResponse{r}, nil
}

func (a *api) TestConnectionIn(ctx context.Context, req TestConnectionInRequestObject) (TestConnectionInResponseObject, error) {
	r, err := a.test(ctx, req.Integration)
	if err != nil {
		return nil, err
	}
	return TestConnectionIn200JSONResponse{r}, nil
}
