#!/usr/bin/env bash
# Benchmark: builds in release and prints the in-process limit, the plugin path figures and
# their ratio. `scripts/bench.sh --long` uses a 5M-event backlog; `--events N` sets any size;
# `--types receipt,spam` limits the backlog to those SIEM types (all ten by default);
# `--prop key=value` (repeatable) adds a plugin property, e.g. `--prop buffer_max_size=8M`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --quiet
exec target/release/mimecast-bench "$@"
