package dataversetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/entitydefs"
	"github.com/dvgate/dvgate/testdata"
	"github.com/shopspring/decimal"
)

// A seed document lists rows per table (logical name). Column names are the
// CSDL property names: lookups as "_x_value". A polymorphic lookup names its
// target with the wire annotation
// "_x_value@Microsoft.Dynamics.CRM.lookuplogicalname"; without it the target
// is found by looking the ID up in each candidate table. Values are JSON
// typed as on the wire: money and decimals as numbers (or strings, for exact
// digits), DateTimeOffset as RFC 3339, Date as YYYY-MM-DD. versionnumber is
// assigned when absent.
//
//	{"tables":{"contact":[{"contactid":"...","fullname":"Alex Wu",
//	  "_parentcustomerid_value":"...",
//	  "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname":"account"}]}}
type seedDoc struct {
	Tables map[string][]map[string]any `json:"tables"`
}

const lookupLogicalNameSuffix = "@Microsoft.Dynamics.CRM.lookuplogicalname"

// dataset is the schema and rows. A shared snapshot (see loadDataset) is
// never mutated, so any number of servers read it; a server's private copy
// is changed by writes under that server's dmu.
type dataset struct {
	// version is the last row version handed out (versionnumber, etags).
	version int64
	csdl    []byte
	model   *csdl.Model
	defs    *entitydefs.Definitions
	// defsRaw is the EntityDefinitions JSON, served by the metadata endpoint.
	defsRaw []byte
	tables  map[string]*table // by logical name
	sets    map[string]*table // by entity set name
	order   []*table          // container order
}

type table struct {
	name, set   string
	qualified   string // "Microsoft.Dynamics.CRM.contact"
	schemaName  string
	otc         int
	et          *csdl.EntityType
	key         string
	primaryName string
	cols        []*column
	colByName   map[string]*column
	navs        map[string]*navInfo
	altKeys     [][]string

	rows    []*row
	byKey   map[string]*row
	strIdx  map[string]map[string][]*row // indexed string column -> lower(value) -> rows
	lookIdx map[string]map[string][]*row // lookup column -> guid -> rows
	tombs   []tombstone                  // deleted rows, oldest first (change tracking)
}

// tombstone records a deleted row for change tracking.
type tombstone struct {
	id      string
	version int64
}

// indexedColumns are string columns with an equality index (besides the key
// and alternate keys): the lookups the gateway makes.
var indexedColumns = []string{"emailaddress1", "emailaddress2", "emailaddress3", "ordernumber", "productnumber", "accountnumber"}

type colKind int

const (
	kString colKind = iota
	kGuid
	kInt
	kBool
	kDecimal
	kDouble
	kDateTime
	kDate
)

type column struct {
	name    string
	edm     string
	kind    colKind
	money   bool
	options bool // picklist, state, status or boolean with labels
	lookup  *lookupInfo
}

type lookupInfo struct {
	navs []*navInfo // single-valued navigations setting this column
}

type navInfo struct {
	name       string
	collection bool
	targetType string // qualified
	target     *table // nil for abstract targets (principal)
	lookupCol  string // single-valued: the "_x_value" on this table
	partnerCol string // collection: the lookup column on the target table
}

type row struct {
	pos     int
	vals    map[string]any
	targets map[string]string // lookup column -> target table logical name
	version int64
}

// otcs are the object type codes of well-known tables (for privilege errors).
var otcs = map[string]int{"account": 1, "contact": 2, "systemuser": 8, "team": 9, "product": 1024, "uom": 1055,
	"salesorder": 1088, "salesorderdetail": 1089, "transactioncurrency": 9105}

// Shared snapshots of the default schema, with the demo rows and without
// rows. Most tests start servers with these, and parsing and indexing the
// demo seed costs tens of milliseconds (half a second under -race), so each
// is built once per process. A shared dataset is never mutated (a server
// that is written to first makes its own copy), which is what makes sharing
// it between servers, and this package-level cache, safe.
var (
	defaultDemoData  = sync.OnceValues(func() (*dataset, error) { return buildDataset(Options{}) })
	defaultEmptyData = sync.OnceValues(func() (*dataset, error) { return buildDataset(Options{Seed: EmptySeed}) })
)

// loadDataset returns the dataset for opts: a shared snapshot for the
// default schema with the demo or no seed (shared = true), else a new one.
func loadDataset(opts Options) (d *dataset, shared bool, err error) {
	if opts.CSDL == nil && opts.EntityDefs == nil {
		switch {
		case opts.Seed == nil:
			d, err = defaultDemoData()
			return d, true, err
		case bytes.Equal(opts.Seed, EmptySeed):
			d, err = defaultEmptyData()
			return d, true, err
		}
	}
	d, err = buildDataset(opts)
	return d, false, err
}

