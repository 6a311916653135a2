// Command memphis-devbroker runs the in-process Memphis-compatible broker
// standalone, for local development: any Memphis SDK (Go, Node.js, Python)
// connects to it as to a real Memphis broker.
//
//	go run ./cmd/memphis-devbroker -port 6666
//
// It runs until interrupted. State is kept in -data when given, else in a
// temporary directory removed on exit.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/memphisdev/memphis.go/memphistest"
)

func main() {
	port := flag.Int("port", 6666, "client port")
	host := flag.String("host", "127.0.0.1", "interface to listen on")
	user := flag.String("user", memphistest.DefaultUsername, "user name")
	pass := flag.String("password", memphistest.DefaultPassword, "password (user/password mode)")
	token := flag.String("token", "", "connection token: switches to token mode")
	data := flag.String("data", "", "directory to keep state in (default: temporary)")
	verbose := flag.Bool("v", false, "log the broker's warnings")
	flag.Parse()

	opts := []memphistest.Option{
		memphistest.WithHost(*host), memphistest.WithPort(*port), memphistest.WithUser(*user, *pass),
	}
	if *token != "" {
		opts = append(opts, memphistest.WithToken(*token))
	}
	if *data != "" {
		opts = append(opts, memphistest.WithStorageDir(*data))
	}
	if *verbose {
		opts = append(opts, memphistest.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	}
	srv, err := memphistest.Start(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memphis-devbroker:", err)
		os.Exit(1)
	}
	defer srv.Shutdown()

	fmt.Printf("Memphis dev broker listening on %s:%d\n", srv.Host(), srv.Port())
	if srv.Token() != "" {
		fmt.Printf("connect: memphis.Connect(%q, %q, memphis.ConnectionToken(%q), memphis.Port(%d))\n",
			srv.Host(), srv.Username(), srv.Token(), srv.Port())
	} else {
		fmt.Printf("connect: memphis.Connect(%q, %q, memphis.Password(%q), memphis.Port(%d))\n",
			srv.Host(), srv.Username(), srv.Password(), srv.Port())
	}
	fmt.Println("press Ctrl-C to stop")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Println("stopping")
}
