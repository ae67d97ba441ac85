package codegen

import "testing"

func BenchmarkGenerateFixture(b *testing.B) {
	m := readModel(b, "../testdata/csdl/org.xml")
	d := readDefs(b, "../testdata/entitydefs/org.json")
	for b.Loop() {
		if _, err := Generate(Config{Model: m, Definitions: d, Tables: fiveTables, Package: "generated"}); err != nil {
			b.Fatal(err)
		}
	}
}
