#!/usr/bin/env bash
# `make example`: the client-record system example against a freshly seeded server (issue 24).
# A temporary data directory (embedded SQLite) and a free port; `rekisteri demo seed --json`, then
# `serve`; the administrator registers the two systems' API clients; the day is replayed twice
# (the second run must create nothing: every answer a replay); check.py reads it all back.
# Exit 0 only if the pushed data is visible through the API exactly once.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${REKISTERI_BIN:-${CARGO_TARGET_DIR:-target}/debug/rekisteri}
PY=${CLIENT_PYTHON:-target/client-venv/bin/python}
HERE=examples/client-record-system

work=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export REKISTERI_DATA_DIR="$work/data" REKISTERI_BIND="127.0.0.1:$port" RUST_LOG=${RUST_LOG:-warn}
unset DATABASE_URL
base="http://127.0.0.1:$port"

echo "== seeding the demo in $work"
"$BIN" demo seed --json > "$work/seed.json"
"$BIN" serve > "$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
  if "$PY" -c "import httpx, sys; sys.exit(httpx.get('$base/health/ready').status_code != 200)" 2>/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$work/server.log"; echo "the server stopped" >&2; exit 1; fi
  sleep 0.5
done

read -r admin registrar provider < <("$PY" -c '
import json, sys
seed = json.load(open(sys.argv[1]))
admin = next(u["token"] for u in seed["users"] if u["role"] == "admin")
print(admin, seed["registrars"][0]["id"], seed["provider"]["id"])' "$work/seed.json")

cd "$HERE"
echo "== the administrator registers the systems' API clients"
"../../$PY" provision.py --base-url "$base" --admin-token "$admin" --registrar "$registrar" --provider "$provider" \
  --out "$work/credentials.json"
common=(--base-url "$base" --credentials "$work/credentials.json" --registrar "$registrar")
echo "== replaying day.csv"
"../../$PY" replay.py "${common[@]}" --provider "$provider" --csv day.csv
echo "== replaying day.csv again: every push is answered from its Idempotency-Key, nothing is created twice"
"../../$PY" replay.py "${common[@]}" --provider "$provider" --csv day.csv | tee "$work/again.txt"
if ! grep -Eq '^summary: .* 0 created, [1-9][0-9]* replayed, .* 0 failed' "$work/again.txt"; then
  echo "the second run created something" >&2
  exit 1
fi
echo "== checking through the API"
"../../$PY" check.py "${common[@]}" --csv day.csv
