#!/usr/bin/env bash
# Benchmark: builds in release and prints the in-process limit, the plugin path figures and
# their ratio. `scripts/bench.sh --long` uses a 5M-event backlog; `--events N` sets any size;
# `--types receipt,spam` limits the backlog to those SIEM types (all ten by default);
# `--prop key=value` (repeatable) adds a plugin property, e.g. `--prop buffer_max_size=8M`;
# `--repeat N` runs N rounds of limit and plugin path, alternating, and prints the medians (on a
# shared machine one round's ratio can be off by a third); `--no-rhythm` leaves out the control
# run of the limit in the host's collect rhythm.
#
# With FLUENT_BIT_BIN naming a real Fluent Bit: `--vs-tail` runs Fluent Bit's own tail input (on
# the backlog's records as one NDJSON file) and the plugin (on the simulator) in it, and prints
# rate, host CPU per record, peak and steady RSS, first record, and the plugin's ratios to tail;
# `--soak MINUTES` runs the plugin alone with a hot reload every minute and prints its RSS;
# `--latency ROUNDS` times records to a destination (the http output to a listener): the first
# after start, and those of newly published batch files from the moment the plugin read them.
#
# `scripts/bench.sh --instructions [options]` counts instructions instead of timing them
# (valgrind's callgrind: the same count for the same build and inputs, however busy or noisy
# the machine): the limit's per-file decoding, and the whole fbhost process of the plugin path
# (plugin + host). Slow (about 50x), so its default backlog is 200k events.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --quiet

if [ "${1:-}" != "--instructions" ]; then
    exec target/release/mimecast-bench "$@"
fi
shift
if ! command -v valgrind >/dev/null; then
    echo "bench.sh --instructions needs valgrind: apt-get install valgrind" >&2
    exit 2
fi
case " $* " in *" --repeat "*)
    echo "bench.sh --instructions: no --repeat; the count is the same every time" >&2
    exit 2
    ;;
esac
args=("$@")
case " $* " in *" --events "* | *" --long "*) ;; *) args=(--events 200000 "${args[@]}") ;; esac
# One pass of the limit only: the control run in the host's rhythm would be counted too.
args=(--no-rhythm "${args[@]}")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
release="$PWD/target/release"
ln -s "$release/libfluent_bit_mimecast.so" "$work/"
# The bench starts fbhost from BENCH_TARGET_DIR: this one runs the real one under callgrind.
cat >"$work/fbhost" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/host.%p" "$release/fbhost" "\$@"
EOF
chmod +x "$work/fbhost"

status=0
BENCH_TARGET_DIR="$work" valgrind --tool=callgrind --collect-atstart=no \
    --toggle-collect='mimecast_bench::decode_file' --callgrind-out-file="$work/limit.out" \
    "$release/mimecast-bench" "${args[@]}" >"$work/bench.txt" 2>"$work/valgrind.txt" || status=$?

totals() { sed -n 's/^totals: //p' "$1"; }
# The bench's key=value line for its round (only one round here).
figure() { sed -n "s/^figures: .*\b$1=\([0-9.]*\).*/\1/p" "$work/bench.txt" | head -1; }
limit_records=$(figure limit_records)
path_records=$(figure path_records)
limit_ir=$(totals "$work/limit.out")
# Per fbhost run (the plugin path, and the idle baseline) one file per thread, host.PID-NN:
# the plugin path is the run with the most instructions, its plugin share the pulling thread.
read -r path_ir pull_ir < <(for f in "$work"/host.*-*; do
    pid=${f##*/host.}; echo "${pid%%-*} $(totals "$f")"; done |
    awk '{sum[$1] += $2; if ($2 > top[$1]) top[$1] = $2}
         END {for (p in sum) if (sum[p] > best) {best = sum[p]; pull = top[p]}; print best, pull}')
head -1 "$work/bench.txt"
if [ "$status" -ne 0 ] || [ -z "$limit_records" ] || [ -z "$path_records" ] || [ "$path_records" = 0 ]; then
    echo "the benchmark run failed (exit $status):" >&2
    cat "$work/bench.txt" "$work/valgrind.txt" >&2
    exit 1
fi
awk -v lr="$limit_records" -v li="$limit_ir" -v pr="$path_records" -v pi="$path_ir" -v pu="$pull_ir" 'BEGIN {
    printf "\ninstructions (callgrind; deterministic for a given build and backlog)\n"
    printf "   in-process limit   %d records, %.0f instructions/record\n", lr, li / lr
    printf "   plugin path        %d records, %.0f instructions/record (whole fbhost process: plugin and host)\n", pr, pi / pr
    printf "   of which plugin    %.0f instructions/record (its pulling thread; the rest is the host taking the records in)\n", pu / pr
    printf "   ratio              %.3fx (plugin alone: %.3fx)\n", (pi / pr) / (li / lr), (pu / pr) / (li / lr)
}'
