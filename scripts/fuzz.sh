#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time with no sanitizer (`-s none`),
# seeded with the public samples in ../shared/samples; fails on any panic. cargo-fuzz drives
# libFuzzer, which needs the compiler's unstable flags: RUSTC_BOOTSTRAP lets this machine's one
# stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${ORDO_FUZZ_SECONDS:-15}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
samples="$(cd .. && pwd)/shared/samples"
corpus="$(mktemp -d)"
trap 'rm -rf "$corpus"' EXIT
mkdir -p "$corpus"/{x12,channel_orders,settlements,csv_imports}
cp "$samples"/x12/*.edi "$corpus/x12/"
cp "$samples"/shopify/*.json "$samples"/walmart/*.json "$samples"/magento/*.json "$samples"/amazon/*.json "$corpus/channel_orders/"
cp "$samples"/amazon/*.txt "$samples"/shopify/*payouts*.json "$corpus/settlements/"
cp crates/ordo/tests/fixtures/*.csv "$corpus/csv_imports/"
export RUSTC_BOOTSTRAP=1
for target in x12 channel_orders settlements csv_imports; do
  echo "== fuzz $target (${SECONDS_PER_TARGET}s)"
  log="$corpus/$target.log"
  if ! cargo fuzz run --fuzz-dir fuzz -s none "$target" "$corpus/$target" -- \
      -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed: the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E 'stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" || tail -n 3 "$log"
done
echo "fuzzing: no panic"
