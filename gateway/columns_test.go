package gateway

import (
	"reflect"
	"slices"
	"testing"

	"github.com/dvgate/dvgate/generated"
	"github.com/google/go-cmp/cmp"
)

// DefaultOrderColumns must list exactly the generated model's salesorder
// columns (both come from testdata/csdl/org.xml), so that TrackingColumn is
// validated against what the generated client knows.
func TestDefaultOrderColumnsMatchGeneratedModel(t *testing.T) {
	t.Parallel()
	v := reflect.ValueOf(generated.SalesOrderColumns)
	var gen []string
	for i := range v.NumField() {
		if c, ok := v.Field(i).Interface().(interface{ ColumnName() string }); ok {
			gen = append(gen, c.ColumnName())
		}
	}
	want := slices.Sorted(slices.Values(gen))
	got := slices.Sorted(slices.Values(DefaultOrderColumns))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DefaultOrderColumns vs generated.SalesOrderColumns (-generated +ours):\n%s", diff)
	}
}
