package dataversetest

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// metaDefs is a small EntityDefinitions document in the fixture shape.
const metaDefs = `{"value":[
 {"LogicalName":"contact","SchemaName":"Contact","EntitySetName":"contacts","MetadataId":"00000000-0000-0000-0000-00000000000c",
  "Attributes":[
   {"@odata.type":"#Microsoft.Dynamics.CRM.StringAttributeMetadata","LogicalName":"fullname","SchemaName":"FullName","AttributeType":"String","AttributeOf":null,"MetadataId":"a1"},
   {"@odata.type":"#Microsoft.Dynamics.CRM.StateAttributeMetadata","LogicalName":"statecode","SchemaName":"StateCode","AttributeType":"State","AttributeOf":null,"MetadataId":"a2",
    "OptionSet":{"Name":"contact_statecode","IsGlobal":false,"MetadataId":"o2","Options":[{"@odata.type":"#Microsoft.Dynamics.CRM.StateOptionMetadata","Value":0,"Label":{"LocalizedLabels":[],"UserLocalizedLabel":{"Label":"Active","LanguageCode":1033}}}]}},
   {"@odata.type":"#Microsoft.Dynamics.CRM.PicklistAttributeMetadata","LogicalName":"industrycode","SchemaName":"IndustryCode","AttributeType":"Picklist","AttributeOf":null,"MetadataId":"a3",
    "OptionSet":{"Name":"industry","IsGlobal":true,"MetadataId":"o3","Options":[{"Value":1,"Label":{"LocalizedLabels":[{"Label":"Retail","LanguageCode":1033}],"UserLocalizedLabel":null}}]}}
  ]},
 {"LogicalName":"account","SchemaName":"Account","EntitySetName":"accounts","MetadataId":"00000000-0000-0000-0000-00000000000a","Attributes":[]}
]}`

