package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/gateway"
)

// Default is the integration that front ends use when none is named (bare
// /v1/... paths of the HTTP API, tools called without "integration").
const Default = "default"

// Environment variables of an integration configured from the environment
// (besides dataverse.ConfigFromEnv's).
const (
	EnvCustomerLookup = "DVGATE_CUSTOMER_LOOKUP" // both|contacts|accounts
	EnvTrackingColumn = "DVGATE_TRACKING_COLUMN" // salesorder column with the tracking number
	EnvOrderFields    = "DVGATE_ORDER_FIELDS"    // salesorder columns returned under "fields", comma-separated
	EnvCustomerFields = "DVGATE_CUSTOMER_FIELDS" // contact or account columns returned under "fields"
	EnvOrderPrefix    = "DVGATE_ORDER_NUMBER_PREFIX"
	// EnvRefunds is the refunds block in one value:
	// table:orderLookup:amount:status:date[:reason], e.g.
	// contoso_refund:contoso_salesorderid:contoso_amount:statuscode:createdon:contoso_reason.
	EnvRefunds = "DVGATE_REFUNDS"
	// EnvBudgetRate and EnvBudgetBurst set the request budget per org
	// (gateway.Budget): Dataverse requests per second (-1 = no budget) and
	// the burst.
	EnvBudgetRate  = "DVGATE_BUDGET_RATE"
	EnvBudgetBurst = "DVGATE_BUDGET_BURST"
	// EnvClientSecretExpiresOn is the client secret's expiry date as the
	// app registration's "Certificates & secrets" page shows it
	// (2027-06-30, or RFC 3339), so that dvgate warns before it (Entra does
	// not reveal it to the app).
	EnvClientSecretExpiresOn = "AZURE_CLIENT_SECRET_EXPIRES_ON"
	// EnvSummaryStates lists the salesorder states a customer summary
	// counts ("0,1,3,4"); EnvSummaryIncludesContacts ("true") adds an
	// account's contacts' orders to its summary.
	EnvSummaryStates           = "DVGATE_SUMMARY_STATES"
	EnvSummaryIncludesContacts = "DVGATE_SUMMARY_INCLUDES_CONTACTS"

	// The cache and timeout knobs (Tuning), as Go durations (90s, 5m, 1h).
	EnvCustomerTTL     = "DVGATE_CUSTOMER_TTL"
	EnvOrderTTL        = "DVGATE_ORDER_TTL"
	EnvNotFoundTTL     = "DVGATE_NOT_FOUND_TTL"
	EnvStaleTTL        = "DVGATE_STALE_TTL"
	EnvUpstreamTimeout = "DVGATE_UPSTREAM_TIMEOUT"
	// EnvCacheBytes is the budget of the cache shared by all integrations
	// (Source.LoadCacheBytes): bytes, or with a KiB, MiB or GiB suffix.
	EnvCacheBytes = "DVGATE_CACHE_BYTES"
)

// Knob is one of the gateway's operating settings, as the environment and
// the config file name it. Knobs lists them all: the README's table of
// knobs is checked against it (TestKnobsREADME), and every entry is checked
// to be read from both places (TestKnobsRead).
type Knob struct {
	Env string // environment variable
	// File is the key in the config file: in each integration's object,
	// or at the top level where Global says so.
	File    string
	Global  bool   // File is a top-level key (one value for the process)
	Default string // as the README states it
}

// Knobs are the gateway's operating settings. The defaults are gateway's
// (gateway.Config, gateway.DefaultMaxBytes, gateway.DefaultBudgetRate and
// gateway.DefaultBudgetBurst).
var Knobs = []Knob{
	{Env: EnvCustomerTTL, File: "customerTTL", Default: "5m"},
	{Env: EnvOrderTTL, File: "orderTTL", Default: "1m"},
	{Env: EnvNotFoundTTL, File: "notFoundTTL", Default: "as found answers"},
	{Env: EnvStaleTTL, File: "staleTTL", Default: "1h"},
	{Env: EnvUpstreamTimeout, File: "upstreamTimeout", Default: "30s"},
	{Env: EnvBudgetRate, File: "budget.rate", Default: "10"},
	{Env: EnvBudgetBurst, File: "budget.burst", Default: "40"},
	{Env: EnvCacheBytes, File: "cacheBytes", Global: true, Default: "64MiB"},
	{File: "cacheBytes", Default: "0 (the shared cache)"},
}

