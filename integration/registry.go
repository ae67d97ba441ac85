package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds the named integrations and swaps their backends when the
// configuration changes. Lookups go through Acquire; Reload re-reads the
// Source, and an integration whose configuration changed is validated
// (WhoAmI) on a new backend before it replaces the old one. All methods are
// safe for concurrent use; reloads are serialized.
type Registry struct {
	source    Source
	connector Connector
	log       *slog.Logger
	now       func() time.Time
	metrics   *Metrics
	// ValidateTimeout bounds a WhoAmI check of new credentials.
	validateTimeout time.Duration

	integrations atomic.Pointer[map[string]*integration]

	// rejected remembers configurations that failed validation, so that a
	// poll does not sign in with the same wrong secret every few seconds.
	// Guarded by reloadMu.
	rejected map[string]rejection
	// warned is each integration's last credential expiry warning.
	// Guarded by reloadMu.
	warned map[string]warned

	reloadMu sync.Mutex     // serializes Reload, Check and Close
	closing  sync.WaitGroup // backends being closed after their last request
	closed   bool
	onClose  []func() // after the last backend closed (the shared level, see Open)
}

type rejection struct {
	fp string
	at time.Time
}

// RetryRejectedAfter is how long a poll waits before validating a rejected
// configuration again (a new secret can take a while to propagate in
// Entra). Reload (SIGHUP) always retries.
const RetryRejectedAfter = time.Minute

// integration is one named integration and its current backend.
type integration struct {
	name string
	cur  atomic.Pointer[lease]

	// Guarded by Registry.reloadMu (written), read atomically by /readyz.
	status atomic.Pointer[integrationStatus]
}

type integrationStatus struct {
	ready  bool
	reason string
	// broken: the integration cannot start (its Config.Err, or Connect
	// failed); its backend answers config errors until a reload fixes it.
	broken bool
	// recheckAt, when set, is when Check validates a broken integration
	// again: one the org refused (a column it lacks) may be fixed in the
	// org rather than in dvgate's configuration.
	recheckAt time.Time
}

// RecheckRefusedAfter is how long Check waits before validating again an
// integration whose org refused its configuration (a column it lacks).
const RecheckRefusedAfter = 10 * time.Minute

// lease counts the requests using one backend, so that a replaced backend
// is closed only after the last of them finished.
type lease struct {
	cfg  Config
	fp   string
	b    Backend
	cred Credential // b's, asked once

	mu      sync.Mutex
	refs    int
	retired bool
	onIdle  func() // called once, when retired and unused
	// releaseFn is release as a func value, made once per lease so that
	// Acquire does not allocate a method value per request.
	releaseFn func()
}

func (l *lease) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retired {
		return false
	}
	l.refs++
	return true
}

func (l *lease) release() {
	l.mu.Lock()
	l.refs--
	idle := l.retired && l.refs == 0
	l.mu.Unlock()
	if idle {
		l.onIdle()
	}
}

func (l *lease) retire() {
	l.mu.Lock()
	l.retired = true
	idle := l.refs == 0
	l.mu.Unlock()
	if idle {
		l.onIdle()
	}
}

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	Source    Source
	Connector Connector
	Logger    *slog.Logger     // nil = discard
	Clock     func() time.Time // nil = time.Now
	Metrics   *Metrics         // nil = none
	// ValidateTimeout bounds each WhoAmI check; default 30s.
	ValidateTimeout time.Duration
}

