package dataversetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// funcsSeed: three contacts created 2 hours, 3 days and 40 days before the
// fake clock's 2026-03-02T09:00Z, under accounts whose names sort opposite
// to their ids.
const funcsSeed = `{"tables":{
 "account":[
  {"accountid":"00000000-0000-0000-0000-000000000001","name":"Zeta Corp"},
  {"accountid":"00000000-0000-0000-0000-000000000002","name":"Alpha Inc"}],
 "contact":[
  {"contactid":"00000000-0000-0000-0000-00000000000a","fullname":"Ann Lee","emailaddress1":"ann_lee@x.com","statecode":0,"createdon":"2026-03-02T07:00:00Z",
   "_parentcustomerid_value":"00000000-0000-0000-0000-000000000001","_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname":"account"},
  {"contactid":"00000000-0000-0000-0000-00000000000b","fullname":"Bob 100% Real","emailaddress1":"bob@x.com","statecode":1,"createdon":"2026-02-27T09:00:00Z",
   "_parentcustomerid_value":"00000000-0000-0000-0000-000000000002","_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname":"account"},
  {"contactid":"00000000-0000-0000-0000-00000000000c","fullname":"Cy Young","emailaddress1":"cy@x.com","statecode":0,"createdon":"2026-01-21T09:00:00Z"}]}}`

// filter-rows.md (wire facts §7, §11.4): query functions, parameter
// aliases, lambda operators, LIKE wildcards in the string functions;
// order-rows.md: a lookup sorts by the related row's primary name.
func TestFilterFeatures(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, Options{Seed: []byte(funcsSeed), Clock: newFakeClock().Now})
	tok := secretToken(t, s)
	const fn = "Microsoft.Dynamics.CRM."
	tests := []struct {
		name string
		path string
		want []string // names in answer order; nil = expect 400
	}{
		{"In", q("contacts", "$select", "fullname", "$filter", fn+"In(PropertyName='statecode',PropertyValues=['1'])"), []string{"Bob 100% Real"}},
		{"In with aliases and a JSON array", q("contacts", "$select", "fullname", "$filter", fn+"In(PropertyName=@p1,PropertyValues=@p2)", "@p1", "'statecode'", "@p2", `["0"]`), []string{"Ann Lee", "Cy Young"}},
		{"NotIn", q("contacts", "$select", "fullname", "$filter", fn+"NotIn(PropertyName='statecode',PropertyValues=['0'])"), []string{"Bob 100% Real"}},
		{"Today", q("contacts", "$select", "fullname", "$filter", fn+"Today(PropertyName='createdon')"), []string{"Ann Lee"}},
		{"LastXDays", q("contacts", "$select", "fullname", "$filter", fn+"LastXDays(PropertyName='createdon',PropertyValue=7)"), []string{"Ann Lee", "Bob 100% Real"}},
		{"OlderThanXDays", q("contacts", "$select", "fullname", "$filter", fn+"OlderThanXDays(PropertyName='createdon',PropertyValue=30)"), []string{"Cy Young"}},
		{"Between", q("contacts", "$select", "fullname", "$filter", fn+"Between(PropertyName='createdon',PropertyValues=['2026-02-01T00:00:00Z','2026-02-28T00:00:00Z'])"), []string{"Bob 100% Real"}},
		{"not with a query function", q("contacts", "$filter", "not "+fn+"Today(PropertyName='createdon')"), nil},
		{"unknown query function", q("contacts", "$filter", fn+"InFiscalYear(PropertyName='createdon',PropertyValue=2026)"), nil},
		{"alias in a comparison", q("contacts", "$select", "fullname", "$filter", "emailaddress1 eq @p1", "@p1", "'CY@x.com'"), []string{"Cy Young"}},
		{"alias without a value", q("contacts", "$filter", "emailaddress1 eq @p9"), nil},
		{"escaped %", q("contacts", "$select", "fullname", "$filter", "contains(fullname,'100[%]')"), []string{"Bob 100% Real"}},
		{"_ wildcard", q("contacts", "$select", "fullname", "$filter", "startswith(fullname,'_nn')"), []string{"Ann Lee"}},
		{"set", q("contacts", "$select", "fullname", "$filter", "startswith(emailaddress1,'[ab]')"), []string{"Ann Lee", "Bob 100% Real"}},
		{"negated set", q("contacts", "$select", "fullname", "$filter", "startswith(emailaddress1,'[^ab]')"), []string{"Cy Young"}},
		{"% inside", q("contacts", "$select", "fullname", "$filter", "endswith(emailaddress1,'o%.com')"), []string{"Bob 100% Real"}},
		{"any", q("accounts", "$select", "name", "$filter", "contact_customer_accounts/any(c:c/statecode eq 1)"), []string{"Alpha Inc"}},
		{"all", q("accounts", "$select", "name", "$filter", "contact_customer_accounts/all(c:c/statecode eq 0)"), []string{"Zeta Corp"}},
		{"any()", q("accounts", "$select", "name", "$filter", "contact_customer_accounts/any()"), []string{"Zeta Corp", "Alpha Inc"}},
		{"any on a lookup", q("contacts", "$filter", "parentcustomerid_account/any(a:a/name eq 'x')"), nil},
		{"orderby lookup = related name", q("contacts", "$select", "fullname", "$orderby", "_parentcustomerid_value asc"), []string{"Cy Young", "Bob 100% Real", "Ann Lee"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := get(t, s, tok, tc.path)
			if tc.want == nil {
				if r.status != 400 {
					t.Errorf("status %d, want 400: %s", r.status, r.body)
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var got []string
			for _, v := range decode(t, r.body)["value"].([]any) {
				o := v.(map[string]any)
				name, _ := o["fullname"].(string)
				if name == "" {
					name, _ = o["name"].(string)
				}
				got = append(got, name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
