package gateway

import (
	"context"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

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
// one interval later.) A dep's keys are a slice, not a set: most deps have
// one or two answers, and a slice of string headers (the strings are the
// records' own keys) costs a third of a small map. Safe for concurrent use.
type depIndex struct {
	st *feedState // the follower's, for when the next poll is due

	mu     sync.Mutex
	byDep  map[string][]string  // guarded by mu
	byKey  map[string]*indexRec // guarded by mu
	bytes  int64                // guarded by mu
	recent map[string]time.Time // dep -> when it was last invalidated; guarded by mu
	allAt  time.Time            // when every answer was last invalidated (invalidateAll); guarded by mu
	// A partial dep "~g:id=fp" is indexed under its whole string; fps
	// lists the fingerprints indexed for each "~g:id" (usually one), and
	// reported the last fingerprint the feed reported for it, for add's
	// race check. Guarded by mu.
	fps      map[string][]string
	reported map[string]reportedFP
}

type reportedFP struct {
	at time.Time
	fp string
}

// splitPartial splits a partial dep into "~g:id" and its fingerprint; ok
// is false for other deps. (The id may be packed, and so hold any byte;
// the fingerprint, base 36, holds no '='.)
func splitPartial(d string) (base, fp string, ok bool) {
	i := strings.LastIndexByte(d, '=')
	if !strings.HasPrefix(d, "~") || i < 0 {
		return "", "", false
	}
	return d[:i], d[i+1:], true
}

// packDeps returns deps with their GUIDs packed (packDep); deps is not
// modified.
func packDeps(deps []string) []string {
	out := make([]string, len(deps))
	for i, d := range deps {
		out[i] = packDep(d)
	}
	return out
}

// packDep shortens the GUID of a dep (a row id, "oc:<id>", "~c:<id>=…")
// from its 36 characters to a zero byte and its 16 bytes: the index holds
// one string per dep, most of them GUIDs, and a 17-byte string takes a
// 24-byte allocation where 36 take 48 (TestDepIndexBytes). Both sides of
// the index pack the same way, so packed deps compare as the text did.
func packDep(d string) string {
	for _, at := range [...]int{0, 3} {
		if len(d) < at+36 || d[at+8] != '-' {
			continue
		}
		id, err := uuid.Parse(d[at : at+36])
		if err != nil {
			continue
		}
		var b strings.Builder
		b.Grow(len(d) - 19)
		b.WriteString(d[:at])
		b.WriteByte(0)
		b.Write(id[:])
		b.WriteString(d[at+36:])
		return b.String()
	}
	return d
}

// indexRec is one indexed answer: its deps, the freshness it would have
// without the feed, and its bytes (charged to its cache entry). Immutable
// once added, except taken (guarded by the index's mu).
type indexRec struct {
	x      *depIndex
	key    string
	deps   []string
	normal time.Duration
	bytes  int64
	taken  bool // removed by take (a dep changed), not by eviction
}

// keyOverhead and depOverhead approximate the bytes an indexed answer
// costs besides its strings (the key's bytes are the cache's): its byKey
// slot and record, and per dep a byDep slot (shared with the dep's other
// answers, counted in full), a slice slot and the dep's header in
// indexRec.deps. Checked against the heap by TestDepIndexBytes.
const (
	keyOverhead = 150
	depOverhead = 120
)

func newDepIndex(st *feedState) *depIndex {
	return &depIndex{st: st, byDep: map[string][]string{}, byKey: map[string]*indexRec{},
		recent: map[string]time.Time{}, fps: map[string][]string{}, reported: map[string]reportedFP{}}
}

func recBytes(deps []string) int64 {
	n := int64(keyOverhead)
	for _, d := range deps {
		n += int64(len(d)) + depOverhead
	}
	return n
}

// add indexes key under deps (replacing what it had) and returns its
// record, for the caller to attach to the entry it stores. raced reports
// whether one of the deps was invalidated after since (the load's start):
// the answer may predate that change, and must not be kept long.
func (x *depIndex) add(key string, deps []string, normal time.Duration, since time.Time) (r *indexRec, raced bool) {
	deps = packDeps(deps)
	x.mu.Lock()
	defer x.mu.Unlock()
	raced = x.allAt.After(since)
	for _, d := range deps {
		// A load that began at or after the invalidation began after the
		// change (which preceded the poll that reported it): not raced.
		if t, ok := x.recent[d]; ok && t.After(since) {
			raced = true
		}
		// A partial dep: the row was reported with other values after the
		// load began (the answer may show the old ones).
		if base, fp, ok := splitPartial(d); ok {
			if r, ok := x.reported[base]; ok && r.at.After(since) && r.fp != fp {
				raced = true
			}
		}
	}
	x.removeLocked(key)
	deps = slices.Compact(slices.Sorted(slices.Values(deps))) // one slot per dep (two lines may share a product)
	for _, d := range deps {
		if _, ok := x.byDep[d]; !ok {
			if base, fp, ok := splitPartial(d); ok {
				x.fps[base] = append(x.fps[base], fp)
			}
		}
		x.byDep[d] = append(x.byDep[d], key)
	}
	r = &indexRec{x: x, key: key, deps: deps, normal: normal, bytes: recBytes(deps)}
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
	it, ok := x.byKey[key]
	if !ok {
		return
	}
	delete(x.byKey, key)
	x.bytes -= it.bytes
	for _, d := range it.deps {
		ks := x.byDep[d]
		if i := slices.Index(ks, key); i >= 0 {
			ks = slices.Delete(ks, i, i+1)
		}
		if len(ks) == 0 {
			delete(x.byDep, d)
			if base, fp, ok := splitPartial(d); ok {
				fps := slices.DeleteFunc(x.fps[base], func(f string) bool { return f == fp })
				if len(fps) == 0 {
					delete(x.fps, base)
				} else {
					x.fps[base] = fps
				}
			}
		} else {
			x.byDep[d] = ks
		}
	}
}

// take removes and returns the keys that depend on deps, and notes when
// the deps were invalidated (now) for add's race check; notes older than
// keep are forgotten.
func (x *depIndex) take(deps []string, now time.Time, keep time.Duration) []string {
	deps = packDeps(deps)
	x.mu.Lock()
	defer x.mu.Unlock()
	for d, t := range x.recent {
		if now.Sub(t) > keep {
			delete(x.recent, d)
		}
	}
	for b, r := range x.reported {
		if now.Sub(r.at) > keep {
			delete(x.reported, b)
		}
	}
	var keys []string
	for _, d := range deps {
		if base, fp, ok := splitPartial(d); ok {
			// The row's current values in this group: the answers that
			// showed other ones are stale.
			x.reported[base] = reportedFP{at: now, fp: fp}
			for _, f := range x.fps[base] {
				if f != fp {
					keys = append(keys, x.byDep[base+"="+f]...)
				}
			}
			continue
		}
		x.recent[d] = now
		keys = append(keys, x.byDep[d]...)
	}
	for _, k := range keys {
		if r := x.byKey[k]; r != nil {
			r.taken = true
			x.removeLocked(k)
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
	for k, it := range x.byKey {
		out = append(out, evictedKey{key: k, normal: it.normal})
	}
	x.byDep, x.byKey, x.fps, x.bytes = map[string][]string{}, map[string]*indexRec{}, map[string][]string{}, 0
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
