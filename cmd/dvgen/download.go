package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/dvgate/dvgate/csdl"
	"github.com/dvgate/dvgate/dataverse"
	"github.com/dvgate/dvgate/entitydefs"
	"golang.org/x/sync/errgroup"
)

// download signs in to the org named by --metadata with the AZURE_*
// environment, streams $metadata into the CSDL reader (keeping only the
// selected tables, so a 30 MB document never sits in memory) and fetches
// the EntityDefinitions of the selected tables, unless --entity-definitions
// names a file. It returns defs == nil in that case.
func (c *command) download(ctx context.Context, o options) (*csdl.Model, *entitydefs.Definitions, error) {
	cfg, err := dataverse.ConfigFromEnv(func(k string) string {
		if k == dataverse.EnvURL {
			return o.metadata
		}
		return c.getenv(k)
	})
	if err != nil {
		return nil, nil, err
	}
	cfg.HTTPClient = c.httpClient
	cfg.UserAgent = "dvgen/" + strings.TrimPrefix(dataverse.DefaultUserAgent(), "dvgate/")
	conn, err := dataverse.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()

	model, err := c.downloadMetadata(ctx, conn, o.tables)
	if err != nil {
		return nil, nil, err
	}
	if o.entityDefs != "" {
		return model, nil, nil
	}
	raw, err := downloadEntityDefs(ctx, conn, o.tables)
	if err != nil {
		return nil, nil, err
	}
	defs, err := entitydefs.Read(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("EntityDefinitions from %s: %w", conn.OrgURL(), err)
	}
	if o.saveDefs != "" {
		if err := os.WriteFile(o.saveDefs, raw, 0o644); err != nil {
			return nil, nil, err
		}
	}
	return model, defs, nil
}

// downloadMetadata streams GET $metadata into csdl.Read, so a 30 MB
// document is never held in memory whole.
func (c *command) downloadMetadata(ctx context.Context, conn *dataverse.Conn, tables []string) (*csdl.Model, error) {
	resp, err := conn.Stream(ctx, "$metadata")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	p := &progress{w: c.stderr, on: c.terminal, total: resp.ContentLength}
	model, err := csdl.Read(io.TeeReader(body, p), csdl.Tables(tables...))
	p.done()
	if err != nil {
		return nil, fmt.Errorf("%s$metadata: %w", conn.BaseURL(), err)
	}
	return model, nil
}

// progress reports bytes downloaded on a terminal, rewriting one line.
type progress struct {
	w       io.Writer
	on      bool
	total   int64 // -1 when unknown
	n, last int64
}

const progressStep = 256 << 10

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.on && p.n-p.last >= progressStep {
		p.last = p.n
		p.print()
	}
	return len(b), nil
}

func (p *progress) print() {
	s := "\rdvgen: $metadata " + mb(p.n)
	if p.total > 0 {
		s += " of " + mb(p.total)
	}
	fmt.Fprint(p.w, s)
}

