package csdl

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRead checks that Read never panics and that a document that reads can
// be selected from, with and without Tables. The seeds run in plain go test.
func FuzzRead(f *testing.F) {
	f.Add([]byte(quirksDoc))
	f.Add([]byte(`<edmx:Edmx Version="4.0"><edmx:DataServices><Schema Namespace="N" Alias="n"><EntityType Name="a" BaseType="n.a"/></Schema></edmx:DataServices></edmx:Edmx>`))
	f.Add([]byte(`<edmx:Edmx><!-- c --><?pi x?><![CDATA[x]]></edmx:Edmx>`))
	f.Add([]byte(`<edmx:Edmx><edmx:DataServices><Schema Namespace="N"><EnumType Name="e"><Member Name="m" Value="x"/></EnumType><ComplexType Name="c" BaseType="N.c"/></Schema></edmx:DataServices></edmx:Edmx>`))
	f.Add([]byte("\ufeff<edmx:Edmx a='&#x41;&#65;&lt;'></edmx:Edmx>"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		m, err := Read(bytes.NewReader(doc))
		if err != nil {
			return
		}
		var names []string
		for _, et := range m.EntityTypes {
			names = append(names, et.QualifiedName())
			_ = et.Lookups()
		}
		if _, err := Select(m, names); err != nil && len(names) > 0 && !strings.Contains(err.Error(), "unknown table") {
			t.Errorf("Select of every type: %v", err)
		}
		if len(names) > 0 {
			_, _ = Read(bytes.NewReader(doc), Tables(names[0]))
		}
	})
}
