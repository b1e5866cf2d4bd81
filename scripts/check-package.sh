#!/usr/bin/env bash
# Installs a built Debian package (dist/fluent-bit-mimecast_*_amd64.deb by default) with dpkg,
# checks what it put where, and loads the installed plugin: in the bundled test host (fbhost),
# and in a real Fluent Bit through the installed plugins file when FLUENT_BIT_BIN names one,
# each pulling from the bundled simulator on loopback. Removes the package at the end.
# Needs root (dpkg). With qemu-user and libc6-arm64-cross it also runs the aarch64
# mimecast-check of dist/ against the simulator.
#   scripts/check-package.sh [PACKAGE.deb]
set -euo pipefail
cd "$(dirname "$0")/.."

deb=${1:-$(ls dist/fluent-bit-mimecast_*_amd64.deb 2>/dev/null | head -1)}
[ -f "$deb" ] || { echo "check-package.sh: no package (run scripts/release.sh first)" >&2; exit 2; }
lib=/usr/lib/fluent-bit-mimecast/libfluent_bit_mimecast.so
plugins=/etc/fluent-bit/plugins-mimecast.conf
version=$(dpkg-deb -f "$deb" Version)

work=$(mktemp -d)
sim_pid=
cleanup() {
    [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
    dpkg --purge fluent-bit-mimecast >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check-package.sh: $*" >&2; exit 1; }

echo "==> dpkg -i $deb"
dpkg -i "$deb"
for f in "$lib" /usr/bin/mimecast-check "$plugins" /usr/share/doc/fluent-bit-mimecast/examples/fluent-bit.yaml.example; do
    [ -f "$f" ] || fail "$f not installed"
done
[ -d /var/lib/fluent-bit/mimecast ] || fail "the default state_dir /var/lib/fluent-bit/mimecast was not created"
grep -qx "    Path $lib" "$plugins" || fail "$plugins does not load $lib"
[ "$(mimecast-check --version)" = "mimecast-check ${version%-*}" ] \
    || fail "mimecast-check --version says '$(mimecast-check --version)', the package is $version"
echo "    installed: $lib, /usr/bin/mimecast-check ($(mimecast-check --version)), $plugins"

cargo build --quiet -p mimecast-sim -p fbhost
. scripts/sim-host.sh
start_sim ./target/debug/mimecast-sim "$work/sim.out" --siem-rate 600

# One configuration for both hosts: the installed plugins file, the simulator, a state_dir of
# its own (the package's default one is root's, for the service).
host_config "$work/fluent-bit.conf" "$plugins" "\
    Tag              mimecast
    client_id        sim-client
    client_secret    sim-secret
    base_url         $base
    sources          siem_cg, audit
    initial_lookback 1h
    state_dir        $work/state"

count() { grep -c '"mimecast_source":' "$1" || true; }

# The aarch64 build cannot load into an x86_64 host; its mimecast-check (the same code, linked
# the same way) runs under qemu-user and probes the simulator.
arm=$(ls dist/mimecast-check-*-linux-aarch64 2>/dev/null | head -1 || true)
if [ -n "$arm" ] && command -v qemu-aarch64 >/dev/null && [ -d /usr/aarch64-linux-gnu/lib ]; then
    echo "==> $arm under qemu-aarch64 probes the simulator"
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm" -p client_id=sim-client -p client_secret=sim-secret \
        -p "base_url=$base" -p sources=siem_cg,audit > "$work/arm.out" 2>&1 \
        || { cat "$work/arm.out" >&2; fail "the aarch64 mimecast-check failed"; }
    grep -E '^(siem_cg|audit) ' "$work/arm.out" | sed 's/^/    /'
else
    echo "==> aarch64: SKIPPED (needs dist/mimecast-check-*-linux-aarch64, qemu-user and libc6-arm64-cross)"
fi

echo "==> the test host loads $lib"
./target/debug/fbhost -e "$lib" -c "$work/fluent-bit.conf" --exit-after 8s > "$work/fbhost.out" 2> "$work/fbhost.log" \
    || { tail -20 "$work/fbhost.log" >&2; fail "fbhost failed"; }
n=$(count "$work/fbhost.out")
[ "$n" -gt 0 ] || { tail -20 "$work/fbhost.log" >&2; fail "no records through fbhost"; }
grep -q "fluent-bit-mimecast ${version%-*}: collecting" "$work/fbhost.log" || fail "no version in the plugin's first line"
echo "    $n records"

if [ -n "${FLUENT_BIT_BIN:-}" ]; then
    echo "==> $("$FLUENT_BIT_BIN" --version | head -1) loads it through plugins_file $plugins"
    rm -rf "$work/state"
    set +e
    timeout --signal=TERM 10 "$FLUENT_BIT_BIN" -c "$work/fluent-bit.conf" > "$work/fb.out" 2> "$work/fb.log"
    set -e
    n=$(count "$work/fb.out")
    [ "$n" -gt 0 ] || { tail -20 "$work/fb.log" >&2; fail "no records through $FLUENT_BIT_BIN"; }
    echo "    $n records"
else
    echo "==> real Fluent Bit: SKIPPED (set FLUENT_BIT_BIN to load the installed plugin in one)"
fi
echo "==> package OK"
