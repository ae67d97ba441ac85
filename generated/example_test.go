package generated_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/dvgate/dvgate/generated"
	"github.com/dvgate/dvgate/odataq"
)

// Example looks up a customer by e-mail address. A backend service passes
// its *dataverse.Conn as the doer; here a tiny test server plays Dataverse.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("GET", r.URL.Path+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"value":[{"contactid":"70bf4d48-34cb-ed11-b596-0022481d68cd","fullname":"Susanna Stubberod",
			"statecode":0,"statecode@OData.Community.Display.V1.FormattedValue":"Active",
			"_parentcustomerid_value":"7d716234-9628-ed11-9db1-000d3a320482",
			"_parentcustomerid_value@OData.Community.Display.V1.FormattedValue":"Contoso Ltd"}]}`)
	}))
	defer srv.Close()

	svc, err := generated.NewService(srv.URL+"/api/data/v9.2/", srv.Client())
	if err != nil {
		panic(err)
	}
	c := generated.ContactColumns
	contact, err := svc.Contacts().First(context.Background(), svc.Contacts().Query().
		Select(c.FullName, c.StateCode, c.ParentCustomerIdValue).
		Filter(odataq.Or(c.EMailAddress1.Eq("a+b@x.com"), c.EMailAddress2.Eq("a+b@x.com"))).
		Annotations(odataq.FormattedValues))
	if err != nil {
		panic(err)
	}
	fmt.Println(*contact.FullName, "|", *contact.StateCodeFormatted, "|", *contact.ParentCustomerIdFormatted, contact.ParentCustomerIdValue)
	// Output:
	// GET /api/data/v9.2/contacts?$select=fullname,statecode,_parentcustomerid_value&$filter=emailaddress1%20eq%20'a%2Bb%40x.com'%20or%20emailaddress2%20eq%20'a%2Bb%40x.com'&$top=1
	// Susanna Stubberod | Active | Contoso Ltd 7d716234-9628-ed11-9db1-000d3a320482
}
