#!/usr/bin/env bash
# run.sh COMMAND...: runs COMMAND against the broker at MEMPHIS_HOST, or, when
# it is unset, against two dev brokers built from this repository on free
# ports: one in password mode (MEMPHIS_HOST, MEMPHIS_PORT) and one in token
# mode (INTEROP_TOKEN_PORT, INTEROP_TOKEN). MEMPHIS_KIND tells the command
# which broker it talks to: "dev broker" or "Memphis 1.4.4".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# kind_of HOST PORT: the dev broker reports the NATS version of the
# nats-server the root module requires; Memphis 1.4.4 reports its fork's.
kind_of() {
	local want info
	want=$(sed -n 's|^[[:space:]]*github.com/nats-io/nats-server/v2 v\([^ ]*\).*|\1|p' "$root/go.mod")
	exec 3<>"/dev/tcp/$1/$2"
	IFS= read -r -t 10 info <&3
	exec 3<&-
	case "$info" in
	*"\"version\":\"$want\""*) echo "dev broker" ;;
	*) echo "Memphis 1.4.4" ;;
	esac
}

if [ -n "${MEMPHIS_HOST:-}" ]; then
	MEMPHIS_KIND=$(kind_of "$MEMPHIS_HOST" "${MEMPHIS_PORT:-6666}")
	export MEMPHIS_KIND
	echo "interop: $MEMPHIS_KIND at $MEMPHIS_HOST:${MEMPHIS_PORT:-6666}"
	exec "$@"
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
(cd "$root" && go build -o "$tmp/memphis-devbroker" ./cmd/memphis-devbroker)

# start NAME ARGS...: starts a dev broker on a free port; its port is left
# in $port.
start() {
	local name=$1
	shift
	port=""
	"$tmp/memphis-devbroker" -port 0 "$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 600); do
		port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$tmp/$name.log" 2>/dev/null || true)
		if [ -n "$port" ]; then return; fi
		sleep 0.1
	done
	echo "interop: the $name dev broker did not start:" >&2
	cat "$tmp/$name.log" >&2
	exit 1
}
start token -token interop-token
tport=$port
start password
export MEMPHIS_HOST=127.0.0.1 MEMPHIS_PORT=$port MEMPHIS_KIND="dev broker" INTEROP_TOKEN_PORT=$tport INTEROP_TOKEN=interop-token
echo "interop: dev brokers on $port (password) and $tport (token)"
"$@"
