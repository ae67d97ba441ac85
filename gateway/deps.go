package gateway

import (
	"cmp"
	"context"
	"hash/fnv"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dvgate/dvgate/generated"
)

// The dependency index: which cached answers depend on which Dataverse
// rows, so that the change feed (feed.go) can make exactly those answers
// stale when a row changes or is deleted.
//
// A dependency ("dep") is a row id (lowercase GUID) or a derived name:
//
//	"em:<address>"     a customer answer (or "not found") for that email
//	"on:<number>"      an order answer (or "not found") for that order number
//	"oc:<customer id>" a customer's recent orders (a new order of theirs)
//	"rf:<order id>"    an order's refunds (a new refund of the order)
//
// The feed derives the same names from the columns it selects (emails,
// ordernumber, customerid, the refunds' order lookup), so that a row that
// newly matches a cached question (a contact created with an address that
// was "not found") makes its answer stale too.

// Partial deps. An answer also shows a few columns of rows it is not
// about: an order its customer's name and emails (and a contact
// customer's parent account), a line its product's name and SKU, a
// contact its parent account's name. It depends on those values, not on
// the whole row: a customer's new phone number must not make every one of
// their orders stale. Such a dep is "~<group>:<id>=<fingerprint>", the
// fingerprint a hash of the values the answer showed; for each changed row
// the feed reports its current fingerprint in each group, and the answers
// that showed another one become stale (depIndex.take). A deleted row is
// reported with an empty fingerprint, which no answer has. Where the two
// sides could disagree (a contact whose parent is a contact, which the
// answer does not show), the fingerprints differ and the answer is made
// stale: the error is always towards a refetch.
const (
	grpContact = "c" // a contact customer of an order: fullname, emails, parent account
	grpAccount = "a" // an account customer of an order: name, emails
	grpName    = "n" // a contact's (or an order's contact's) parent account: name
	grpProduct = "p" // a line's product: name, productnumber
)

// partialDep is the dep of an answer that showed vals of the row id in
// group.
func partialDep(group, id string, vals ...string) string {
	h := fnv.New64a()
	for _, v := range vals {
		h.Write([]byte(v))
		h.Write([]byte{0x1f})
	}
	return "~" + group + ":" + strings.ToLower(id) + "=" + strconv.FormatUint(h.Sum64(), 36)
}