// Tuning is an integration's cache and timeout settings; zero values take
// gateway's defaults (see Knobs).
type Tuning struct {
	// Freshness of customers and of orders (recent orders and refunds
	// too), of "not found" answers, and how long past freshness an answer
	// may be served when Dataverse fails.
	CustomerTTL, OrderTTL, NotFoundTTL, StaleTTL time.Duration
	// UpstreamTimeout bounds each shared Dataverse call.
	UpstreamTimeout time.Duration
	// CacheBytes, when positive, gives the integration a cache of its own
	// with this budget; 0 = the cache shared by all integrations.
	CacheBytes int64
}

// Config is one integration (one Dataverse org), resolved: secrets
// referenced by the config file have been read. Its String never prints
// secrets.
type Config struct {
	Name           string
	Dataverse      dataverse.Config
	Mode           gateway.Mode // default customer lookup mode
	TrackingColumn string       // optional salesorder column for trackingNumber
	// OrderFields and CustomerFields are columns of the org returned under
	// "fields", typed by the org's schema (read at run time).
	OrderFields, CustomerFields []string
	// OrderNumberPrefix lets people type an order number without it
	// ("01001-B2K9P7" for "ORD-01001-B2K9P7").
	OrderNumberPrefix string
	// Refunds names the org's own refunds table and its columns; nil =
	// none, and refund lookups answer an empty list.
	Refunds *gateway.RefundsConfig
	// Budget limits the Dataverse requests dvgate sends to the org, so it
	// never trips the org's service protection itself; zero = gateway's
	// defaults.
	Budget gateway.Budget
	// SummaryStates are the salesorder states whose orders a customer
	// summary counts (total spent, count, first and last); empty =
	// gateway.DefaultSummaryStates, every state but 2 Canceled.
	SummaryStates []int
	// SummaryIncludesContacts adds the orders of an account's contacts to
	// the account's summary.
	SummaryIncludesContacts bool

	// Warnings are what is risky but works (a secret file every user may
	// read); logged when the integration is connected.
	Warnings []string
	// ChangeFeed, when its Interval is set, keeps answers for hours and
	// makes them stale from Dataverse's change feed (see feed.go).
	ChangeFeed ChangeFeed
	// Tuning holds the cache and timeout knobs.
	Tuning Tuning

	// Err is why this integration cannot start (a missing secret, an
	// invalid value), with the remedy; the other fields are what could be
	// read. A broken integration answers every request with a config error
	// carrying Err's text, while the others serve (see Registry).
	Err error

	// certHash is the hash of the certificate file's content, so a
	// certificate renewed in place counts as a change.
	certHash string
}

func (c Config) String() string {
	return fmt.Sprintf("integration %q (%s, mode %s)", c.Name, c.Dataverse.String(), c.Mode)
}

