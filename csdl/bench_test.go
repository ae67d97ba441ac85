package csdl

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// synthetic40MB is a ~40 MB document shaped like a heavily customized org:
// the real document's entity types (or, without it, a generated table
// template) repeated under new names, with an entity set each. Built once.
var synthetic40MB = sync.OnceValue(func() []byte {
	const target = 40 << 20
	real, err := os.ReadFile(realMetadata)
	if err != nil {
		return syntheticFromTemplate(target)
	}
	return syntheticFromReal(real, target)
})

// syntheticFromReal copies every non-empty <EntityType> and <EntitySet> of
// doc under the suffix _cN until the document reaches size bytes.
func syntheticFromReal(doc []byte, size int) []byte {
	s := string(doc)
	types := blocks(s, `<EntityType Name="`, "</EntityType>")
	sets := blocks(s, `<EntitySet Name="`, "</EntitySet>")
	typesAt := strings.Index(s, "<EntityContainer")
	setsAt := strings.Index(s, "</EntityContainer>")
	var extraTypes, extraSets strings.Builder
	for n := 1; len(s)+extraTypes.Len()+extraSets.Len() < size; n++ {
		suffix := fmt.Sprintf("_c%d", n)
		for _, b := range types {
			name := b[len(`<EntityType Name="`) : strings.IndexByte(b[len(`<EntityType Name="`):], '"')+len(`<EntityType Name="`)]
			extraTypes.WriteString(strings.Replace(b, `Name="`+name+`"`, `Name="`+name+suffix+`"`, 1))
			extraTypes.WriteString("\n      ")
		}
		for _, b := range sets {
			b = strings.Replace(b, `">`, suffix+`">`, 1) // EntityType="...x" -> x_cN
			i := len(`<EntitySet Name="`)
			j := i + strings.IndexByte(b[i:], '"')
			extraSets.WriteString(b[:j] + suffix + b[j:])
			extraSets.WriteString("\n        ")
		}
	}
	return []byte(s[:typesAt] + extraTypes.String() + s[typesAt:setsAt] + extraSets.String() + s[setsAt:])
}

func blocks(s, open, close string) []string {
	var out []string
	for {
		i := strings.Index(s, open)
		if i < 0 {
			return out
		}
		s = s[i:]
		gt := strings.IndexByte(s, '>')
		if s[gt-1] == '/' { // empty element
			s = s[gt:]
			continue
		}
		j := strings.Index(s, close) + len(close)
		out = append(out, s[:j])
		s = s[j:]
	}
}