// NewRegistry loads the configuration and connects every integration. An
// integration that cannot start (a missing secret, an invalid value, a
// column the org lacks) does not keep the others from serving: it is
// registered as broken, answers every request with a config error carrying
// the remedy, and /readyz names it. NewRegistry fails when the
// configuration cannot be read at all, or when no integration can start
// (ErrNoneUsable, with every reason). It does not sign in: call Check (or
// let Watch do it) to make the integrations ready.
func NewRegistry(cfg RegistryConfig) (*Registry, error) {
	r := &Registry{rejected: map[string]rejection{}, warned: map[string]warned{}, source: cfg.Source, connector: cfg.Connector, log: cfg.Logger, now: cfg.Clock,
		metrics: cfg.Metrics, validateTimeout: cfg.ValidateTimeout}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.validateTimeout <= 0 {
		r.validateTimeout = 30 * time.Second
	}
	cfgs, err := r.source.Load()
	if err != nil {
		return nil, err
	}
	m := make(map[string]*integration, len(cfgs))
	var brokenErrs []error
	for _, c := range cfgs {
		in := &integration{name: c.Name}
		l, st := r.connect(c, nil)
		if st.broken {
			brokenErrs = append(brokenErrs, fmt.Errorf("integration %q: %s", c.Name, st.reason))
		}
		in.cur.Store(l)
		in.status.Store(st)
		m[c.Name] = in
		r.logCredential(c.Name, l.cred)
	}
	if len(brokenErrs) == len(cfgs) {
		r.closeAll(m)
		return nil, fmt.Errorf("%w: %w", ErrNoneUsable, errors.Join(brokenErrs...))
	}
	r.integrations.Store(&m)
	r.metrics.setIntegrations(slices.Collect(maps.Keys(m)), nil)
	r.metrics.setReady(r)
	return r, nil
}

// ErrNoneUsable is returned by NewRegistry when every configured
// integration is broken.
var ErrNoneUsable = errors.New("no integration can start")

// connect builds c's backend, or a broken one (with the reason) when c has
// an error or Connect fails. The status is "not checked yet" for a good
// one.
func (r *Registry) connect(c Config, prev Backend) (*lease, *integrationStatus) {
	for _, w := range c.Warnings {
		r.log.Warn("integration configuration", "integration", c.Name, "warning", w)
	}
	cause := c.Err
	if cause == nil {
		b, err := r.connector.Connect(c, prev)
		if err == nil {
			return r.newLease(c, b), &integrationStatus{reason: "not checked yet"}
		}
		cause = fmt.Errorf("integration %q: %w", c.Name, err)
	}
	bb := newBroken(cause)
	r.log.Error("integration cannot start; the others serve", "integration", c.Name, "error", cause)
	return r.newLease(c, bb), &integrationStatus{reason: bb.err.Message, broken: true}
}

func (r *Registry) newLease(c Config, b Backend) *lease {
	l := &lease{cfg: c, fp: c.Fingerprint(), b: b, cred: credentialOf(b)}
	l.releaseFn = l.release
	r.closing.Add(1)
	l.onIdle = sync.OnceFunc(func() {
		defer r.closing.Done()
		b.Close()
	})
	return l
}

// Names returns the integration names, sorted.
func (r *Registry) Names() []string {
	return slices.Sorted(maps.Keys(*r.integrations.Load()))
}

// Acquire returns the current backend of the named integration and a
// release function the caller must call when done with it. ok is false for
// an unknown integration.
func (r *Registry) Acquire(name string) (b Backend, release func(), ok bool) {
	in := (*r.integrations.Load())[name]
	if in == nil {
		return nil, nil, false
	}
	for {
		// A retired lease has already been replaced by Store, so loading
		// again finds the new one.
		l := in.cur.Load()
		if l.acquire() {
			return l.b, l.releaseFn, true
		}
	}
}

// Config returns the named integration's current configuration.
func (r *Registry) Config(name string) (Config, bool) {
	in := (*r.integrations.Load())[name]
	if in == nil {
		return Config{}, false
	}
	return in.cur.Load().cfg, true
}

// IntegrationState is one integration's readiness.
type IntegrationState struct {
	Name           string
	Ready          bool
	Reason         string // why not ready: the remedy when Broken
	Broken         bool   // the integration cannot start (configuration)
	ThrottledUntil time.Time
	// Credential is the current backend's credential and its expiry; a
	// rotation replaces it.
	Credential Credential
	// CredentialDaysLeft is Credential.DaysLeft on the registry's clock,
	// when Readiness was called; 0 when ExpiresOn is not known.
	CredentialDaysLeft int
}

