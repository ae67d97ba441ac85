package gateway

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestAmountString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"1909.2000", "1909.20"}, // Dataverse's four decimals, trailing zeros
		{"10", "10.00"},
		{"0", "0.00"},
		{"5178.96", "5178.96"},
		{"0.1250", "0.125"}, // finer pricing precision keeps its digits
		{"-12.5", "-12.50"},
		{"12345678901234567.8901", "12345678901234567.8901"},
	} {
		if got := AmountString(decimal.RequireFromString(tc.in)); got != tc.want {
			t.Errorf("AmountString(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
