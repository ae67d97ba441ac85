package csdl

import (
	"os"
	"path/filepath"
	"testing"
)

// realMetadata is the real 2016 org $metadata, outside the repository.
var realMetadata = filepath.Join("..", "..", "shared", "realworld", "DynamicsCRM-2016-metadata.xml")

func openReal(tb testing.TB) *os.File {
	tb.Helper()
	f, err := os.Open(realMetadata)
	if err != nil {
		tb.Skipf("real metadata not available (%v); skipping", err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

func TestRealMetadataCounts(t *testing.T) {
	t.Parallel()
	m, err := Read(openReal(t))
	if err != nil {
		t.Fatal(err)
	}
	got := [6]int{len(m.EntityTypes), len(m.Container.EntitySets), len(m.Functions), len(m.Actions), len(m.ComplexTypes), len(m.EnumTypes)}
	// Counted with grep -o in the file: the brief's 265/237/139/132 are
	// those of a later, edited copy of the same document.
	want := [6]int{264, 236, 166, 138, 131, 33}
	if got != want {
		t.Errorf("counts (EntityType, EntitySet, Function, Action, ComplexType, EnumType) = %v, want %v", got, want)
	}
}
