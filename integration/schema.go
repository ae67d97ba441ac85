package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/gateway"
)

// SchemaMaxAge is how long an integration uses the org's schema before it
// reads it again (in the background; a failure keeps the last good one).
const SchemaMaxAge = 6 * time.Hour

// needsSchema reports whether c configures columns that only the org's
// own schema can check and type (a tracking column, custom fields, a
// refunds table). Other
// integrations use the schema compiled into package generated and never
// download $metadata.
func (c Config) needsSchema() bool {
	return c.TrackingColumn != "" || len(c.OrderFields) > 0 || len(c.CustomerFields) > 0 || c.Refunds != nil
}

// readSchema downloads the org's $metadata and keeps the tables the
// gateway reads: streamed through csdl.Read, so a 40 MB document is never
// held whole (csdl's BenchmarkRead measures it).
func readSchema(ctx context.Context, conn *dataverse.Conn, cfg Config) (*csdl.Model, error) {
	tables := gateway.SchemaTables
	if r := cfg.Refunds; r != nil {
		tables = append(slices.Clip(tables), r.Table)
	}
	m, err := readTables(ctx, conn, tables)
	if err != nil && cfg.Refunds != nil && strings.Contains(err.Error(), "unknown table") {
		// The tables dvgate reads are in every Sales org; the refunds table
		// is the one a configuration can get wrong. Read the others, so that
		// the remedy names every wrong setting (gateway.New reports them).
		return readTables(ctx, conn, gateway.SchemaTables)
	}
	return m, err
}

func readTables(ctx context.Context, conn *dataverse.Conn, tables []string) (*csdl.Model, error) {
	resp, err := conn.Stream(ctx, "$metadata")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m, err := csdl.Read(resp.Body, csdl.Tables(tables...))
	if err != nil {
		return nil, fmt.Errorf("reading the org's $metadata: %w", err)
	}
	return m, nil
}

// gateway returns the backend's gateway, reading the org's schema first
// when the configuration needs it and it has not been read yet (one read
// at a time; concurrent callers wait for it), and refreshing it in the
// background once it is older than SchemaMaxAge.
func (b *gatewayBackend) gateway(ctx context.Context) (*gateway.Gateway, error) {
	if gw := b.gw.Load(); gw != nil {
		if b.cfg.needsSchema() && b.now().Sub(time.Unix(0, b.schemaRead.Load())) > SchemaMaxAge && b.refreshing.CompareAndSwap(false, true) {
			b.bg.Go(func() {
				defer b.refreshing.Store(false)
				ctx, cancel := context.WithTimeout(b.life, 2*time.Minute)
				defer cancel()
				if err := b.loadSchema(ctx, true); err != nil {
					// Try again in schemaRefreshRetry, not at the next lookup.
					b.schemaRead.Store(b.now().Add(schemaRefreshRetry - SchemaMaxAge).UnixNano())
					b.log.Warn("re-reading the org's schema failed; the last one read keeps serving", "error", err)
				}
			})
		}
		return gw, nil
	}
	if err := b.loadSchema(ctx, false); err != nil {
		return nil, err
	}
	return b.gw.Load(), nil
}

// loadSchema reads the schema and builds the gateway on it. Unless force,
// it does nothing when a gateway exists (another caller built it).
func (b *gatewayBackend) loadSchema(ctx context.Context, force bool) error {
	b.schemaMu.Lock()
	defer b.schemaMu.Unlock()
	if !force && b.gw.Load() != nil {
		return nil
	}
	// A lookup must not download $metadata again after every failure: a
	// wrong column waits for a Test (force) or a new configuration, other
	// failures for schemaRetry.
	if e := b.schemaErr; !force && e != nil && (e.Code == CodeConfig || b.now().Sub(b.schemaFailed) < schemaRetry) {
		return e
	}
	start := b.now()
	gw, err := b.buildFromSchema(ctx)
	if err != nil {
		b.schemaErr, b.schemaFailed = ErrorOf(err, ""), start
		return b.schemaErr
	}
	b.schemaErr = nil
	if old := b.gw.Swap(gw); old != nil {
		b.retired = append(b.retired, old) // closed with the backend: requests may still use it
	}
	b.schemaRead.Store(start.UnixNano())
	b.log.Info("read the org's schema", "durationMs", b.now().Sub(start).Milliseconds())
	return nil
}

// schemaRefreshRetry is how long after a failed background re-read of the
// schema the next one is tried.
const schemaRefreshRetry = 10 * time.Minute

// schemaRetry is how long lookups answer the last failure to read the
// schema before one of them tries again.
const schemaRetry = 10 * time.Second

func (b *gatewayBackend) buildFromSchema(ctx context.Context) (*gateway.Gateway, error) {
	m, err := readSchema(ctx, b.conn, b.cfg)
	if err != nil {
		return nil, err
	}
	return b.newGateway(m)
}

// newGateway builds the gateway over the backend's connection and cache;
// m is the org's schema (nil when the configuration needs none). A column
// that does not fit the schema is a config error whose message names it.
func (b *gatewayBackend) newGateway(m *csdl.Model) (*gateway.Gateway, error) {
	gc, cfg := b.gc, b.cfg
	gw, err := gateway.New(gateway.Config{
		Name: cfg.Name, Conn: b.conn, Mode: cfg.Mode, Model: m, TrackingColumn: cfg.TrackingColumn,
		OrderFields: cfg.OrderFields, CustomerFields: cfg.CustomerFields, OrderNumberPrefix: cfg.OrderNumberPrefix, Budget: cfg.Budget, Refunds: cfg.Refunds,
		Cache: b.cache.c, Clock: gc.Clock,
		CustomerTTL: cfg.Tuning.CustomerTTL, OrderTTL: cfg.Tuning.OrderTTL, NotFoundTTL: cfg.Tuning.NotFoundTTL,
		StaleTTL: cfg.Tuning.StaleTTL, UpstreamTimeout: cmp.Or(cfg.Tuning.UpstreamTimeout, gc.UpstreamTimeout), Logger: gc.logger(), Metrics: gc.Metrics,
		Shared: fleetShared(gc.Fleet), Throttle: fleetThrottle(gc.Fleet),
		Summary: gateway.SummaryConfig{States: cfg.SummaryStates, IncludeContacts: cfg.SummaryIncludesContacts},
	})
	var ce *gateway.ColumnError
	if errors.As(err, &ce) {
		return nil, &Error{Code: CodeConfig, Message: columnRemedy(err), Err: err}
	}
	if err == nil {
		if err = b.follow(gw); err != nil {
			gw.Close()
			return nil, err
		}
	}
	return gw, err
}

// columnRemedy says every wrong setting of err (one *gateway.ColumnError,
// or several joined), one sentence each.
func columnRemedy(err error) string {
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, sentence(line))
		}
	}
	return strings.Join(parts, " ")
}
