package fleet

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/dvgate/dvgate/fleet/redistest"
)

// testRedisURL is the URL of the redis-server TestMain started, or "" when
// redis-server is not installed (the Redis tests then skip).
var testRedisURL string

// TestMain starts a throw-away redis-server on a free loopback port (no
// persistence), runs the tests, stops it and checks for leaked goroutines.
func TestMain(m *testing.M) {
	stop, err := startRedis()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet: starting redis-server:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startRedis starts redis-server when installed; testRedisURL stays ""
// otherwise.
func startRedis() (stop func(), err error) {
	srv, err := redistest.Run()
	if errors.Is(err, redistest.ErrNotInstalled) {
		if redistest.MustHave() {
			return nil, fmt.Errorf("%w (CI is set: the fleet tests must run against a real Redis)", err)
		}
		fmt.Fprintln(os.Stderr, "fleet: skipping the Redis tests:", err)
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	testRedisURL = srv.URL
	return srv.Stop, nil
}
