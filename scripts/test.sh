#!/usr/bin/env bash
# Runs every test: unit, property, CLI, the store conformance suite on SQLite AND PostgreSQL
# (127.0.0.1:5432, trust auth; each test creates its own fresh database), the event bus relay
# against its own nats-server, the live API under schemathesis, and the fuzz targets.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
# The live API against its own OpenAPI document (schemathesis, every default check).
bash scripts/schemathesis.sh
# Every parser of outside input under libFuzzer for a bounded time: no panic.
bash scripts/fuzz.sh
