package dataverse

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind (token
// flights, retry timers, pooled connections of a closed Conn).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
