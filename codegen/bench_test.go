package codegen

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/dvgate/dvgate/csdl"
)

func BenchmarkGenerateFixture(b *testing.B) {
	m := readModel(b, "../testdata/csdl/org.xml")
	d := readDefs(b, "../testdata/entitydefs/org.json")
	for b.Loop() {
		if _, err := Generate(Config{Model: m, Definitions: d, Tables: fiveTables, Package: "generated"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDvgen is dvgen's work end to end for five tables, from the
// document bytes in memory: read (restricted to the tables) and generate.
// "real" is the 2016 org (3.8 MB); "synthetic" is it with its entity types
// repeated under new names until it is about 40 MB.
func BenchmarkDvgen(b *testing.B) {
	src, err := os.ReadFile(realMetadata)
	if err != nil {
		b.Skipf("%s is absent", realMetadata)
	}
	for _, bc := range []struct {
		name string
		doc  []byte
	}{{"real", src}, {"synthetic", synthetic(b, src, 40<<20)}} {
		b.Run(fmt.Sprintf("%s-%dMB", bc.name, len(bc.doc)>>20), func(b *testing.B) {
			b.SetBytes(int64(len(bc.doc)))
			for b.Loop() {
				m, err := csdl.Read(bytes.NewReader(bc.doc), csdl.Tables(fiveTables...))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Generate(Config{Model: m, Tables: fiveTables, Package: "generated"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// synthetic repeats the entity types of doc under new names ("dup3_account")
// until the document has at least size bytes.
func synthetic(b *testing.B, doc []byte, size int) []byte {
	start := bytes.Index(doc, []byte("<EntityType "))
	end := bytes.LastIndex(doc, []byte("</EntityType>")) + len("</EntityType>")
	if start < 0 || end < start {
		b.Fatal("no entity types")
	}
	types := doc[start:end]
	var out bytes.Buffer
	out.Write(doc[:end])
	for i := 0; out.Len()+len(doc)-end < size; i++ {
		out.Write(bytes.ReplaceAll(types, []byte(`<EntityType Name="`), fmt.Appendf(nil, `<EntityType Name="dup%d_`, i)))
	}
	out.Write(doc[end:])
	return out.Bytes()
}