func (p *progress) done() {
	if p.on {
		p.print()
		fmt.Fprintln(p.w)
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// Wire shapes of the EntityDefinitions requests, and of the assembled
// document (the shape package entitydefs reads).
type (
	defsDoc struct {
		Value []*defEntity `json:"value"`
	}
	defEntity struct {
		LogicalName          string
		SchemaName           string
		EntitySetName        string
		CollectionSchemaName string `json:",omitempty"` // Go name of the entity set
		PrimaryIdAttribute   string
		PrimaryNameAttribute string
		Attributes           []*defAttribute
	}
	defAttribute struct {
		LogicalName   string
		SchemaName    string
		AttributeType string
		AttributeOf   *string
		OptionSet     json.RawMessage `json:",omitempty"`
	}
	castAttribute struct {
		LogicalName     string
		OptionSet       json.RawMessage
		GlobalOptionSet json.RawMessage
	}
)

// optionCasts are the attribute types that have option sets, with the
// option-set members to select (Boolean sets have TrueOption/FalseOption).
var optionCasts = []struct{ cast, members string }{
	{"PicklistAttributeMetadata", "Name,Options"},
	{"StateAttributeMetadata", "Name,Options"},
	{"StatusAttributeMetadata", "Name,Options"},
	{"BooleanAttributeMetadata", "Name,TrueOption,FalseOption"},
}

// filterChunk bounds the names per EntityDefinitions request, keeping the
// URL far below the 32 KB limit.
const filterChunk = 50

// downloadEntityDefs fetches the tables' definitions with their attributes,
// then, per table and option-set type, the option sets, and assembles them
// into one {"value":[...]} document sorted by logical name.
func downloadEntityDefs(ctx context.Context, conn *dataverse.Conn, tables []string) ([]byte, error) {
	tables = slices.Compact(slices.Sorted(slices.Values(tables)))
	var doc defsDoc
	for chunk := range slices.Chunk(tables, filterChunk) {
		var f []string
		for _, t := range chunk {
			f = append(f, "LogicalName eq '"+t+"'")
		}
		r, err := conn.Get(ctx, "EntityDefinitions?$select=LogicalName,SchemaName,EntitySetName,CollectionSchemaName,PrimaryIdAttribute,PrimaryNameAttribute"+
			"&$filter="+strings.Join(f, " or ")+
			"&$expand=Attributes($select=LogicalName,SchemaName,AttributeType,AttributeOf)")
		if err != nil {
			return nil, err
		}
		var page defsDoc
		if err := json.Unmarshal(r.Body, &page); err != nil {
			return nil, fmt.Errorf("EntityDefinitions: %w", err)
		}
		doc.Value = append(doc.Value, page.Value...)
	}
	var missing []string
	for _, t := range tables {
		if !slices.ContainsFunc(doc.Value, func(e *defEntity) bool { return e.LogicalName == t }) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("EntityDefinitions has no table %s, though $metadata does", strings.Join(missing, ", "))
	}

	var mu sync.Mutex // guards the OptionSet fields
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, e := range doc.Value {
		byName := make(map[string]*defAttribute, len(e.Attributes))
		for _, a := range e.Attributes {
			byName[a.LogicalName] = a
		}
		for _, oc := range optionCasts {
			g.Go(func() error {
				r, err := conn.Get(gctx, "EntityDefinitions(LogicalName='"+e.LogicalName+"')/Attributes/Microsoft.Dynamics.CRM."+oc.cast+
					"?$select=LogicalName&$expand=OptionSet($select="+oc.members+"),GlobalOptionSet($select="+oc.members+")")
				if err != nil {
					return err
				}
				var page struct{ Value []castAttribute }
				if err := json.Unmarshal(r.Body, &page); err != nil {
					return fmt.Errorf("EntityDefinitions %s %s: %w", e.LogicalName, oc.cast, err)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, ca := range page.Value {
					if a := byName[ca.LogicalName]; a != nil {
						a.OptionSet = pickOptionSet(ca)
					}
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(doc.Value, func(a, b *defEntity) int { return cmp.Compare(a.LogicalName, b.LogicalName) })
	for _, e := range doc.Value {
		slices.SortFunc(e.Attributes, func(a, b *defAttribute) int { return cmp.Compare(a.LogicalName, b.LogicalName) })
	}
	out, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// pickOptionSet prefers the attribute's own option set; a column using a
// global choice may have only the GlobalOptionSet filled in.
func pickOptionSet(ca castAttribute) json.RawMessage {
	for _, raw := range []json.RawMessage{ca.OptionSet, ca.GlobalOptionSet} {
		var probe struct {
			Options                 []json.RawMessage
			TrueOption, FalseOption json.RawMessage
		}
		if json.Unmarshal(raw, &probe) == nil && (len(probe.Options) > 0 || probe.TrueOption != nil || probe.FalseOption != nil) {
			var b bytes.Buffer
			if json.Compact(&b, raw) == nil {
				return b.Bytes()
			}
		}
	}
	return nil
}

// printError prints err; for a *dataverse.Error the remedy goes on its own
// line, since it is what the admin has to act on.
func printError(w io.Writer, err error) {
	var de *dataverse.Error
	if errors.As(err, &de) && de.Remedy != "" {
		cp := *de
		cp.Remedy = ""
		msg := err.Error()
		if err == error(de) {
			msg = cp.Error()
		} else {
			msg = strings.Replace(msg, " -- remedy: "+de.Remedy, "", 1)
		}
		fmt.Fprintf(w, "dvgen: %s\ndvgen: remedy: %s\n", msg, de.Remedy)
		return
	}
	fmt.Fprintln(w, "dvgen:", err)
}