// Fingerprint identifies everything that requires a new connection when it
// changes, secrets included (hashed). Two configurations with equal
// fingerprints are interchangeable.
func (c Config) Fingerprint() string {
	d := c.Dataverse
	h := sha256.New()
	for _, s := range []string{c.Name, d.URL, d.TenantID, d.ClientID, d.ClientSecret, d.CertificatePath,
		d.CertificatePassword, c.certHash, d.ClientSecretExpiresOn.UTC().Format(time.RFC3339), d.FederatedTokenFile, d.ManagedIdentity, d.IMDSHost, d.AuthorityHost, c.Mode.String(), c.TrackingColumn, errText(c.Err),
		strings.Join(c.OrderFields, ","), strings.Join(c.CustomerFields, ","), c.OrderNumberPrefix,
		fmt.Sprint(c.Budget.Rate, "/", c.Budget.Burst), fmt.Sprint(c.Refunds), fmt.Sprint(c.SummaryStates, c.SummaryIncludesContacts),
		fmt.Sprint(c.Tuning), fmt.Sprint(d.MaxConcurrent), fmt.Sprint(d.MaxAttempts), fmt.Sprint(c.ChangeFeed)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SameData reports whether c and o read the same data the same way, so a
// cache filled through one is valid for the other (only credentials differ).
func (c Config) SameData(o Config) bool {
	return c.Name == o.Name && strings.EqualFold(strings.TrimRight(c.Dataverse.URL, "/"), strings.TrimRight(o.Dataverse.URL, "/")) &&
		c.Mode == o.Mode && c.TrackingColumn == o.TrackingColumn && slices.Equal(c.OrderFields, o.OrderFields) &&
		slices.Equal(c.CustomerFields, o.CustomerFields) && c.OrderNumberPrefix == o.OrderNumberPrefix &&
		fmt.Sprint(c.Refunds) == fmt.Sprint(o.Refunds) && c.ChangeFeed == o.ChangeFeed
}

// Source says where the integrations' configuration comes from: a config
// file (Path) or, when Path is "", the environment. Load is called at
// start-up and again on every reload.
type Source struct {
	Path     string                       // JSON config file; "" = environment
	Getenv   func(string) string          // environment lookup (os.Getenv)
	ReadFile func(string) ([]byte, error) // file reader (os.ReadFile)
	// Stat, when set (os.Stat), lets Load check that secret files are not
	// readable or writable by other users (Config.Warnings).
	Stat func(string) (fs.FileInfo, error)
}

// configFile is the config file format.
//
//	{"integrations": {"default": {"url": "https://contoso.crm4.dynamics.com",
//	   "tenantId": "…", "clientId": "…", "clientSecret": {"file": "/run/secrets/dataverse"},
//	   "customerLookup": "both", "trackingColumn": "new_trackingnumber"}}}
type configFile struct {
	Integrations map[string]fileIntegration `json:"integrations"`
	// CacheBytes is the budget of the cache shared by the integrations
	// (LoadCacheBytes).
	CacheBytes json.RawMessage `json:"cacheBytes,omitempty"`
	// Redis is the optional shared level of several replicas (LoadFleet).
	Redis *fileRedis `json:"redis,omitempty"`
}

type fileIntegration struct {
	URL          string     `json:"url"`
	TenantID     string     `json:"tenantId"`
	ClientID     string     `json:"clientId"`
	ClientSecret *SecretRef `json:"clientSecret"`
	// ClientSecretExpiresOn is the secret's expiry date (2027-06-30 or
	// RFC 3339), as the app registration shows it.
	ClientSecretExpiresOn string     `json:"clientSecretExpiresOn"`
	CertificatePath       string     `json:"certificatePath"`
	CertificatePassword   *SecretRef `json:"certificatePassword"`
	FederatedTokenFile    string     `json:"federatedTokenFile"`
	// ManagedIdentity is "system", or a user-assigned identity's client
	// ID or resource ID (dataverse.Config.ManagedIdentity).
	ManagedIdentity   string   `json:"managedIdentity"`
	AuthorityHost     string   `json:"authorityHost"`
	CustomerLookup    string   `json:"customerLookup"`
	TrackingColumn    string   `json:"trackingColumn"`
	OrderFields       []string `json:"orderFields"`
	CustomerFields    []string `json:"customerFields"`
	OrderNumberPrefix string   `json:"orderNumberPrefix"`
	// Budget is {"rate": 10, "burst": 40}: Dataverse requests per second
	// (-1 = none) and burst.
	Budget *fileBudget `json:"budget"`
	// Refunds is {"table": "contoso_refund", "orderLookup": "contoso_salesorderid",
	// "amount": "contoso_amount", "status": "statuscode", "date": "createdon",
	// "reason": "contoso_reason"}.
	Refunds       *fileRefunds `json:"refunds"`
	MaxConcurrent int          `json:"maxConcurrent"`
	// SummaryStates are the salesorder states a summary counts, e.g.
	// [3, 4] (Fulfilled, Invoiced); SummaryIncludesContacts adds an
	// account's contacts' orders.
	SummaryStates           []int `json:"summaryStates"`
	SummaryIncludesContacts bool  `json:"summaryIncludesContacts"`
	// ChangeFeed is {"interval": "30s", "ttl": "12h"}: see ChangeFeed.
	ChangeFeed *fileChangeFeed `json:"changeFeed"`
	// The knobs of Tuning: durations as strings ("5m"), cacheBytes as a
	// number or a string with a unit ("16MiB").
	CustomerTTL     string          `json:"customerTTL"`
	OrderTTL        string          `json:"orderTTL"`
	NotFoundTTL     string          `json:"notFoundTTL"`
	StaleTTL        string          `json:"staleTTL"`
	UpstreamTimeout string          `json:"upstreamTimeout"`
	CacheBytes      json.RawMessage `json:"cacheBytes"`
}

// jsonBytes reads a config file size: a number of bytes, or a string with
// a unit ("64MiB"); absent = 0.
func jsonBytes(raw json.RawMessage) (int64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	return parseBytes(s)
}

// parseDuration reads a knob's duration: not negative, "" = 0 (the default).
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 90s, 5m or 1h", s)
	}
	return d, nil
}

