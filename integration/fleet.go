package integration

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/dvgate/dvgate/fleet"
	"github.com/dvgate/dvgate/gateway"
)

// Environment variables of the shared level (several replicas, package
// fleet). Without a URL each replica works alone, which is the default.
const (
	EnvRedisURL    = "DVGATE_REDIS_URL"    // redis://[user:password@]host:port/db, rediss:// for TLS
	EnvRedisPrefix = "DVGATE_REDIS_PREFIX" // key prefix per deployment; default "dvgate"
	// EnvRedisKey is the deployment's secret for the shared level (at least
	// 32 bytes, e.g. openssl rand -base64 32, the same on every replica):
	// it authenticates and encrypts what replicas write to Redis.
	EnvRedisKey = "DVGATE_REDIS_KEY"
	// EnvRedisOpTimeout bounds each Redis operation of a lookup (default
	// fleet.DefaultOpTimeout, 50 ms): past it the lookup goes on without
	// Redis. Raise it for a Redis far away (another zone).
	EnvRedisOpTimeout = "DVGATE_REDIS_OP_TIMEOUT"
)

// FleetConfig is the optional Redis (or Valkey) shared by replicas: a
// second cache level, fleet-wide deduplication and throttle state. Its
// String never prints the password.
type FleetConfig struct {
	URL    string // "" = no shared level
	Prefix string
	// Key authenticates and encrypts the shared entries (see fleet.Config.Key);
	// nil = unauthenticated, which fleet.New warns about.
	Key []byte
	// OpTimeout bounds each Redis operation of a lookup; 0 =
	// fleet.DefaultOpTimeout.
	OpTimeout time.Duration
}

func (c FleetConfig) String() string {
	if c.URL == "" {
		return "no shared level"
	}
	u := c.URL
	if p, err := url.Parse(c.URL); err == nil {
		if _, ok := p.User.Password(); ok {
			p.User = url.UserPassword(p.User.Username(), "xxxxx")
		}
		u = p.String()
	}
	return fmt.Sprintf("redis %s, prefix %q, authenticated %v", u, cmp.Or(c.Prefix, fleet.DefaultPrefix), c.Key != nil)
}

// fileRedis is the config file's "redis" section:
//
//	"redis": {"url": "redis://redis.internal:6379/0", "password": {"env": "REDIS_PASSWORD"},
//	          "key": {"file": "/run/secrets/dvgate-redis-key"}, "prefix": "dvgate-prod"}
type fileRedis struct {
	URL       string     `json:"url"`
	Password  *SecretRef `json:"password"`
	Key       *SecretRef `json:"key"`
	Prefix    string     `json:"prefix"`
	OpTimeout string     `json:"opTimeout"`
}

// LoadFleet reads the shared-level configuration: the config file's
// "redis" section when there is a config file, else DVGATE_REDIS_URL and
// DVGATE_REDIS_PREFIX. It is read once at start-up.
func (s Source) LoadFleet() (FleetConfig, error) {
	if s.Path == "" {
		c := FleetConfig{URL: strings.TrimSpace(s.Getenv(EnvRedisURL)), Prefix: strings.TrimSpace(s.Getenv(EnvRedisPrefix))}
		if k := strings.TrimSpace(s.Getenv(EnvRedisKey)); k != "" && c.URL != "" {
			c.Key = []byte(k)
		}
		var err error
		if c.OpTimeout, err = parseOpTimeout(s.Getenv(EnvRedisOpTimeout), EnvRedisOpTimeout); err != nil {
			return FleetConfig{}, err
		}
		return c, nil
	}
	raw, err := s.ReadFile(s.Path)
	if err != nil {
		return FleetConfig{}, fmt.Errorf("reading config file: %w", err)
	}
	var f struct {
		Redis *fileRedis `json:"redis"`
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&f); err != nil {
		return FleetConfig{}, fmt.Errorf("config file %s: %w", s.Path, err)
	}
	if f.Redis == nil {
		return FleetConfig{}, nil
	}
	c := FleetConfig{URL: strings.TrimSpace(f.Redis.URL), Prefix: strings.TrimSpace(f.Redis.Prefix)}
	if c.OpTimeout, err = parseOpTimeout(f.Redis.OpTimeout, "redis.opTimeout"); err != nil {
		return FleetConfig{}, fmt.Errorf("config file %s: %w", s.Path, err)
	}
	if c.URL == "" {
		return FleetConfig{}, fmt.Errorf(`config file %s: redis: "url" is empty (redis://host:6379/0); remove the section to run without a shared level`, s.Path)
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return FleetConfig{}, fmt.Errorf(`config file %s: redis: "url" is not a URL (redis://host:6379/0)`, s.Path)
	}
	if _, ok := u.User.Password(); ok {
		return FleetConfig{}, fmt.Errorf(`config file %s: redis: %w`, s.Path, errInlineSecret)
	}
	pw, err := s.secret(f.Redis.Password, filepath.Dir(s.Path))
	if err != nil {
		return FleetConfig{}, fmt.Errorf("config file %s: redis: password: %w", s.Path, err)
	}
	key, err := s.secret(f.Redis.Key, filepath.Dir(s.Path))
	if err != nil {
		return FleetConfig{}, fmt.Errorf("config file %s: redis: key: %w", s.Path, err)
	}
	if key != "" {
		c.Key = []byte(key)
	}
	if pw != "" {
		name := ""
		if u.User != nil {
			name = u.User.Username()
		}
		u.User = url.UserPassword(name, pw)
		c.URL = u.String()
	}
	return c, nil
}

// parseOpTimeout reads a Redis operation timeout: "" = the default; at
// most a minute (a lookup must not wait longer for an optimisation).
func parseOpTimeout(v, name string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > time.Minute {
		return 0, fmt.Errorf("%s %q is not a duration between 1ms and 1m (e.g. \"50ms\")", name, v)
	}
	return d, nil
}

// fleetHTTPClient is the base client of a Conn when a shared level is
// configured: base's transport wrapped by the fleet's throttle gate (see
// fleet.Transport). A custom RoundTripper makes dataverse leave pooling to
// us, so the pool is tuned here as dataverse would (maxConc idle
// connections per host, HTTP/2).
func fleetHTTPClient(f *fleet.Redis, base *http.Client, maxConc int) *http.Client {
	if f == nil {
		return base
	}
	if maxConc <= 0 {
		maxConc = 52
	}
	c := &http.Client{}
	if base != nil {
		*c = *base
		c.Jar = nil
	}
	rt := c.Transport
	var t *http.Transport
	switch b := rt.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = b.Clone()
	}
	if t != nil {
		t.ForceAttemptHTTP2 = true
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, maxConc)
		if t.MaxIdleConns != 0 {
			t.MaxIdleConns = max(t.MaxIdleConns, 2*maxConc)
		}
		rt = t
	}
	c.Transport = f.Transport(rt)
	return c
}

// fleetShared and fleetThrottle return f as the gateway's interfaces, or
// nil ones (a nil *fleet.Redis in an interface would not be nil).
func fleetShared(f *fleet.Redis) gateway.SharedCache {
	if f == nil {
		return nil
	}
	return f
}

func fleetThrottle(f *fleet.Redis) gateway.Throttle {
	if f == nil {
		return nil
	}
	return f
}
