#!/usr/bin/env bash
# The main job: builds the plugin, starts the bundled Mimecast API simulator on loopback and
# pulls logs from it through the plugin, printing records as JSON lines. Uses a real
# `fluent-bit` when one is on PATH, the bundled test host (fbhost) otherwise.
#   DEMO_SECONDS  how long fluent-bit runs (default 20)
#   DEMO_RECORDS  fbhost stops after this many records (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${DEMO_SECONDS:-20}
records=${DEMO_RECORDS:-200}

echo "==> building (cargo build --release)" >&2
cargo build --release --workspace --quiet

work=$(mktemp -d)
sim_pid=
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

./target/release/mimecast-sim --port 0 --siem-rate 120 > "$work/sim.out" &
sim_pid=$!
for _ in $(seq 100); do
    grep -q '^listening ' "$work/sim.out" 2>/dev/null && break
    sleep 0.1
done
base=$(awk '/^listening / {print $2}' "$work/sim.out")
[ -n "$base" ] || { echo "simulator did not start" >&2; exit 1; }
echo "==> Mimecast API simulator at $base" >&2

lib="$PWD/target/release/libfluent_bit_mimecast.so"
printf '[PLUGINS]\n    Path %s\n' "$lib" > "$work/plugins.conf"
cat > "$work/fluent-bit.conf" <<CONF
[SERVICE]
    flush        1
    log_level    info
    plugins_file $work/plugins.conf

[INPUT]
    Name             mimecast
    Tag              mimecast.siem
    client_id        sim-client
    client_secret    \${MIMECAST_CLIENT_SECRET}
    base_url         $base
    siem_types       receipt, delivery, url protect
    initial_lookback 1h
    state_dir        $work/state

[OUTPUT]
    Name   stdout
    Match  *
    Format json_lines
CONF
export MIMECAST_CLIENT_SECRET=sim-secret

if command -v fluent-bit >/dev/null 2>&1; then
    echo "==> running $(command -v fluent-bit) for ${seconds}s" >&2
    timeout --signal=TERM "$seconds" fluent-bit -c "$work/fluent-bit.conf" || true
else
    echo "==> no fluent-bit on PATH: running the bundled test host (fbhost)" >&2
    ./target/release/fbhost -e "$lib" -c "$work/fluent-bit.conf" --exit-after-records "$records"
fi
