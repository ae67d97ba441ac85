package dataversetest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/dvgate/dvgate/dataversetest/internal/seedgen"
	"github.com/dvgate/dvgate/testdata"
)

var update = flag.Bool("update", false, "rewrite testdata/seed/demo.json from the generator")

func TestDemoSeedUpToDate(t *testing.T) {
	got, err := seedgen.Generate()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := seedgen.Generate()
	if !bytes.Equal(got, again) {
		t.Fatal("seedgen.Generate is not deterministic")
	}
	path := filepath.Join("..", "testdata", "seed", "demo.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, testdata.DemoSeed()) {
		t.Errorf("%s is stale: run go test ./dataversetest -run TestDemoSeedUpToDate -update", path)
	}
}