// syntheticFromTemplate generates tables shaped like Dataverse's: string,
// money and lookup columns with annotations, lookups with referential
// constraints, an entity set with bindings and capability annotations.
func syntheticFromTemplate(size int) []byte {
	var types, sets strings.Builder
	for n := 0; types.Len()+sets.Len() < size; n++ {
		t := fmt.Sprintf("new_table%d", n)
		fmt.Fprintf(&types, "<EntityType Name=%q BaseType=\"mscrm.crmbaseentity\"><Key><PropertyRef Name=\"%sid\"/></Key>\n", t, t)
		fmt.Fprintf(&types, "<Property Name=\"%sid\" Type=\"Edm.Guid\"><Annotation Term=\"Org.OData.Core.V1.Description\" String=\"Unique identifier.\"/></Property>\n", t)
		for i := range 60 {
			switch i % 3 {
			case 0:
				fmt.Fprintf(&types, "<Property Name=\"new_text%d\" Type=\"Edm.String\" Unicode=\"false\"><Annotation Term=\"Org.OData.Core.V1.Description\" String=\"Type the text &amp; more for column %d.\"/></Property>\n", i, i)
			case 1:
				fmt.Fprintf(&types, "<Property Name=\"new_amount%d\" Type=\"Edm.Decimal\" Scale=\"Variable\"><Annotation Term=\"Org.OData.Core.V1.Description\" String=\"Amount %d.\"/><Annotation Term=\"Org.OData.Core.V1.Computed\" Bool=\"true\"/><Annotation Term=\"Org.OData.Core.V1.Permissions\"><EnumMember>Org.OData.Core.V1.PermissionType/Read</EnumMember></Annotation></Property>\n", i, i)
			default:
				fmt.Fprintf(&types, "<Property Name=\"_new_ref%d_value\" Type=\"Edm.Guid\"><Annotation Term=\"Org.OData.Core.V1.Description\" String=\"Lookup %d.\"/></Property>\n", i, i)
				fmt.Fprintf(&types, "<NavigationProperty Name=\"new_ref%d\" Type=\"mscrm.%s\" Nullable=\"false\" Partner=\"new_back%d\"><ReferentialConstraint Property=\"_new_ref%d_value\" ReferencedProperty=\"%sid\"/></NavigationProperty>\n", i, t, i, i, t)
				fmt.Fprintf(&types, "<NavigationProperty Name=\"new_back%d\" Type=\"Collection(mscrm.%s)\" Partner=\"new_ref%d\"/>\n", i, t, i)
			}
		}
		types.WriteString("</EntityType>\n")
		fmt.Fprintf(&sets, "<EntitySet Name=\"%ss\" EntityType=\"Microsoft.Dynamics.CRM.%s\">", t, t)
		for i := 2; i < 60; i += 3 {
			fmt.Fprintf(&sets, "<NavigationPropertyBinding Path=\"new_ref%d\" Target=\"%ss\"/>", i, t)
		}
		sets.WriteString(`<Annotation Term="Org.OData.Capabilities.V1.SkipSupported" Bool="false"/><Annotation Term="Org.OData.Capabilities.V1.CountRestrictions"><Record><PropertyValue Property="Countable" Bool="true"/></Record></Annotation></EntitySet>` + "\n")
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices><Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">`)
	b.WriteString("<EntityType Name=\"crmbaseentity\" Abstract=\"true\"/>\n")
	b.WriteString(types.String())
	b.WriteString(`<ComplexType Name="WhoAmIResponse"><Property Name="UserId" Type="Edm.Guid" Nullable="false"/></ComplexType><Function Name="WhoAmI"><ReturnType Type="mscrm.WhoAmIResponse" Nullable="false"/></Function>`)
	b.WriteString(`<EntityContainer Name="System">`)
	b.WriteString(sets.String())
	b.WriteString(`<FunctionImport Name="WhoAmI" Function="Microsoft.Dynamics.CRM.WhoAmI"/></EntityContainer></Schema></edmx:DataServices></edmx:Edmx>`)
	return []byte(b.String())
}

// syntheticTables are tables of the synthetic document to select.
func syntheticTables(doc []byte) []string {
	if bytes.Contains(doc, []byte(`Name="new_table0"`)) {
		return []string{"new_table0", "new_table1", "new_table2", "new_table3", "new_table4"}
	}
	return fiveTables
}

var fiveTables = []string{"account", "contact", "salesorder", "salesorderdetail", "product"}

// peakHeap samples the heap while f runs and returns the highest heap
// object bytes seen above the level before f.
func peakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	peak = max(peak, read())
	if peak < base {
		return 0
	}
	return peak - base
}

func BenchmarkRead(b *testing.B) {
	docs := []struct {
		name   string
		doc    func(b *testing.B) []byte
		tables func([]byte) []string
	}{
		{"real", func(b *testing.B) []byte {
			d, err := os.ReadFile(realMetadata)
			if err != nil {
				b.Skipf("real metadata not available (%v); skipping", err)
			}
			return d
		}, func([]byte) []string { return fiveTables }},
		{"synthetic40MB", func(*testing.B) []byte { return synthetic40MB() }, syntheticTables},
	}
	for _, d := range docs {
		b.Run(d.name, func(b *testing.B) {
			variants := []struct {
				name string
				read func(doc []byte) error
			}{
				{"tables", func(doc []byte) error {
					_, err := Read(bytes.NewReader(doc), Tables(d.tables(doc)...))
					return err
				}},
				{"full", func(doc []byte) error {
					_, err := Read(bytes.NewReader(doc))
					return err
				}},
				{"encodingxml-baseline", func(doc []byte) error {
					var e plainEdmx
					return xml.Unmarshal(doc, &e)
				}},
			}
			for _, v := range variants {
				b.Run(v.name, func(b *testing.B) {
					doc := d.doc(b)
					b.SetBytes(int64(len(doc)))
					b.ReportAllocs()
					var err error
					peak := peakHeap(func() {
						for b.Loop() {
							if err = v.read(doc); err != nil {
								break
							}
						}
					})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
				})
			}
		})
	}
}

