package fleet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// testRedisURL is the URL of the redis-server TestMain started, or "" when
// redis-server is not installed (the Redis tests then skip).
var testRedisURL string

const skipNoRedis = "redis-server not installed: apt-get install redis-server (the fleet tests need a real Redis)"

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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return func() {}, nil
	}
	srv, err := runRedis(bin)
	if err != nil {
		return nil, err
	}
	testRedisURL = srv.url
	return srv.stop, nil
}

type redisProc struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *redisProc) stop() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// runRedis starts one redis-server on a free loopback port and waits until
// it answers PING.
func runRedis(bin string) (*redisProc, error) {
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
	p := &redisProc{url: fmt.Sprintf("redis://127.0.0.1:%d/0", port), cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("redis-server exited: %w", err)
		case <-time.After(20 * time.Millisecond): // waiting for a process to start, not a test sleep
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
		}
	}
}