// emailList is a row's addresses as answers show them (Order.CustomerEmails).
func emailList(e ...string) []string {
	var out []string
	for _, v := range e {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// depsOf lists the deps of an answer stored under key. Keys end with the
// normalized input after the last unit separator (see Gateway.key).
func depsOf(kind, key string, value any) []string {
	input := key[strings.LastIndexByte(key, '\x1f')+1:]
	var deps []string
	add := func(ids ...string) {
		for _, id := range ids {
			if id != "" {
				deps = append(deps, strings.ToLower(id))
			}
		}
	}
	switch kind {
	case kindCustomer:
		add("em:" + input)
		if c, ok := value.(*Customer); ok && c != nil {
			add(c.ID)
			if a := c.Account; a != nil {
				deps = append(deps, partialDep(grpName, a.ID, a.Name))
			}
		}
	case kindOrder:
		if n, ok := strings.CutPrefix(input, "number:"); ok {
			add("on:" + n)
		} else if id, ok := strings.CutPrefix(input, "id:"); ok {
			add(id)
		}
		if o, ok := value.(*Order); ok && o != nil {
			add(o.ID)
			for _, l := range o.Lines {
				if p := l.Product; p != nil {
					deps = append(deps, partialDep(grpProduct, p.ID, p.Name, p.SKU))
				}
			}
			if c := o.Customer; c != nil {
				emails := strings.Join(o.CustomerEmails, ",") // they scope the order (integration.OrderFor)
				switch c.Type {
				case "contact":
					parent := ""
					if a := o.CustomerAccount; a != nil {
						parent = strings.ToLower(a.ID)
						deps = append(deps, partialDep(grpName, a.ID, a.Name))
					}
					deps = append(deps, partialDep(grpContact, c.ID, c.Name, emails, parent))
				case "account":
					deps = append(deps, partialDep(grpAccount, c.ID, c.Name, emails))
				default:
					add(c.ID)
				}
			}
		}
	case kindRecentOrders:
		add("oc:" + input)
		if s, ok := value.([]OrderSummary); ok {
			for _, o := range s {
				add(o.ID)
			}
		}
	case kindRefunds:
		add("rf:"+input, input)
		if rs, ok := value.([]Refund); ok {
			for _, r := range rs {
				add(r.ID)
			}
		}
	default:
		return nil
	}
	return deps
}

// rowPartials are the partial deps a changed row of table reports (its
// current fingerprints); for a deleted row (row nil), empty ones.
func rowPartials(table, id string, row map[string]any) []string {
	raw := func(col string) string { s, _ := row[col].(string); return s }
	fp := func(group string, vals ...string) string {
		if row == nil {
			return "~" + group + ":" + id + "="
		}
		return partialDep(group, id, vals...)
	}
	emails := func() string {
		return strings.Join(emailList(raw("emailaddress1"), raw("emailaddress2"), raw("emailaddress3")), ",")
	}
	switch table {
	case "contacts":
		return []string{fp(grpContact, raw("fullname"), emails(), strings.ToLower(raw("_parentcustomerid_value")))}
	case "accounts":
		return []string{fp(grpAccount, raw("name"), emails()), fp(grpName, raw("name"))}
	case "products":
		return []string{fp(grpProduct, raw("name"), raw("productnumber"))}
	}
	return nil
}

// depIndex maps deps to the cache keys of the answers that depend on them.
// It lives within the cache's byte budget: each indexed answer's entry
// carries its record (entry.ix), whose bytes count in the entry's cost, and
// the record leaves the index when ristretto evicts or refuses the entry
// (Cache.left). So the index holds exactly the answers the cache holds,
// and an answer never lives long without the record that makes it stale.
// (A separate FIFO bound of 1/8 of the budget, measured on a 50,000-order
// org, pushed out answers the cache still held: they had to be refetched
// one interval later.)
//
// Deps are held as 64-bit hashes (depID), not strings: a third of the
// bytes, so the cache holds more answers in its budget. Two deps with one
// hash are indexed as one, so a change to either makes the answers of
// both stale: a collision costs a refetch, never a stale answer (except
// between two fingerprints of one partial dep, a 2^-64 chance per
// change, which the fingerprints themselves already have). The seed is
// random per index, so nobody can aim a collision. A dep's answers are a
// slice, not a set: most deps have one or two. Safe for concurrent use.
type depIndex struct {
	st   *feedState // the follower's, for when the next poll is due
	seed maphash.Seed

	mu     sync.Mutex
	byDep  map[depID][]*indexRec // guarded by mu
	byKey  map[string]*indexRec  // guarded by mu
	bytes  int64                 // guarded by mu
	recent map[depID]time.Time   // dep -> when it was last invalidated; guarded by mu
	allAt  time.Time             // when every answer was last invalidated (invalidateAll); guarded by mu
	// A partial dep "~g:id=fp" is indexed under the hash of its whole
	// string, its base the hash of "~g:id". fps lists the partial deps
	// indexed for each base (usually one), baseOf the base of each, and
	// reported the last one the feed reported for a base, for add's race
	// check. Guarded by mu.
	fps      map[depID][]depID
	baseOf   map[depID]depID
	reported map[depID]reportedFP
}

// depID is a dep's hash under its index's seed.
type depID uint64

type reportedFP struct {
	at time.Time
	id depID // the whole partial dep's
}

// hashedDep is a dep as the index keeps it.
type hashedDep struct {
	id      depID
	base    depID // a partial dep's "~g:id"
	partial bool
}

func (x *depIndex) hash(deps []string) []hashedDep {
	out := make([]hashedDep, len(deps))
	for i, d := range deps {
		out[i].id = depID(maphash.String(x.seed, d))
		// A partial dep's fingerprint (base 36) holds no '='.
		if j := strings.LastIndexByte(d, '='); j >= 0 && strings.HasPrefix(d, "~") {
			out[i].base, out[i].partial = depID(maphash.String(x.seed, d[:j])), true
		}
	}
	return out
}

// indexRec is one indexed answer: its deps, the freshness it would have
// without the feed, and its bytes (charged to its cache entry). Immutable
// once added, except taken (guarded by the index's mu).
type indexRec struct {
	x      *depIndex
	key    string
	deps   []depID
	normal time.Duration
	bytes  int64
	taken  bool // removed by take (a dep changed), not by eviction
}

// keyOverhead and depOverhead approximate the bytes an indexed answer
// costs (the key's bytes are the cache's): its byKey slot and record, and
// per dep a byDep slot (shared with the dep's other answers, counted in
// full), a slice slot and its place in indexRec.deps. Checked against the
// heap by TestDepIndexBytes.
const (
	keyOverhead = 200
	depOverhead = 67
)

func newDepIndex(st *feedState) *depIndex {
	return &depIndex{st: st, seed: maphash.MakeSeed(), byDep: map[depID][]*indexRec{}, byKey: map[string]*indexRec{},
		recent: map[depID]time.Time{}, fps: map[depID][]depID{}, baseOf: map[depID]depID{}, reported: map[depID]reportedFP{}}
}

func recBytes(deps int) int64 { return keyOverhead + int64(deps)*depOverhead }

// add indexes key under deps (replacing what it had) and returns its
// record, for the caller to attach to the entry it stores. raced reports
// whether one of the deps was invalidated after since (the load's start):
// the answer may predate that change, and must not be kept long.
func (x *depIndex) add(key string, deps []string, normal time.Duration, since time.Time) (r *indexRec, raced bool) {
	hs := x.hash(deps)
	// One slot per dep (two lines may share a product).
	slices.SortFunc(hs, func(a, b hashedDep) int { return cmp.Compare(a.id, b.id) })
	hs = slices.CompactFunc(hs, func(a, b hashedDep) bool { return a.id == b.id })
	x.mu.Lock()
	defer x.mu.Unlock()
	raced = x.allAt.After(since)
	for _, h := range hs {
		// A load that began at or after the invalidation began after the
		// change (which preceded the poll that reported it): not raced.
		if t, ok := x.recent[h.id]; ok && t.After(since) {
			raced = true
		}
		// A partial dep: the row was reported with other values after the
		// load began (the answer may show the old ones).
		if h.partial {
			if rp, ok := x.reported[h.base]; ok && rp.at.After(since) && rp.id != h.id {
				raced = true
			}
		}
	}
	x.removeLocked(key)
	r = &indexRec{x: x, key: key, deps: make([]depID, len(hs)), normal: normal, bytes: recBytes(len(hs))}
	for i, h := range hs {
		r.deps[i] = h.id
		if _, ok := x.byDep[h.id]; !ok && h.partial {
			x.fps[h.base] = append(x.fps[h.base], h.id)
			x.baseOf[h.id] = h.base
		}
		x.byDep[h.id] = append(x.byDep[h.id], r)
	}
	x.byKey[key] = r
	x.bytes += r.bytes
	return r, raced
}

// drop removes r unless it was already removed or replaced, and reports
// whether it did (the caller then caps the entry's freshness).
func (x *depIndex) drop(r *indexRec) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byKey[r.key] != r {
		return false
	}
	x.removeLocked(r.key)
	return true
}

// state reports whether r is still indexed, and if not whether take
// removed it (a change) rather than an eviction or a drain.
func (x *depIndex) state(r *indexRec) (indexed, taken bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.byKey[r.key] == r, r.taken
}

// evictedKey is a key whose entry must lose its long freshness, with its
// normal freshness. until, when set, is when the answer must stop being
// fresh at the latest: one that leaves the index while the feed runs is no
// longer made stale by a change, so it lives until the next poll is due
// (changes made since the last poll began would have been reported by
// it), and less when its normal freshness ends sooner.
type evictedKey struct {
	key    string
	normal time.Duration
	until  time.Time
}

// removeLocked drops key from the index.
func (x *depIndex) removeLocked(key string) {
	r, ok := x.byKey[key]
	if !ok {
		return
	}
	delete(x.byKey, key)
	x.bytes -= r.bytes
	for _, d := range r.deps {
		rs := x.byDep[d]
		if i := slices.Index(rs, r); i >= 0 {
			rs = slices.Delete(rs, i, i+1)
		}
		if len(rs) > 0 {
			x.byDep[d] = rs
			continue
		}
		delete(x.byDep, d)
		if base, ok := x.baseOf[d]; ok {
			delete(x.baseOf, d)
			if ids := slices.DeleteFunc(x.fps[base], func(id depID) bool { return id == d }); len(ids) > 0 {
				x.fps[base] = ids
			} else {
				delete(x.fps, base)
			}
		}
	}
}

// take removes and returns the keys that depend on deps, and notes when
// the deps were invalidated (now) for add's race check; notes older than
// keep are forgotten.
func (x *depIndex) take(deps []string, now time.Time, keep time.Duration) []string {
	hs := x.hash(deps)
	x.mu.Lock()
	defer x.mu.Unlock()
	for d, t := range x.recent {
		if now.Sub(t) > keep {
			delete(x.recent, d)
		}
	}
	for b, rp := range x.reported {
		if now.Sub(rp.at) > keep {
			delete(x.reported, b)
		}
	}
	var recs []*indexRec
	for _, h := range hs {
		if h.partial {
			// The row's current values in this group: the answers that
			// showed other ones are stale.
			x.reported[h.base] = reportedFP{at: now, id: h.id}
			for _, id := range x.fps[h.base] {
				if id != h.id {
					recs = append(recs, x.byDep[id]...)
				}
			}
			continue
		}
		x.recent[h.id] = now
		recs = append(recs, x.byDep[h.id]...)
	}
	var keys []string
	for _, r := range recs {
		if x.byKey[r.key] == r {
			r.taken = true
			x.removeLocked(r.key)
			keys = append(keys, r.key)
		}
	}
	return keys
}

// invalidateAll notes that every answer was invalidated at now (too many
// rows changed to list them), for add's race check.
func (x *depIndex) invalidateAll(now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.allAt = now
}

// drain empties the index and returns every key it held with its normal
// freshness (the feed stopped: they fall back to it).
func (x *depIndex) drain() []evictedKey {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]evictedKey, 0, len(x.byKey))
	for k, r := range x.byKey {
		out = append(out, evictedKey{key: k, normal: r.normal})
	}
	x.byDep, x.byKey, x.bytes = map[depID][]*indexRec{}, map[string]*indexRec{}, 0
	x.fps, x.baseOf = map[depID][]depID{}, map[depID]depID{}
	return out
}

// size returns the number of indexed answers and the index's bytes.
func (x *depIndex) size() (answers int, bytes int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byKey), x.bytes
}

// depSink collects deps a load notes that its answer does not show (an
// order's line ids). It is written only by the flight's own goroutine.
type depSink struct{ ids []string }

type depSinkKey struct{}

// depSink gives a flight's context a sink when a follower is attached.
func (c *core) depSink(ctx context.Context) (context.Context, *depSink) {
	if c.feed.Load() == nil {
		return ctx, nil
	}
	s := &depSink{}
	return context.WithValue(ctx, depSinkKey{}, s), s
}

// noteLines notes the line ids of an order row being answered.
func noteLines(ctx context.Context, r *generated.SalesOrder) {
	s, _ := ctx.Value(depSinkKey{}).(*depSink)
	if s == nil {
		return
	}
	for _, l := range r.OrderDetails {
		if id := idString(l.SalesOrderDetailID); id != "" {
			s.ids = append(s.ids, id)
		}
	}
}
