package memphis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/memphisdev/memphis.go"
	"github.com/memphisdev/memphis.go/memphistest"
)

// canary is a secret no output may contain.
const canary = "hunter2-canary-9f3b"

// printings renders v every way a program might print or log it.
func printings(v any) []string {
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(verb, v))
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("value", "v", v)
		out = append(out, b.String())
	}
	return out
}

func noCanary(t *testing.T, what string, outputs ...string) {
	t.Helper()
	for _, s := range outputs {
		if strings.Contains(s, canary) {
			t.Errorf("%s shows the secret: %s", what, s)
		}
	}
}

// A connection, its options and its logs never show its password or token.
func TestSecretsNeverPrinted(t *testing.T) {
	for _, mode := range []string{"password", "token"} {
		t.Run(mode, func(t *testing.T) {
			var srv *memphistest.Server
			var cred memphis.Option
			if mode == "token" {
				srv = memphistest.NewServer(t, memphistest.WithToken(canary))
				cred = memphis.ConnectionToken(canary)
			} else {
				srv = memphistest.NewServer(t, memphistest.WithUser("root", canary))
				cred = memphis.Password(canary)
			}
			book := &logBook{}
			c, err := memphis.Connect(srv.Host(), srv.Username(), cred, memphis.Port(srv.Port()),
				memphis.Logger(slog.New(book)))
			if err != nil {
				t.Fatal(err)
			}
			noCanary(t, "a Conn", printings(c)...)
			if !strings.Contains(fmt.Sprint(c), c.ConnectionID()) {
				t.Errorf("a Conn prints as %q, without its id", fmt.Sprint(c))
			}
			opts := memphis.Options{Host: srv.Host(), Username: "root", Password: canary, ConnectionToken: canary}
			noCanary(t, "Options", printings(opts)...)
			noCanary(t, "*Options", printings(&opts)...)
			noCanary(t, "a memphistest.Server", printings(srv)...)
			// The connection drops and comes back: its log lines too.
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateStation("after-restart"); err != nil {
				t.Fatal(err)
			}
			c.Close()
			for _, e := range book.between(slog.LevelDebug, time.Time{}, time.Now().Add(time.Hour)) {
				noCanary(t, "log line "+e.msg, fmt.Sprint(e.attrs))
			}
			// The errors of a refused connection.
			_, err = memphis.Connect(srv.Host(), "nosuchuser", cred, memphis.Port(srv.Port()))
			if err == nil {
				t.Fatal("an unknown user connected")
			}
			noCanary(t, "the error of a refused connection", printings(err)...)
		})
	}
}

// Credentials written into the host are refused before anything is sent,
// and the error does not repeat them.
func TestCredentialsInHostRefused(t *testing.T) {
	for _, host := range []string{
		"nats://root:" + canary + "@localhost",
		"root:" + canary + "@localhost:6666",
		"localhost,https://u:" + canary + "@other",
	} {
		_, err := memphis.ConnectContext(context.Background(), host, "root", memphis.Password("x"))
		if !errors.Is(err, memphis.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", strings.ReplaceAll(host, canary, "…"), err)
		}
		noCanary(t, "the error", printings(err)...)
	}
}
