// Package testdata embeds the repository's shared fixtures (the CSDL and
// EntityDefinitions of the five-table org, and the demo seed data) so that
// packages can use them without knowing the repository layout: Go's embed
// cannot reach a parent directory.
package testdata

import (
	"embed"
	"io/fs"
)

//go:embed csdl/*.xml entitydefs/*.json seed/*.json
var files embed.FS

// FS returns the embedded fixtures, rooted at testdata/ ("csdl/org.xml").
func FS() fs.FS { return files }

// OrgCSDL returns testdata/csdl/org.xml.
func OrgCSDL() []byte { return mustRead("csdl/org.xml") }

// OrgEntityDefs returns testdata/entitydefs/org.json.
func OrgEntityDefs() []byte { return mustRead("entitydefs/org.json") }

// OrgCustomCSDL returns testdata/csdl/org-custom.xml: the five-table org
// customised (a custom tracking column and a lookup to a custom delivery
// table on salesorder).
func OrgCustomCSDL() []byte { return mustRead("csdl/org-custom.xml") }

// OrgCustomEntityDefs returns testdata/entitydefs/org-custom.json.
func OrgCustomEntityDefs() []byte { return mustRead("entitydefs/org-custom.json") }

// DemoSeed returns testdata/seed/demo.json, the simulator's demo data.
func DemoSeed() []byte { return mustRead("seed/demo.json") }

// mustRead reads an embedded file; the patterns above guarantee the names
// exist, so a failure is a build defect.
func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("testdata: " + err.Error())
	}
	return b
}
