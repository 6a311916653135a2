package memphis

import (
	"fmt"
	"log/slog"
	"strings"
)

// This file keeps credentials out of everything the SDK prints: values
// that hold a password or a token (Options, Conn) format and log with
// them redacted, whatever the fmt verb or slog handler, and a host given
// with credentials in it is refused without echoing them.

// redacted stands in for a secret.
const redacted = "[redacted]"

func redact(secret string) string {
	if secret == "" {
		return ""
	}
	return redacted
}

// Format prints the options as fmt would, but with Password,
// ConnectionToken and credentials written into Host redacted, whatever the
// verb, so that printing or logging a configuration never shows a secret.
func (o Options) Format(f fmt.State, verb rune) {
	type options Options // the fields without this method
	r := options(o)
	r.Password, r.ConnectionToken = redact(r.Password), redact(r.ConnectionToken)
	r.Host = redactHosts(r.Host)
	fmt.Fprintf(f, fmt.FormatString(f, verb), r)
}

// LogValue is what slog logs for the options: the connection settings,
// with Password and ConnectionToken redacted.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", redactHosts(o.Host)),
		slog.Int("port", o.Port),
		slog.String("username", o.Username),
		slog.Int("account_id", o.AccountId),
		slog.String("password", redact(o.Password)),
		slog.String("connection_token", redact(o.ConnectionToken)),
		slog.Bool("tls", o.TLSConfig != nil || o.TLSOpts.TlsCert != ""),
	)
}

// Format prints the connection as its id, user and host, whatever the
// verb: a Conn holds its credentials, which must never be printed.
func (c *Conn) Format(f fmt.State, _ rune) {
	if c == nil {
		fmt.Fprint(f, "memphis.Conn(nil)")
		return
	}
	fmt.Fprintf(f, "memphis.Conn{id: %s, user: %s, host: %s}", c.connID, c.username, redactHosts(c.opts.Host))
}

// LogValue is what slog logs for the connection: its id, user and host.
func (c *Conn) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("connection_id", c.connID),
		slog.String("username", c.username),
		slog.String("host", redactHosts(c.opts.Host)),
	)
}

// redactHosts replaces credentials written into hosts ("user:pw@host") by
// a placeholder.
func redactHosts(hosts string) string {
	parts := strings.Split(hosts, ",")
	for i, h := range parts {
		if at := strings.LastIndex(h, "@"); at >= 0 {
			start := 0
			if s := strings.Index(h, "://"); s >= 0 && s < at {
				start = s + 3
			}
			parts[i] = h[:start] + redacted + h[at:]
		}
	}
	return strings.Join(parts, ",")
}