// parseBytes reads a cache budget: bytes, or with a KiB, MiB or GiB (or
// KB, MB, GB, read as powers of 1024 too) suffix; "" = 0 (the default).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a size in bytes such as 67108864 or 64MiB", s)
	}
	return n * mult, nil
}

type fileRefunds struct {
	Table       string `json:"table"`
	OrderLookup string `json:"orderLookup"`
	Amount      string `json:"amount"`
	Status      string `json:"status"`
	Date        string `json:"date"`
	Reason      string `json:"reason"`
}

type fileBudget struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// SecretRef points at a secret: an environment variable or a file. Secrets
// are never written inline in the config file, which ends up in backups,
// diffs and support tickets.
type SecretRef struct {
	Env  string `json:"env,omitempty"`
	File string `json:"file,omitempty"`
}

// UnmarshalJSON rejects an inline secret with an explanation.
func (r *SecretRef) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return errInlineSecret
	}
	type plain SecretRef
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf(`a secret reference is {"env": "NAME"} or {"file": "/path"}: %w`, err)
	}
	if (p.Env == "") == (p.File == "") {
		return errors.New(`a secret reference needs exactly one of "env" and "file"`)
	}
	*r = SecretRef(p)
	return nil
}

var errInlineSecret = errors.New(`secrets must not be written in the config file: use {"env": "NAME"} or {"file": "/path/to/secret"}`)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Load reads the configuration. An error that concerns one integration
// (a missing secret, an invalid value) does not fail the load: it is that
// integration's Config.Err, so the others can serve. Load fails only when
// the configuration as a whole cannot be read (no file, invalid JSON, no
// integrations). Every error names the integration and the field, and says
// what to fix; none contains a secret.
func (s Source) Load() ([]Config, error) {
	if s.Path == "" {
		return []Config{s.loadEnv()}, nil
	}
	return s.loadFile()
}

func (s Source) loadEnv() Config {
	c := Config{Name: Default, TrackingColumn: strings.TrimSpace(s.Getenv(EnvTrackingColumn)),
		OrderFields: list(s.Getenv(EnvOrderFields)), CustomerFields: list(s.Getenv(EnvCustomerFields)),
		OrderNumberPrefix: strings.TrimSpace(s.Getenv(EnvOrderPrefix))}
	dv, err := dataverse.ConfigFromEnv(s.Getenv)
	c.Dataverse = dv
	if err != nil {
		c.Err = fmt.Errorf("configuration from the environment: %w", err)
		return c
	}
	if c.Mode, err = parseMode(s.Getenv(EnvCustomerLookup)); err != nil {
		c.Err = fmt.Errorf("%s: %w", EnvCustomerLookup, err)
		return c
	}
	if v := strings.TrimSpace(s.Getenv(EnvRefunds)); v != "" {
		p := strings.Split(v, ":")
		if len(p) < 5 || len(p) > 6 {
			c.Err = fmt.Errorf("%s is table:orderLookup:amount:status:date[:reason] (logical names)", EnvRefunds)
			return c
		}
		p = append(p, "")
		c.Refunds = &gateway.RefundsConfig{Table: p[0], OrderLookup: p[1], Amount: p[2], Status: p[3], Date: p[4], Reason: p[5]}
	}
	if v := strings.TrimSpace(s.Getenv(EnvBudgetRate)); v != "" {
		if c.Budget.Rate, err = strconv.ParseFloat(v, 64); err != nil {
			c.Err = fmt.Errorf("%s is not a number of requests per second (-1 turns the budget off)", EnvBudgetRate)
			return c
		}
	}
	if v := strings.TrimSpace(s.Getenv(EnvBudgetBurst)); v != "" {
		if c.Budget.Burst, err = strconv.Atoi(v); err != nil {
			c.Err = fmt.Errorf("%s is not a whole number of requests", EnvBudgetBurst)
			return c
		}
	}
	if c.ChangeFeed, err = parseChangeFeed(s.Getenv(EnvChangeFeedInterval), s.Getenv(EnvChangeFeedTTL), EnvChangeFeedInterval, EnvChangeFeedTTL); err != nil {
		c.Err = err
		return c
	}
	for _, k := range []struct {
		env string
		d   *time.Duration
	}{{EnvCustomerTTL, &c.Tuning.CustomerTTL}, {EnvOrderTTL, &c.Tuning.OrderTTL}, {EnvNotFoundTTL, &c.Tuning.NotFoundTTL},
		{EnvStaleTTL, &c.Tuning.StaleTTL}, {EnvUpstreamTimeout, &c.Tuning.UpstreamTimeout}} {
		if *k.d, err = parseDuration(s.Getenv(k.env)); err != nil {
			c.Err = fmt.Errorf("%s: %w", k.env, err)
			return c
		}
	}
	if c.Dataverse.ClientSecretExpiresOn, err = parseExpiry(EnvClientSecretExpiresOn, s.Getenv(EnvClientSecretExpiresOn), c.Dataverse); err != nil {
		c.Err = err
		return c
	}
	if c.SummaryStates, err = summaryStates(list(s.Getenv(EnvSummaryStates))); err != nil {
		c.Err = fmt.Errorf("%s: %w", EnvSummaryStates, err)
		return c
	}
	if v := strings.TrimSpace(s.Getenv(EnvSummaryIncludesContacts)); v != "" {
		if c.SummaryIncludesContacts, err = strconv.ParseBool(v); err != nil {
			c.Err = fmt.Errorf("%s is not true or false", EnvSummaryIncludesContacts)
			return c
		}
	}
	c.Warnings = append(c.Warnings, ignoredCredentials(c.Dataverse)...)
	if err := s.hashCert(&c); err != nil {
		c.Err = err
	}
	return c
}

// LoadCacheBytes reads the budget of the cache shared by all integrations
// (an integration with its own cacheBytes has a cache of its own): the
// config file's top-level "cacheBytes" when there is a config file, else
// DVGATE_CACHE_BYTES; 0 = not set. It is read once at start-up.
func (s Source) LoadCacheBytes() (int64, error) {
	if s.Path == "" {
		n, err := parseBytes(s.Getenv(EnvCacheBytes))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", EnvCacheBytes, err)
		}
		return n, nil
	}
	raw, err := s.ReadFile(s.Path)
	if err != nil {
		return 0, fmt.Errorf("reading config file: %w", err)
	}
	var f struct {
		CacheBytes json.RawMessage `json:"cacheBytes"`
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&f); err != nil {
		return 0, fmt.Errorf("config file %s: %w", s.Path, err)
	}
	n, err := jsonBytes(f.CacheBytes)
	if err != nil {
		return 0, fmt.Errorf("config file %s: cacheBytes: %w", s.Path, err)
	}
	return n, nil
}

