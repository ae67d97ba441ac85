package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/integration"
	"github.com/dvgate/dvgate/mcp"
)

// mcpStdio runs dvgate mcp: the MCP tools on stdin/stdout, for a desktop
// agent that starts dvgate as its tool server, configured as serve is
// (--config, the environment, --demo). It returns when the client closes
// stdin or ctx ends. Stdout carries only the protocol; the log goes to
// Stderr. Like serve, it checks the integrations once and then watches the
// configuration for changes.
func (m *Main) mcpStdio(ctx context.Context) error {
	o, err := m.integrations()
	if err != nil {
		return err
	}
	if m.reg, err = integration.Open(o); err != nil {
		return err
	}
	if err := m.reg.Check(ctx); err != nil {
		m.log.Warn("not ready yet; will retry", "error", err)
	}
	wctx, stop := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() { stop(); bg.Wait() }()
	ticks := m.PollTicks
	if ticks == nil {
		t := time.NewTicker(m.pollInterval)
		defer t.Stop()
		ticks = t.C
	}
	bg.Go(func() { m.reg.Watch(wctx, ticks, m.Reload) })

	var t sdk.Transport = &sdk.StdioTransport{}
	if m.Stdin != nil {
		t = &sdk.IOTransport{Reader: readCloser{m.Stdin}, Writer: writeCloser{m.Stdout}}
	}
	m.log.Info("serving MCP on stdio", "integrations", m.reg.Names())
	err = mcp.NewServer(m.mcpOptions()).Run(ctx, t)
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// mcpHTTP is serve's MCP endpoint (sidecar.Options.MCP).
func (m *Main) mcpHTTP(reg *integration.Registry) http.Handler {
	o := m.mcpOptions()
	o.Registry = reg
	return mcp.NewHTTPHandler(mcp.HTTPOptions{Options: o, Authenticated: strings.TrimSpace(m.Getenv(envAPIToken)) != ""})
}

func (m *Main) mcpOptions() mcp.Options {
	return mcp.Options{Registry: m.reg, Integration: integration.Default, CallTimeout: m.RequestTimeout, Clock: m.Clock,
		Logger: m.log, Version: dataverse.Version()}
}

// readCloser and writeCloser keep the SDK from closing the process's
// streams (or a test's).
type readCloser struct{ io.Reader }

func (readCloser) Close() error { return nil }

type writeCloser struct{ io.Writer }

func (writeCloser) Close() error { return nil }
