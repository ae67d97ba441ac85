package bench

import (
	"errors"
	"runtime"
)

func testingProcs() int { return runtime.GOMAXPROCS(0) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }
