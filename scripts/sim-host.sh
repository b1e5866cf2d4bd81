# Sourced by demo.sh and check-package.sh: the bundled simulator, and a Fluent Bit configuration
# that reads it through the plugin and prints records as JSON lines.

# start_sim SIM_BIN OUT_FILE [simulator options...]: starts the simulator on a free loopback
# port; sets sim_pid and base (its URL), or exits.
start_sim() {
    local bin=$1 out=$2
    shift 2
    "$bin" --port 0 "$@" > "$out" &
    sim_pid=$!
    for _ in $(seq 100); do
        grep -q '^listening ' "$out" 2>/dev/null && break
        sleep 0.1
    done
    base=$(awk '/^listening / {print $2}' "$out")
    [ -n "$base" ] || { echo "the simulator did not start" >&2; exit 1; }
}

# host_config FILE PLUGINS_FILE INPUT_LINES: a classic configuration loading the plugin from
# PLUGINS_FILE, with one mimecast input made of INPUT_LINES (indented property lines), and the
# stdout output in json_lines.
host_config() {
    cat > "$1" <<CONF
[SERVICE]
    flush        1
    grace        1
    log_level    info
    plugins_file $2

[INPUT]
    Name             mimecast
$3

[OUTPUT]
    Name   stdout
    Match  *
    Format json_lines
CONF
}
