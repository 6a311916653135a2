// Package env connects the examples to a broker: the one named by
// MEMPHIS_HOST (with MEMPHIS_PORT, MEMPHIS_USER, MEMPHIS_PASSWORD or
// MEMPHIS_TOKEN), or else an in-process broker started for the run.
package env

import (
	"fmt"
	"os"
	"strconv"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
)

// Connect returns a connection and a function that closes it (and stops the
// in-process broker, if one was started).
func Connect(opts ...memphis.Option) (*memphis.Conn, func(), error) {
	host := os.Getenv("MEMPHIS_HOST")
	if host == "" {
		srv, err := memphistest.Start()
		if err != nil {
			return nil, nil, fmt.Errorf("starting the in-process broker: %w", err)
		}
		opts = append([]memphis.Option{memphis.Port(srv.Port()), memphis.Password(srv.Password())}, opts...)
		c, err := memphis.Connect(srv.Host(), srv.Username(), opts...)
		if err != nil {
			srv.Shutdown()
			return nil, nil, err
		}
		fmt.Printf("using an in-process broker on %s:%d (set MEMPHIS_HOST to use another)\n", srv.Host(), srv.Port())
		return c, func() { c.Close(); srv.Shutdown() }, nil
	}
	user := getenv("MEMPHIS_USER", "root")
	base := []memphis.Option{}
	if p := os.Getenv("MEMPHIS_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil {
			return nil, nil, fmt.Errorf("MEMPHIS_PORT: %w", err)
		}
		base = append(base, memphis.Port(port))
	}
	if tok := os.Getenv("MEMPHIS_TOKEN"); tok != "" {
		base = append(base, memphis.ConnectionToken(tok))
	} else {
		base = append(base, memphis.Password(getenv("MEMPHIS_PASSWORD", "memphis")))
	}
	c, err := memphis.Connect(host, user, append(base, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	fmt.Printf("using the broker at %s\n", host)
	return c, c.Close, nil
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
