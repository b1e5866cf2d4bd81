#!/usr/bin/env bash
# The main job: builds the plugin, starts the bundled Mimecast API simulator on loopback and
# pulls logs from it through the plugin. Uses a real `fluent-bit` when one is on PATH, the
# bundled test host (fbhost) otherwise. Shows the first few records as the host printed them,
# then a summary of everything it printed (records per source and SIEM type, event times, the
# simulator's endpoints), then how to point the plugin at a real tenant.
#   DEMO_RECORDS  records shown as they arrive (default 5); the summary counts all of them
#   DEMO_SECONDS  how long the host runs (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

records=${DEMO_RECORDS:-5}
seconds=${DEMO_SECONDS:-10}
case "$records$seconds" in
    *[!0-9]*) echo "DEMO_RECORDS and DEMO_SECONDS take whole numbers" >&2; exit 2 ;;
esac

echo "==> building (cargo build --release)" >&2
cargo build --release --quiet

work=$(mktemp -d)
sim_pid=
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

. scripts/sim-host.sh
start_sim ./target/release/mimecast-sim "$work/sim.out" --siem-rate 120
echo "==> Mimecast API simulator at $base (synthetic data, loopback only)" >&2

lib="$PWD/target/release/libfluent_bit_mimecast.so"
printf '[PLUGINS]\n    Path %s\n' "$lib" > "$work/plugins.conf"
host_config "$work/fluent-bit.conf" "$work/plugins.conf" "\
    Tag              mimecast.siem
    client_id        sim-client
    client_secret    \${MIMECAST_CLIENT_SECRET}
    base_url         $base
    siem_types       receipt, delivery, url protect
    # SIEM batch starts from whole days (its start is a date): this reads from midnight UTC
    initial_lookback 1h
    state_dir        $work/state"
export MIMECAST_CLIENT_SECRET=sim-secret

# The host prints every record as a JSON line; fbhost --summarize shows the first $records and
# summarises them all once the host stops.
summarize=(./target/release/fbhost --summarize "$records" --sim "$base")
if command -v fluent-bit >/dev/null 2>&1; then
    host=$(command -v fluent-bit)
    echo "==> running $host for ${seconds}s; the first $records records it printed:" >&2
    set +e
    timeout --foreground --signal=TERM "$seconds" fluent-bit -c "$work/fluent-bit.conf" \
        2> "$work/host.log" | "${summarize[@]}"
    status=("${PIPESTATUS[@]}")
    set -e
    case "${status[0]}" in 0 | 124) host_ok=yes ;; *) host_ok=no ;; esac # 124: timed out, as meant
else
    host="fbhost (no fluent-bit on PATH: the bundled test host)"
    echo "==> running $host for ${seconds}s; the first $records records it printed:" >&2
    set +e
    ./target/release/fbhost -e "$lib" -c "$work/fluent-bit.conf" --exit-after "${seconds}s" \
        2> "$work/host.log" | "${summarize[@]}"
    status=("${PIPESTATUS[@]}")
    set -e
    case "${status[0]}" in 0) host_ok=yes ;; *) host_ok=no ;; esac
fi

echo "==> the plugin's log lines" >&2
grep -F 'input:mimecast' "$work/host.log" | grep -vE 'initializing|storage_strategy|thread instance' >&2 || true
if [ "$host_ok" != yes ] || [ "${status[1]}" != 0 ]; then
    echo "==> the host exited with status ${status[0]}; the end of its log:" >&2
    tail -n 30 "$work/host.log" >&2
    exit 1
fi

cat <<NEXT
==> next steps: your own tenant
    Create an API 2.0 application (Administration > Services > API and Platform Integrations);
    SIEM batch needs 'Security Events and Data Retrieval | Threat and Security Events (SIEM) | Read'.
    export MIMECAST_CLIENT_ID=... MIMECAST_CLIENT_SECRET=...
    1. check the credentials and what each source reaches (one request per source, nothing saved):
         target/release/mimecast-check -p 'client_id=\${MIMECAST_CLIENT_ID}' -p 'client_secret=\${MIMECAST_CLIENT_SECRET}' -p sources=siem_cg,audit --sample
       add -p base_url=https://uk-api.services.mimecast.com (or us-api) for a regional gateway
    2. start from an example configuration and check it the same way:
         fluent-bit.conf.example  classic: one instance per source, error records routed apart
         fluent-bit.yaml.example  YAML: all sources in one instance, re-tagged per source
         cp fluent-bit.yaml.example fluent-bit.yaml && target/release/mimecast-check -c fluent-bit.yaml
    3. install target/release/libfluent_bit_mimecast.so where the example's plugins entry points
       (README: Install and load into Fluent Bit), then: fluent-bit -c fluent-bit.yaml
NEXT