// Readiness reports, for every integration, whether a token was obtained
// and WhoAmI succeeded, and whether service protection locks it out now.
func (r *Registry) Readiness() []IntegrationState {
	m := *r.integrations.Load()
	now := r.now()
	out := make([]IntegrationState, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		in := m[name]
		st := in.status.Load()
		s := IntegrationState{Name: name, Ready: st.ready, Reason: st.reason, Broken: st.broken, Credential: in.cur.Load().cred}
		s.CredentialDaysLeft, _ = s.Credential.DaysLeft(now)
		b, release, ok := r.Acquire(name)
		if ok {
			if until := b.ThrottledUntil(); until.After(now) {
				s.ThrottledUntil = until
				if s.Ready {
					s.Ready = false
					s.Reason = fmt.Sprintf("Dataverse service protection: throttled for %s", until.Sub(now).Round(time.Second))
				}
			}
			release()
		}
		out = append(out, s)
	}
	return out
}

// Credential reports the named integration's current credential and its
// expiry (see Credential.Describe); ok is false for an unknown
// integration.
func (r *Registry) Credential(name string) (c Credential, ok bool) {
	in := (*r.integrations.Load())[name]
	if in == nil {
		return Credential{}, false
	}
	return in.cur.Load().cred, true
}

// Check signs in and calls WhoAmI for every integration not yet known to
// work, recording readiness. It returns the first failure.
func (r *Registry) Check(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	var errs []error
	for _, in := range *r.integrations.Load() {
		if st := in.status.Load(); st.ready || st.broken && (st.recheckAt.IsZero() || r.now().Before(st.recheckAt)) {
			continue
		}
		l := in.cur.Load()
		if err := r.validate(ctx, l.b); err != nil {
			// A configuration the org refuses (a column it lacks) does not
			// work by trying again at every poll: it waits for a new
			// configuration, or RecheckRefusedAfter (the admin may add the
			// column to the org instead).
			e := ErrorOf(err, "")
			st := &integrationStatus{reason: e.Message}
			if e.Code == CodeConfig {
				st.broken, st.recheckAt = true, r.now().Add(RecheckRefusedAfter)
			}
			in.status.Store(st)
			r.log.Warn("integration not ready", "integration", in.name, "error", err)
			errs = append(errs, fmt.Errorf("integration %q: %w", in.name, err))
			continue
		}
		in.status.Store(&integrationStatus{ready: true})
		r.log.Info("integration ready", "integration", in.name)
	}
	r.metrics.setReady(r)
	return errors.Join(errs...)
}

func (r *Registry) validate(ctx context.Context, b Backend) error {
	ctx, cancel := context.WithTimeout(ctx, r.validateTimeout)
	defer cancel()
	_, err := b.Test(ctx)
	return err
}

// Reload re-reads the configuration (as on SIGHUP). For every integration whose
// configuration changed, a new backend is built and validated with WhoAmI;
// it replaces the old one only if that succeeds, otherwise the old one keeps
// serving and the error says why. New integrations are added (after
// validation), removed ones are retired. Requests running on a replaced
// backend finish on it.
func (r *Registry) Reload(ctx context.Context) error { return r.reload(ctx, true) }

// Poll is Reload for a periodic check: a configuration that was rejected
// less than RetryRejectedAfter ago is not validated again.
func (r *Registry) Poll(ctx context.Context) error { return r.reload(ctx, false) }

