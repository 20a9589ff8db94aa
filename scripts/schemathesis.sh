#!/usr/bin/env bash
# Runs schemathesis (every default check) against a live `ordo serve` over the demo retailer.
# Part of the README's test command; needs the `ordo` binary that `cargo test` built.
# SCHEMATHESIS_MAX_EXAMPLES and SCHEMATHESIS_SEED override the defaults below.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${ORDO_BIN:-${CARGO_TARGET_DIR:-target}/debug/ordo}"
[ -x "$bin" ] || cargo build --locked -p ordo
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi
work="$(mktemp -d)"
db="$work/schemathesis.db"
"$bin" demo --db "$db" >/dev/null
ORDO_PASSWORD="$(head -c 18 /dev/urandom | base64)" "$bin" --db "$db" user add schemathesis --role admin >/dev/null
token="$("$bin" --db "$db" token create --user schemathesis | awk 'END { print $NF }')"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ORDO_SHOPIFY_WEBHOOK_SECRET="$(head -c 18 /dev/urandom | base64)" \
  "$bin" --db "$db" serve --addr "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
schemathesis --config-file scripts/schemathesis.toml run "http://127.0.0.1:$port/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
  --seed "${SCHEMATHESIS_SEED:-20261127}" \
  --no-color
