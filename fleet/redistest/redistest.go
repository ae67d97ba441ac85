// Package redistest starts throw-away redis-server processes for tests:
// a free loopback port, no persistence, stopped at the end of the test.
// Tests skip (saying how to install it) when redis-server is not installed,
// except when the environment variable CI is set: CI installs it (.ci/run),
// so a missing redis-server there is a failure, not a reason to pass.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SkipMessage is the reason tests give when redis-server is missing.
const SkipMessage = "redis-server not installed: apt-get install redis-server (the fleet tests need a real Redis)"

// ErrNotInstalled is returned by Run when redis-server is not on PATH.
var ErrNotInstalled = errors.New(SkipMessage)

// Server is a running redis-server.
type Server struct {
	URL  string // redis://127.0.0.1:PORT/0
	cmd  *exec.Cmd
	done chan struct{}
}

// Stop kills the server and waits for it to exit. It is idempotent.
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// MustHave reports whether a missing redis-server must fail the tests
// rather than skip them: when the environment variable CI is set.
func MustHave() bool { return os.Getenv("CI") != "" }

// Skip skips tb with SkipMessage, or fails it when MustHave.
func Skip(tb testing.TB) {
	tb.Helper()
	if MustHave() {
		tb.Fatal(SkipMessage + " (CI is set: the tests must run)")
	}
	tb.Skip(SkipMessage)
}

// Start runs a server for the test and stops it at its end; it skips the
// test when redis-server is not installed (fails it when CI is set).
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Run()
	if errors.Is(err, ErrNotInstalled) {
		Skip(tb)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Run starts a server on a free loopback port and waits until it answers
// PING. The caller stops it.
func Run() (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("redis-server exited: %w", err)
		case <-time.After(20 * time.Millisecond): // waiting for a process to start
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
		}
	}
}