// parseExpiry reads a client secret's stated expiry: a date (UTC midnight,
// so the warning comes no later than the date the portal shows) or an
// RFC 3339 time; "" = not stated. field names the setting in the error.
func parseExpiry(field, v string, d dataverse.Config) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if d.ClientSecret == "" {
		return time.Time{}, fmt.Errorf("%s is set but the integration signs in without a client secret: remove it (a certificate's expiry is read from the certificate)", field)
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s is not a date: write it as YYYY-MM-DD (the Expires column of the app registration's Certificates & secrets page) or RFC 3339", field)
}

// summaryStates parses and checks the states a summary counts.
func summaryStates(in []string) ([]int, error) {
	var out []int
	for _, v := range in {
		n, err := strconv.Atoi(v)
		if err != nil || n < gateway.StateActive || n > gateway.StateInvoiced {
			return nil, fmt.Errorf("%q is not a salesorder state: use 0 (Active), 1 (Submitted), 2 (Canceled), 3 (Fulfilled) or 4 (Invoiced)", v)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseMode(s string) (gateway.Mode, error) {
	m, err := gateway.ParseMode(s)
	if err != nil {
		return 0, fmt.Errorf("customer lookup mode %q is not one of both, contacts, accounts", s)
	}
	return m, nil
}

func (s Source) loadFile() ([]Config, error) {
	raw, err := s.ReadFile(s.Path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	var f configFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("config file %s: %w", s.Path, err)
	}
	if len(f.Integrations) == 0 {
		return nil, fmt.Errorf(`config file %s: no integrations; add {"integrations": {"default": {...}}}`, s.Path)
	}
	dir := filepath.Dir(s.Path)
	names := make([]string, 0, len(f.Integrations))
	for n := range f.Integrations {
		if !namePattern.MatchString(n) {
			return nil, fmt.Errorf("config file %s: integration %q: names are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", s.Path, n)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]Config, 0, len(names))
	for _, name := range names {
		c, err := s.resolve(name, f.Integrations[name], dir)
		if err != nil {
			c.Err = fmt.Errorf("config file %s: integration %q: %w", s.Path, name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (s Source) resolve(name string, fi fileIntegration, dir string) (Config, error) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c := Config{Name: name, TrackingColumn: strings.TrimSpace(fi.TrackingColumn), OrderFields: clean(fi.OrderFields),
		CustomerFields: clean(fi.CustomerFields), OrderNumberPrefix: strings.TrimSpace(fi.OrderNumberPrefix)}
	if fi.Budget != nil {
		c.Budget = gateway.Budget{Rate: fi.Budget.Rate, Burst: fi.Budget.Burst}
	}
	for _, k := range []struct {
		field, v string
		d        *time.Duration
	}{{"customerTTL", fi.CustomerTTL, &c.Tuning.CustomerTTL}, {"orderTTL", fi.OrderTTL, &c.Tuning.OrderTTL},
		{"notFoundTTL", fi.NotFoundTTL, &c.Tuning.NotFoundTTL}, {"staleTTL", fi.StaleTTL, &c.Tuning.StaleTTL},
		{"upstreamTimeout", fi.UpstreamTimeout, &c.Tuning.UpstreamTimeout}} {
		var err error
		if *k.d, err = parseDuration(k.v); err != nil {
			return c, fmt.Errorf("%s: %w", k.field, err)
		}
	}
	if len(fi.CacheBytes) > 0 {
		var err error
		if c.Tuning.CacheBytes, err = jsonBytes(fi.CacheBytes); err != nil {
			return c, fmt.Errorf("cacheBytes: %w", err)
		}
	}
	if r := fi.Refunds; r != nil {
		c.Refunds = &gateway.RefundsConfig{Table: strings.TrimSpace(r.Table), OrderLookup: strings.TrimSpace(r.OrderLookup),
			Amount: strings.TrimSpace(r.Amount), Status: strings.TrimSpace(r.Status), Date: strings.TrimSpace(r.Date),
			Reason: strings.TrimSpace(r.Reason)}
		if c.Refunds.Table == "" || c.Refunds.OrderLookup == "" || c.Refunds.Amount == "" || c.Refunds.Status == "" || c.Refunds.Date == "" {
			return c, errors.New(`refunds: "table", "orderLookup", "amount", "status" and "date" are required ("reason" is optional)`)
		}
	}
	c.SummaryIncludesContacts = fi.SummaryIncludesContacts
	states := make([]string, len(fi.SummaryStates))
	for i, n := range fi.SummaryStates {
		states[i] = strconv.Itoa(n)
	}
	var err error
	if c.SummaryStates, err = summaryStates(states); err != nil {
		return c, fmt.Errorf("summaryStates: %w", err)
	}
	if c.ChangeFeed, err = fi.ChangeFeed.resolve(); err != nil {
		return c, err
	}
	c.Dataverse = dataverse.Config{
		URL:                strings.TrimSpace(fi.URL),
		TenantID:           strings.TrimSpace(fi.TenantID),
		ClientID:           strings.TrimSpace(fi.ClientID),
		CertificatePath:    abs(fi.CertificatePath),
		FederatedTokenFile: abs(fi.FederatedTokenFile),
		ManagedIdentity:    strings.TrimSpace(fi.ManagedIdentity),
		AuthorityHost:      strings.TrimSpace(fi.AuthorityHost),
		MaxConcurrent:      fi.MaxConcurrent,
	}
	if c.Dataverse.ManagedIdentity != "" {
		// The IMDS host, like App Service's IDENTITY_ENDPOINT, belongs to
		// the machine, not to an integration.
		c.Dataverse.IMDSHost = strings.TrimSpace(s.Getenv(dataverse.EnvIMDSHost))
	}
	for _, ref := range []*SecretRef{fi.ClientSecret, fi.CertificatePassword} {
		if w := s.exposed(ref, dir); w != "" {
			c.Warnings = append(c.Warnings, w)
		}
	}
	if c.Dataverse.ClientSecret, err = s.secret(fi.ClientSecret, dir); err != nil {
		return c, fmt.Errorf("clientSecret: %w", err)
	}
	if c.Dataverse.CertificatePassword, err = s.secret(fi.CertificatePassword, dir); err != nil {
		return c, fmt.Errorf("certificatePassword: %w", err)
	}
	if c.Mode, err = parseMode(fi.CustomerLookup); err != nil {
		return c, fmt.Errorf("customerLookup: %w", err)
	}
	if c.Dataverse.ClientSecretExpiresOn, err = parseExpiry("clientSecretExpiresOn", fi.ClientSecretExpiresOn, c.Dataverse); err != nil {
		return c, err
	}
	if err := c.Dataverse.Validate(); err != nil {
		return c, err
	}
	c.Warnings = append(c.Warnings, ignoredCredentials(c.Dataverse)...)
	return c, s.hashCert(&c)
}

// ignoredCredentials is the warning that credentials are configured besides
// the one used (the first in dataverse.CredentialOrder), so that an admin
// who added a managed identity and kept the secret knows which one signs
// in; none when only one is configured.
func ignoredCredentials(d dataverse.Config) []string {
	use, ignored := d.Credentials()
	if len(ignored) == 0 {
		return nil
	}
	names := make([]string, len(ignored))
	for i, k := range ignored {
		names[i] = string(k)
	}
	order := make([]string, len(dataverse.CredentialOrder))
	for i, k := range dataverse.CredentialOrder {
		order[i] = string(k)
	}
	return []string{fmt.Sprintf("several credentials are configured: signing in with the %s; not used: %s (the order is %s): remove the ones you do not mean to use",
		use, strings.Join(names, ", "), strings.Join(order, " > "))}
}

// secret reads a referenced secret, trimming the white space a mounted file
// or a copied value often carries.
func (s Source) secret(ref *SecretRef, dir string) (string, error) {
	switch {
	case ref == nil:
		return "", nil
	case ref.Env != "":
		v := strings.TrimSpace(s.Getenv(ref.Env))
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty or unset", ref.Env)
		}
		return v, nil
	default:
		p := ref.File
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		b, err := s.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("secret file %s does not exist", p)
			}
			return "", fmt.Errorf("reading secret file: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", p)
		}
		return v, nil
	}
}

// exposed says whether ref's file can be read or written by users other
// than its owner (and group owner), as a warning for the admin; "" when
// it cannot, or when it is not a file or cannot be checked.
func (s Source) exposed(ref *SecretRef, dir string) string {
	if ref == nil || ref.File == "" || s.Stat == nil {
		return ""
	}
	p := ref.File
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	fi, err := s.Stat(p)
	if err != nil || fi.Mode().Perm()&0o007 == 0 {
		return ""
	}
	return fmt.Sprintf("secret file %s can be read or written by every user of this machine (mode %04o): chmod 600 it", p, fi.Mode().Perm())
}

func (s Source) hashCert(c *Config) error {
	if c.Dataverse.CertificatePath == "" {
		return nil
	}
	b, err := s.ReadFile(c.Dataverse.CertificatePath)
	if err != nil {
		return fmt.Errorf("integration %q: reading the certificate: %w", c.Name, err)
	}
	sum := sha256.Sum256(b)
	c.certHash = hex.EncodeToString(sum[:])
	return nil
}

// errText is err's text, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// list splits a comma-separated environment value.
func list(v string) []string { return clean(strings.Split(v, ",")) }

// clean trims names and drops empty ones; nil when none is left.
func clean(names []string) []string {
	var out []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}