// plainEdmx and friends are what a straightforward encoding/xml reader of
// the same information would unmarshal into: the baseline for speed.
type plainEdmx struct {
	Version      string `xml:"Version,attr"`
	DataServices struct {
		Schemas []struct {
			Namespace    string      `xml:"Namespace,attr"`
			Alias        string      `xml:"Alias,attr"`
			EntityTypes  []plainType `xml:"EntityType"`
			ComplexTypes []plainType `xml:"ComplexType"`
			EnumTypes    []struct {
				Name    string `xml:"Name,attr"`
				Members []struct {
					Name  string `xml:"Name,attr"`
					Value string `xml:"Value,attr"`
				} `xml:"Member"`
			} `xml:"EnumType"`
			Functions []plainOperation `xml:"Function"`
			Actions   []plainOperation `xml:"Action"`
			Container struct {
				Name       string `xml:"Name,attr"`
				EntitySets []struct {
					Name       string `xml:"Name,attr"`
					EntityType string `xml:"EntityType,attr"`
					Bindings   []struct {
						Path   string `xml:"Path,attr"`
						Target string `xml:"Target,attr"`
					} `xml:"NavigationPropertyBinding"`
					Annotations []plainAnnotation `xml:"Annotation"`
				} `xml:"EntitySet"`
				FunctionImports []struct {
					Name     string `xml:"Name,attr"`
					Function string `xml:"Function,attr"`
				} `xml:"FunctionImport"`
				ActionImports []struct {
					Name   string `xml:"Name,attr"`
					Action string `xml:"Action,attr"`
				} `xml:"ActionImport"`
			} `xml:"EntityContainer"`
		} `xml:"Schema"`
	} `xml:"DataServices"`
}

type plainType struct {
	Name     string `xml:"Name,attr"`
	BaseType string `xml:"BaseType,attr"`
	Abstract string `xml:"Abstract,attr"`
	OpenType string `xml:"OpenType,attr"`
	Key      []struct {
		Name string `xml:"Name,attr"`
	} `xml:"Key>PropertyRef"`
	Properties []struct {
		Name            string            `xml:"Name,attr"`
		Type            string            `xml:"Type,attr"`
		Nullable        string            `xml:"Nullable,attr"`
		MaxLength       string            `xml:"MaxLength,attr"`
		Precision       string            `xml:"Precision,attr"`
		Scale           string            `xml:"Scale,attr"`
		Unicode         string            `xml:"Unicode,attr"`
		ConcurrencyMode string            `xml:"ConcurrencyMode,attr"`
		Annotations     []plainAnnotation `xml:"Annotation"`
	} `xml:"Property"`
	Navigations []struct {
		Name        string `xml:"Name,attr"`
		Type        string `xml:"Type,attr"`
		Nullable    string `xml:"Nullable,attr"`
		Partner     string `xml:"Partner,attr"`
		Constraints []struct {
			Property           string `xml:"Property,attr"`
			ReferencedProperty string `xml:"ReferencedProperty,attr"`
		} `xml:"ReferentialConstraint"`
	} `xml:"NavigationProperty"`
	Annotations []plainAnnotation `xml:"Annotation"`
}

type plainAnnotation struct {
	Term       string   `xml:"Term,attr"`
	String     string   `xml:"String,attr"`
	Bool       string   `xml:"Bool,attr"`
	EnumMember []string `xml:"EnumMember"`
	Record     []struct {
		Property string `xml:"Property,attr"`
		Bool     string `xml:"Bool,attr"`
	} `xml:"Record>PropertyValue"`
}

type plainOperation struct {
	Name       string `xml:"Name,attr"`
	IsBound    string `xml:"IsBound,attr"`
	Parameters []struct {
		Name     string `xml:"Name,attr"`
		Type     string `xml:"Type,attr"`
		Nullable string `xml:"Nullable,attr"`
	} `xml:"Parameter"`
	ReturnType *struct {
		Type string `xml:"Type,attr"`
	} `xml:"ReturnType"`
}