func (r *Registry) reload(ctx context.Context, force bool) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if r.closed {
		return errors.New("registry closed")
	}
	cfgs, err := r.source.Load()
	if err != nil {
		r.metrics.reload("error")
		r.log.Error("configuration reload failed; the current configuration keeps serving", "error", err)
		return err
	}
	old := *r.integrations.Load()
	next := make(map[string]*integration, len(cfgs))
	var errs []error
	changed := false
	for _, c := range cfgs {
		in := old[c.Name]
		fp := c.Fingerprint()
		var cur *lease
		if in != nil {
			cur = in.cur.Load()
			if cur.fp == fp {
				next[c.Name] = in
				continue
			}
		}
		wasBroken := in != nil && in.status.Load().broken
		if c.Err != nil && in != nil && !wasBroken {
			// A working integration whose new configuration is broken
			// keeps serving with the old one.
			r.metrics.rotation(c.Name, "rejected")
			r.log.Error("new configuration rejected; the old one keeps serving", "integration", c.Name, "error", c.Err)
			errs = append(errs, c.Err)
			next[c.Name] = in
			continue
		}
		if rj, ok := r.rejected[c.Name]; ok && rj.fp == fp && !force && r.now().Sub(rj.at) < RetryRejectedAfter {
			if in != nil {
				next[c.Name] = in
			}
			errs = append(errs, fmt.Errorf("integration %q: configuration rejected %s ago; not retried yet", c.Name, r.now().Sub(rj.at).Round(time.Second)))
			continue
		}
		var prev Backend
		if cur != nil {
			prev = cur.b
		}
		l, st := r.connect(c, prev)
		if !st.broken {
			if err := r.validate(ctx, l.b); err != nil {
				if in != nil && !wasBroken {
					l.retire()
					r.rejected[c.Name] = rejection{fp: fp, at: r.now()}
					r.metrics.rotation(c.Name, "rejected")
					r.log.Error("new configuration rejected; the old credentials keep serving", "integration", c.Name, "error", err)
					errs = append(errs, fmt.Errorf("integration %q: %w", c.Name, err))
					next[c.Name] = in
					continue
				}
				// Nothing to keep: serve the new one, not ready until
				// Check succeeds.
				e := ErrorOf(err, "")
				st = &integrationStatus{reason: e.Message}
				if e.Code == CodeConfig {
					st.broken, st.recheckAt = true, r.now().Add(RecheckRefusedAfter)
				}
				errs = append(errs, fmt.Errorf("integration %q: %w", c.Name, err))
			} else {
				st = &integrationStatus{ready: true}
			}
		} else {
			errs = append(errs, fmt.Errorf("integration %q: %s", c.Name, st.reason))
		}
		delete(r.rejected, c.Name)
		changed = true
		if in == nil {
			in = &integration{name: c.Name}
			in.cur.Store(l)
			in.status.Store(st)
			next[c.Name] = in
			r.log.Info("integration added", "integration", c.Name, "ready", st.ready)
			r.logCredential(c.Name, l.cred)
			continue
		}
		in.cur.Store(l)
		in.status.Store(st)
		cur.retire()
		next[c.Name] = in
		r.metrics.rotation(c.Name, "applied")
		r.log.Info("new configuration applied", "integration", c.Name, "keptCache", c.SameData(cur.cfg), "ready", st.ready)
		r.logCredential(c.Name, l.cred)
	}
	var removed []string
	for name, in := range old {
		if _, ok := next[name]; !ok {
			removed = append(removed, name)
			changed = true
			defer in.cur.Load().retire() // after the map no longer lists it
			r.log.Info("integration removed", "integration", name)
		}
	}
	if changed {
		r.integrations.Store(&next)
		r.metrics.setIntegrations(slices.Collect(maps.Keys(next)), removed)
	}
	r.metrics.setReady(r)
	switch {
	case len(errs) > 0:
		r.metrics.reload("rejected")
		return errors.Join(errs...)
	case changed:
		r.metrics.reload("applied")
	}
	return nil
}

// Watch reloads on every tick and every value from hup (SIGHUP), checks
// integrations that are not ready yet, and warns (once a day, on the
// registry's clock) about credentials that expire within WarnBefore, until
// ctx is done. Errors are logged.
func (r *Registry) Watch(ctx context.Context, ticks <-chan time.Time, hup <-chan struct{}) {
	r.warnExpiring()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			_ = r.Poll(ctx)
		case <-hup:
			r.log.Info("reloading configuration (SIGHUP)")
			_ = r.Reload(ctx)
		}
		_ = r.Check(ctx)
		r.warnExpiring()
	}
}

// Close retires every backend and waits until the last request using one
// has finished and it is closed.
func (r *Registry) Close() {
	r.reloadMu.Lock()
	if r.closed {
		r.reloadMu.Unlock()
		return
	}
	r.closed = true
	r.closeAll(*r.integrations.Load())
	r.reloadMu.Unlock()
	r.closing.Wait()
	for _, f := range r.onClose {
		f()
	}
}

func (r *Registry) closeAll(m map[string]*integration) {
	for _, in := range m {
		in.cur.Load().retire()
	}
}