func TestEntityDefinitions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed, EntityDefs: []byte(metaDefs)})
	tok := secretToken(t, s)
	ctx := s.URL() + "/api/data/v9.2/$metadata#"
	tests := []struct {
		name, path string
		status     int
		want       string
	}{
		{
			name: "filtered set with expanded attributes",
			path: "EntityDefinitions?$select=LogicalName,SchemaName&$filter=LogicalName eq 'contact' or LogicalName eq 'nosuch'&$expand=Attributes($select=LogicalName,AttributeOf)",
			want: `{"@odata.context":"` + ctx + `EntityDefinitions(LogicalName,SchemaName,Attributes(LogicalName,AttributeOf))","value":[` +
				`{"LogicalName":"contact","SchemaName":"Contact","MetadataId":"00000000-0000-0000-0000-00000000000c","Attributes":[` +
				`{"@odata.type":"#Microsoft.Dynamics.CRM.StringAttributeMetadata","LogicalName":"fullname","AttributeOf":null,"MetadataId":"a1"},` +
				`{"@odata.type":"#Microsoft.Dynamics.CRM.StateAttributeMetadata","LogicalName":"statecode","AttributeOf":null,"MetadataId":"a2"},` +
				`{"@odata.type":"#Microsoft.Dynamics.CRM.PicklistAttributeMetadata","LogicalName":"industrycode","AttributeOf":null,"MetadataId":"a3"}]}]}`,
		},
		{
			name: "whole set without expand has no attributes",
			path: "EntityDefinitions?$select=LogicalName",
			want: `{"@odata.context":"` + ctx + `EntityDefinitions(LogicalName)","value":[` +
				`{"LogicalName":"contact","MetadataId":"00000000-0000-0000-0000-00000000000c"},{"LogicalName":"account","MetadataId":"00000000-0000-0000-0000-00000000000a"}]}`,
		},
		{
			name: "single entity by logical name",
			path: "EntityDefinitions(LogicalName='account')?$select=EntitySetName",
			want: `{"@odata.context":"` + ctx + `EntityDefinitions(EntitySetName)/$entity","EntitySetName":"accounts","MetadataId":"00000000-0000-0000-0000-00000000000a"}`,
		},
		{
			name: "cast to state attributes with option set",
			path: "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.StateAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options),GlobalOptionSet($select=Options)",
			want: `{"@odata.context":"` + ctx + `EntityDefinitions('contact')/Attributes/Microsoft.Dynamics.CRM.StateAttributeMetadata(LogicalName,OptionSet(Options),GlobalOptionSet(Options))","value":[` +
				`{"LogicalName":"statecode","MetadataId":"a2","OptionSet":{"MetadataId":"o2","Options":[{"@odata.type":"#Microsoft.Dynamics.CRM.StateOptionMetadata","Value":0,"Label":{"LocalizedLabels":[],"UserLocalizedLabel":{"Label":"Active","LanguageCode":1033}}}]},"GlobalOptionSet":null}]}`,
		},
		{
			name: "a global option set is also the GlobalOptionSet",
			path: "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=GlobalOptionSet($select=Name)",
			want: `{"@odata.context":"` + ctx + `EntityDefinitions('contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata(LogicalName,GlobalOptionSet(Name))","value":[` +
				`{"LogicalName":"industrycode","MetadataId":"a3","GlobalOptionSet":{"Name":"industry","MetadataId":"o3"}}]}`,
		},
		{
			name: "cast with no matching attributes", path: "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.StatusAttributeMetadata?$select=LogicalName",
			want: `{"@odata.context":"` + ctx + `EntityDefinitions('account')/Attributes/Microsoft.Dynamics.CRM.StatusAttributeMetadata(LogicalName)","value":[]}`,
		},
		{name: "unknown table", path: "EntityDefinitions(LogicalName='nosuch')/Attributes", status: 404},
		{name: "enum cast refused", path: "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.EnumAttributeMetadata", status: 400},
		{name: "unsupported filter", path: "EntityDefinitions?$filter=SchemaName eq 'Contact'", status: 400},
		{name: "unknown expand", path: "EntityDefinitions?$expand=Nope", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, query, _ := strings.Cut(tc.path, "?")
			if query != "" {
				path += "?" + (&url.URL{RawQuery: url.PathEscape(query)}).RawQuery
			}
			r := get(t, s, tok, path)
			want := tc.status
			if want == 0 {
				want = 200
			}
			if r.status != want {
				t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
			}
			if tc.want != "" {
				if diff := cmp.Diff(tc.want, r.body); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			if want != 200 && !strings.Contains(r.body, `"code":"0x8`) {
				t.Errorf("error body %s is not a Dataverse error", r.body)
			}
		})
	}
}

// TestEntityDefinitionsDefaultFixture checks that the default fixture is
// served whole: every entity with all its attributes, and every option set
// through the casted paths.
func TestEntityDefinitionsDefaultFixture(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: EmptySeed})
	tok := secretToken(t, s)
	r := get(t, s, tok, "EntityDefinitions?$filter="+url.PathEscape("LogicalName eq 'salesorder'")+"&$expand=Attributes")
	var got struct {
		Value []struct {
			SchemaName string
			Attributes []struct{ LogicalName string }
		}
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || len(got.Value) != 1 {
		t.Fatalf("status %d, %v: %.300s", r.status, err, r.body)
	}
	if got.Value[0].SchemaName != "SalesOrder" || len(got.Value[0].Attributes) < 60 {
		t.Errorf("salesorder: SchemaName %q, %d attributes; want SalesOrder and the fixture's 67", got.Value[0].SchemaName, len(got.Value[0].Attributes))
	}
	r = get(t, s, tok, "EntityDefinitions(LogicalName='salesorder')/Attributes/Microsoft.Dynamics.CRM.StatusAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Name,Options)")
	for _, want := range []string{`"LogicalName":"statuscode"`, `"Name":"salesorder_statuscode"`, `"@odata.type":"#Microsoft.Dynamics.CRM.StatusOptionMetadata"`, `"Label":"No Money"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("status option set lacks %s: %.400s", want, r.body)
		}
	}
	if bytes.Contains([]byte(r.body), []byte(`"SchemaName"`)) {
		t.Error("$select=LogicalName returned SchemaName")
	}
}
