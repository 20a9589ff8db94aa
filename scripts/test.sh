#!/usr/bin/env bash
# Runs every test: unit, property, CLI and the store conformance suite on SQLite AND PostgreSQL
# (127.0.0.1:5432, trust auth; each test creates its own fresh database).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
# The live API against its own OpenAPI document (schemathesis, every default check).
bash scripts/schemathesis.sh