func buildDataset(opts Options) (*dataset, error) {
	raw := opts.CSDL
	if raw == nil {
		raw = testdata.OrgCSDL()
	}
	model, err := csdl.Read(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("dataversetest: CSDL: %w", err)
	}
	defsRaw := opts.EntityDefs
	if defsRaw == nil {
		defsRaw = testdata.OrgEntityDefs()
	}
	defs, err := entitydefs.Read(bytes.NewReader(defsRaw))
	if err != nil {
		return nil, fmt.Errorf("dataversetest: EntityDefinitions: %w", err)
	}
	d := &dataset{csdl: raw, model: model, defs: defs, defsRaw: defsRaw, tables: map[string]*table{}, sets: map[string]*table{}}
	if model.Container == nil {
		return nil, fmt.Errorf("dataversetest: CSDL has no entity container")
	}
	for _, es := range model.Container.EntitySets {
		et := model.EntityType(es.EntityType)
		if et == nil || len(et.EffectiveKey()) != 1 {
			continue
		}
		t := d.newTable(et, es.Name)
		d.tables[t.name] = t
		d.sets[t.set] = t
		d.order = append(d.order, t)
	}
	for _, t := range d.order {
		d.resolveNavs(t)
	}
	seedRaw := opts.Seed
	if seedRaw == nil {
		seedRaw = testdata.DemoSeed()
	}
	if err := d.loadSeed(seedRaw); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *dataset) newTable(et *csdl.EntityType, set string) *table {
	t := &table{
		name: et.Name, set: set, qualified: et.QualifiedName(), et: et, key: et.EffectiveKey()[0],
		schemaName: et.Name, colByName: map[string]*column{}, navs: map[string]*navInfo{},
		altKeys: et.AlternateKeys, byKey: map[string]*row{},
		strIdx: map[string]map[string][]*row{}, lookIdx: map[string]map[string][]*row{},
	}
	ent := d.defs.Entity(et.Name)
	if ent != nil {
		t.schemaName = ent.SchemaName
		t.primaryName = ent.PrimaryNameAttribute
	}
	if n, ok := otcs[t.name]; ok {
		t.otc = n
	} else {
		h := fnv.New32a()
		h.Write([]byte(t.name))
		t.otc = 10000 + int(h.Sum32()%90000)
	}
	hasCurrency := et.Property("_transactioncurrencyid_value") != nil
	for _, p := range et.AllProperties() {
		c := &column{name: p.Name, edm: p.Type}
		switch p.Type {
		case "Edm.Guid":
			c.kind = kGuid
		case "Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte":
			c.kind = kInt
		case "Edm.Boolean":
			c.kind = kBool
		case "Edm.Decimal":
			c.kind = kDecimal
		case "Edm.Double", "Edm.Single":
			c.kind = kDouble
		case "Edm.DateTimeOffset":
			c.kind = kDateTime
		case "Edm.Date":
			c.kind = kDate
		}
		var attr *entitydefs.Attribute
		if ent != nil {
			attr = ent.Attribute(p.Name)
		}
		if attr != nil {
			c.money = attr.AttributeType == "Money"
			c.options = attr.OptionSet != nil && len(attr.OptionSet.Options) > 0
		} else if c.kind == kDecimal && hasCurrency {
			// A column the definitions don't know: guess money like the UI would.
			c.money = p.Name != "exchangerate" && !strings.Contains(p.Name, "quantity") && !strings.HasSuffix(p.Name, "percentage")
		}
		t.cols = append(t.cols, c)
		t.colByName[c.name] = c
	}
	if t.primaryName == "" {
		for _, n := range []string{"name", "fullname", "subject", "title"} {
			if t.colByName[n] != nil {
				t.primaryName = n
				break
			}
		}
	}
	for _, n := range indexedColumns {
		if c := t.colByName[n]; c != nil && c.kind == kString {
			t.strIdx[n] = map[string][]*row{}
		}
	}
	for _, ak := range t.altKeys {
		if len(ak) == 1 {
			if c := t.colByName[ak[0]]; c != nil && c.kind == kString {
				t.strIdx[ak[0]] = map[string][]*row{}
			}
		}
	}
	return t
}

func (d *dataset) resolveNavs(t *table) {
	for _, np := range t.et.AllNavigationProperties() {
		n := &navInfo{name: np.Name, collection: np.Collection, targetType: np.Type}
		if tt := d.model.EntityType(np.Type); tt != nil {
			n.target = d.tables[tt.Name]
		}
		if np.Collection {
			if n.target != nil {
				if pn := n.target.et.NavigationProperty(np.Partner); pn != nil && len(pn.ReferentialConstraints) > 0 {
					n.partnerCol = pn.ReferentialConstraints[0].Property
				} else if n.target.colByName["_"+np.Partner+"_value"] != nil {
					n.partnerCol = "_" + np.Partner + "_value"
				}
			}
		} else {
			if len(np.ReferentialConstraints) > 0 {
				n.lookupCol = np.ReferentialConstraints[0].Property
			} else if t.colByName["_"+np.Name+"_value"] != nil {
				n.lookupCol = "_" + np.Name + "_value"
			}
			if c := t.colByName[n.lookupCol]; c != nil {
				if c.lookup == nil {
					c.lookup = &lookupInfo{}
				}
				c.lookup.navs = append(c.lookup.navs, n)
			}
		}
		t.navs[n.name] = n
	}
	for _, c := range t.cols {
		if c.lookup == nil && c.kind == kGuid && strings.HasPrefix(c.name, "_") && strings.HasSuffix(c.name, "_value") {
			c.lookup = &lookupInfo{} // a lookup without a navigation property
		}
		if c.lookup != nil {
			t.lookIdx[c.name] = map[string][]*row{}
		}
	}
}

