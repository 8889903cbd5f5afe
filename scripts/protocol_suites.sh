#!/usr/bin/env bash
# Run the official Engine.IO and Socket.IO protocol test suites against a host.
#
#   scripts/protocol_suites.sh [ENGINEIO_REPO_GIT_DIR] [SOCKETIO_REPO_GIT_DIR]
#
# The suites are the test-suite/ folders of socketio/engine.io-protocol and
# socketio/socket.io-protocol. Their code is never committed here: this script
# extracts them from local git copies of those repositories (bare git dirs, by
# default the mirrors under /work/.mirror), installs their npm modules from their
# own lockfiles into a scratch folder, and runs them with mocha against
# `tkr-host serve` on a free loopback port, with the heartbeat the suites expect
# (ping_interval_s = 0.3, ping_timeout_s = 0.2).
#
# Only the suites' URL is adapted: their server address, and the Engine.IO suite's
# path (/engine.io/ -> /socket.io/, the host's). docs/operations.md lists the
# figures and the tests that do not apply to the host (it has no `/` namespace and
# no echo handler). The exit code is mocha's of the last failing suite (non-zero
# is expected: the tests that do not apply fail).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
EIO_GIT="${1:-/work/.mirror/socketio+engine.io-protocol/repo}"
SIO_GIT="${2:-/work/.mirror/socketio+socket.io-protocol/repo}"
WORK="${PROTOCOL_SUITES_DIR:-$(mktemp -d /tmp/tkr-protocol-suites.XXXXXX)}"
PYTHON="$ROOT/.venv/bin/python"

for repo in "$EIO_GIT" "$SIO_GIT"; do
  git --git-dir="$repo" rev-parse HEAD >/dev/null 2>&1 || { echo "not a git directory: $repo" >&2; exit 2; }
done

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"

mkdir -p "$WORK/eio" "$WORK/sio" "$WORK/var"
git --git-dir="$EIO_GIT" archive HEAD test-suite | tar -x -C "$WORK/eio"
git --git-dir="$SIO_GIT" archive HEAD test-suite | tar -x -C "$WORK/sio"
sed -i "s#http://localhost:3000#$URL#; s#/engine.io/#/socket.io/#g" "$WORK/eio/test-suite/test-suite.js"
sed -i "s#http://localhost:3000#$URL#" "$WORK/sio/test-suite/test-suite.js"
for suite in eio sio; do
  (cd "$WORK/$suite/test-suite" && npm ci --no-audit --no-fund --silent)
done

cat >"$WORK/host.toml" <<EOF
bind = ["127.0.0.1:$PORT"]
[host]
ping_interval_s = 0.3
ping_timeout_s = 0.2
# The suites' "no handshake" test waits 2 s (mocha's timeout) for the close.
connect_timeout_s = 1.0
# Every test session comes from 127.0.0.1 and most never connect a namespace.
max_unconnected_sessions_per_address = 10000
[plugins.auth_jwt]
secret = "protocol-suites-secret-not-used-for-anything"
[plugins.store_peewee]
url = "sqlite:///$WORK/var/tkr.db"
EOF

"$ROOT/.venv/bin/tkr-host" serve --config "$WORK/host.toml" >"$WORK/host.log" 2>&1 &
HOST_PID=$!
trap 'kill -TERM $HOST_PID 2>/dev/null; wait $HOST_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if curl -fsS "$URL/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$HOST_PID" 2>/dev/null || { cat "$WORK/host.log" >&2; exit 2; }
  sleep 0.1
done

status=0
for suite in eio sio; do
  echo "== ${suite/eio/Engine.IO}" | sed 's/sio/Socket.IO/'
  (cd "$WORK/$suite/test-suite" && npx mocha --exit --reporter spec test-suite.js) || status=$?
done
echo "scratch folder (suites, host log): $WORK"
exit $status
