package dataversetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"

	"github.com/dvgate/dvgate/testdata"
)

// CustomizedDemo returns the options of a simulator serving the demo org as
// a customised org: the schema of testdata/csdl/org-custom.xml (a custom
// text column salesorder.contoso_trackingnumber, and a custom table
// contoso_delivery), plus a custom refunds table contoso_refund (amount,
// status, reason, and a lookup to its order), and the demo data with a
// tracking number on every submitted or fulfilled order and three refunds,
// two of them of ORD-01001-B2K9P7. Other options are zero.
func CustomizedDemo() (Options, error) {
	var doc struct {
		Tables map[string][]map[string]any `json:"tables"`
	}
	if err := json.Unmarshal(testdata.DemoSeed(), &doc); err != nil {
		return Options{}, err
	}
	orders := map[string]map[string]any{}
	for _, r := range doc.Tables["salesorder"] {
		num, _ := r["ordernumber"].(string)
		orders[num] = r
		if st, _ := r["statecode"].(float64); st != 1 && st != 3 {
			continue // active or canceled orders have not shipped
		}
		h := fnv.New64a()
		h.Write([]byte(num))
		r["contoso_trackingnumber"] = fmt.Sprintf("1Z999AA1%010d", h.Sum64()%1e10)
	}
	for i, rf := range []struct {
		order, amount, reason, created string
		status                         int
	}{
		{"ORD-01001-B2K9P7", "364.32", "Engraving misspelled", "2026-01-20T10:00:00Z", 100000001},
		{"ORD-01001-B2K9P7", "50.00", "Late delivery goodwill credit", "2026-02-02T09:15:00Z", 1},
		{"ORD-01002-A7AUCC", "120.00", "Damaged in transit", "2026-01-05T16:30:00Z", 100000000},
	} {
		o := orders[rf.order]
		if o == nil {
			return Options{}, fmt.Errorf("dataversetest: the demo seed has no order %s", rf.order)
		}
		doc.Tables["contoso_refund"] = append(doc.Tables["contoso_refund"], map[string]any{
			"contoso_refundid": fmt.Sprintf("5e1f7a20-0000-4000-8000-00000000000%d", i+1), "contoso_name": fmt.Sprintf("RF-%04d", i+1),
			"contoso_amount": rf.amount, "contoso_reason": rf.reason, "statecode": 0, "statuscode": rf.status,
			"createdon": rf.created, "modifiedon": rf.created, "_contoso_salesorderid_value": o["salesorderid"],
			"_transactioncurrencyid_value": o["_transactioncurrencyid_value"],
		})
	}
	seed, err := json.Marshal(doc)
	if err != nil {
		return Options{}, err
	}
	csdl := bytes.Replace(testdata.OrgCustomCSDL(), []byte(`<EntityType Name="expando"`), []byte(refundType+`<EntityType Name="expando"`), 1)
	csdl = bytes.Replace(csdl, []byte(`</EntityContainer>`), []byte(refundSet+`</EntityContainer>`), 1)
	defs, err := withRefundDefinitions(testdata.OrgCustomEntityDefs())
	if err != nil {
		return Options{}, err
	}
	return Options{CSDL: csdl, EntityDefs: defs, Seed: seed}, nil
}

// refundType and refundSet declare contoso_refund as Dataverse would.
const refundType = `<EntityType Name="contoso_refund" BaseType="mscrm.crmbaseentity">
        <Key><PropertyRef Name="contoso_refundid"/></Key>
        <Property Name="contoso_refundid" Type="Edm.Guid"/>
        <Property Name="contoso_name" Type="Edm.String" Unicode="false" MaxLength="100"/>
        <Property Name="contoso_amount" Type="Edm.Decimal" Scale="Variable"/>
        <Property Name="contoso_reason" Type="Edm.String" Unicode="false" MaxLength="2000"/>
        <Property Name="statecode" Type="Edm.Int32"/>
        <Property Name="statuscode" Type="Edm.Int32"/>
        <Property Name="createdon" Type="Edm.DateTimeOffset"/>
        <Property Name="modifiedon" Type="Edm.DateTimeOffset"/>
        <Property Name="_contoso_salesorderid_value" Type="Edm.Guid"/>
        <Property Name="_transactioncurrencyid_value" Type="Edm.Guid"/>
        <NavigationProperty Name="contoso_salesorderid" Type="mscrm.salesorder" Nullable="false">
          <ReferentialConstraint Property="_contoso_salesorderid_value" ReferencedProperty="salesorderid"/>
        </NavigationProperty>
        <NavigationProperty Name="transactioncurrencyid" Type="mscrm.transactioncurrency" Nullable="false">
          <ReferentialConstraint Property="_transactioncurrencyid_value" ReferencedProperty="transactioncurrencyid"/>
        </NavigationProperty>
      </EntityType>
      `
const refundSet = `<EntitySet Name="contoso_refunds" EntityType="Microsoft.Dynamics.CRM.contoso_refund">
          <NavigationPropertyBinding Path="contoso_salesorderid" Target="salesorders"/>
          <NavigationPropertyBinding Path="transactioncurrencyid" Target="transactioncurrencies"/>
        </EntitySet>
      `

// withRefundDefinitions adds contoso_refund's EntityDefinitions: its
// status reasons (for their labels) and its money column.
func withRefundDefinitions(raw []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	label := func(s string) map[string]any {
		l := map[string]any{"Label": s, "LanguageCode": 1033}
		return map[string]any{"LocalizedLabels": []any{l}, "UserLocalizedLabel": l}
	}
	var options []any
	for _, o := range []struct {
		v int
		l string
	}{{1, "Requested"}, {100000000, "Approved"}, {100000001, "Paid"}} {
		options = append(options, map[string]any{"Value": o.v, "Label": label(o.l)})
	}
	attr := func(name, typ string) map[string]any {
		return map[string]any{"LogicalName": name, "SchemaName": name, "AttributeType": typ}
	}
	status := attr("statuscode", "Status")
	status["OptionSet"] = map[string]any{"Name": "contoso_refund_statuscode", "OptionSetType": "Status", "Options": options}
	ent := map[string]any{"LogicalName": "contoso_refund", "SchemaName": "contoso_Refund", "EntitySetName": "contoso_refunds",
		"PrimaryIdAttribute": "contoso_refundid", "PrimaryNameAttribute": "contoso_name", "IsCustomEntity": true,
		"Attributes": []any{attr("contoso_refundid", "Uniqueidentifier"), attr("contoso_name", "String"),
			attr("contoso_amount", "Money"), attr("contoso_reason", "Memo"), status, attr("createdon", "DateTime")}}
	doc["value"] = append(doc["value"].([]any), ent)
	return json.Marshal(doc)
}