// targetTables lists the tables a lookup column can point to.
func (d *dataset) targetTables(c *column) []*table {
	var out []*table
	for _, n := range c.lookup.navs {
		if n.target != nil {
			out = append(out, n.target)
			continue
		}
		// Abstract target (principal): every table deriving from it.
		for _, t := range d.order {
			for b := t.et; b != nil; b = b.Base {
				if b.QualifiedName() == n.targetType {
					out = append(out, t)
					break
				}
			}
		}
	}
	return out
}

func (d *dataset) loadSeed(raw []byte) error {
	var doc seedDoc
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("dataversetest: seed: %w", err)
	}
	var version int64 = 1_000_000
	names := make([]string, 0, len(doc.Tables))
	for n := range doc.Tables {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		t := d.tables[name]
		if t == nil {
			return fmt.Errorf("dataversetest: seed: table %q is not in the CSDL (or has no entity set)", name)
		}
		for i, in := range doc.Tables[name] {
			r := &row{vals: make(map[string]any, len(t.cols)), targets: map[string]string{}}
			for k, v := range in {
				if col, ok := strings.CutSuffix(k, lookupLogicalNameSuffix); ok {
					s, _ := v.(string)
					r.targets[col] = s
					continue
				}
				c := t.colByName[k]
				if c == nil {
					return fmt.Errorf("dataversetest: seed: %s row %d: column %q is not in the CSDL", name, i, k)
				}
				val, err := convertSeedValue(c, v)
				if err != nil {
					return fmt.Errorf("dataversetest: seed: %s row %d column %s: %w", name, i, k, err)
				}
				r.vals[k] = val
			}
			id, _ := r.vals[t.key].(string)
			if id == "" {
				return fmt.Errorf("dataversetest: seed: %s row %d has no %s", name, i, t.key)
			}
			if t.byKey[id] != nil {
				return fmt.Errorf("dataversetest: seed: %s row %d: duplicate key %s", name, i, id)
			}
			if v, ok := r.vals["versionnumber"].(int64); ok {
				r.version = v
			} else {
				version += 17
				r.version = version
				if t.colByName["versionnumber"] != nil {
					r.vals["versionnumber"] = version
				}
			}
			t.byKey[id] = r
			t.rows = append(t.rows, r)
			d.version = max(d.version, r.version)
		}
	}
	// Resolve lookup targets, sort rows by key and build the indexes.
	for _, t := range d.order {
		for _, r := range t.rows {
			for _, c := range t.cols {
				if c.lookup == nil {
					continue
				}
				id, ok := r.vals[c.name].(string)
				if !ok {
					continue
				}
				if r.targets[c.name] == "" {
					for _, tt := range d.targetTables(c) {
						if tt.byKey[id] != nil {
							r.targets[c.name] = tt.name
							break
						}
					}
					if r.targets[c.name] == "" && len(c.lookup.navs) == 1 && c.lookup.navs[0].target != nil {
						r.targets[c.name] = c.lookup.navs[0].target.name
					}
				}
				t.lookIdx[c.name][id] = append(t.lookIdx[c.name][id], r)
			}
			for col, idx := range t.strIdx {
				if s, ok := r.vals[col].(string); ok {
					k := strings.ToLower(s)
					idx[k] = append(idx[k], r)
				}
			}
		}
		slices.SortFunc(t.rows, func(a, b *row) int { return strings.Compare(a.vals[t.key].(string), b.vals[t.key].(string)) })
		for i, r := range t.rows {
			r.pos = i
		}
	}
	return nil
}

func convertSeedValue(c *column, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.kind {
	case kGuid:
		s, ok := v.(string)
		if !ok || !isGUID(s) {
			return nil, fmt.Errorf("want a GUID, got %v", v)
		}
		return strings.ToLower(s), nil
	case kInt:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want an integer, got %v", v)
		}
		return n.Int64()
	case kBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a boolean, got %v", v)
		}
		return b, nil
	case kDecimal:
		switch n := v.(type) {
		case json.Number:
			return decimal.NewFromString(string(n))
		case string:
			return decimal.NewFromString(n)
		}
		return nil, fmt.Errorf("want a number, got %v", v)
	case kDouble:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want a number, got %v", v)
		}
		return n.Float64()
	case kDateTime:
		s, _ := v.(string)
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, err
		}
		return tm.UTC(), nil
	case kDate:
		s, _ := v.(string)
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return nil, err
		}
		return s, nil
	default:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %v", v)
		}
		return s, nil
	}
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
