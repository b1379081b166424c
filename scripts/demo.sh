#!/usr/bin/env bash
# The main job on a working default: a private Mosquitto on loopback, a simulated
# board on a pseudo-terminal, the gateway between them, and the messages as they arrive;
# a second simulated board is the siren of the gateway's alarm, and prints what it is told.
# Runs until Ctrl-C, or for DEMO_SECONDS seconds. Stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build -c release --product wiregate
bin=.build/release/wiregate
run=$(mktemp -d /tmp/wiregate-demo.XXXXXX)
port=${DEMO_PORT:-18830}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT INT TERM

cat > "$run/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
user root
CONF
mosquitto -c "$run/mosquitto.conf" > "$run/mosquitto.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do mosquitto_pub -p "$port" -t probe -n 2>/dev/null && break; sleep 0.1; done

"$bin" simulate --protocol kv --rate 2 --link "$run/board" > "$run/board.log" 2>&1 & pids+=($!)
# The siren: a heartbeat every 5 s, and every command it is written printed here ("command: SIREN=ON").
echo "heartbeat=1" > "$run/siren.lines"
# (Through a process substitution, so that $! is the simulator's own PID.)
"$bin" simulate --protocol kv --file "$run/siren.lines" --rate 0.2 --link "$run/siren" \
  > >(sed -u 's/^/siren board: /') 2>&1 & pids+=($!)
for _ in $(seq 50); do [ -e "$run/board" ] && [ -e "$run/siren" ] && break; sleep 0.1; done
# The alarm's one code, 1234, kept as its yescrypt hash (Debian's whois package).
hash=$(echo 1234 | mkpasswd -m yescrypt --stdin)

# Prometheus metrics beside the broker's port (the installed default is 9723).
metrics_port=$((port + 1))

cat > "$run/wiregate.yaml" <<CONF
gateway: { id: demo-house, state_dir: $run/state }
mqtt: { host: 127.0.0.1, port: $port, base_topic: wiregate }
metrics: { listen: "127.0.0.1:$metrics_port" }
boards:
  - name: front-door
    match: { path: $run/board }
    protocol: kv
    settle: 500ms
    classes: { door: critical, "*": telemetry }
    commands: [ "SIREN=ON", "SIREN=OFF", "PING" ]
  - name: siren
    match: { path: $run/siren }
    protocol: kv
    settle: 500ms
    commands: [ "SIREN=ON", "SIREN=OFF" ]
alarm:
  exit_delay: { away: 5s }
  entry_delay: { away: 10s }
  siren_timeout: 30s
  codes: [ { name: demo, hash: '$hash' } ]
  zones:
    - { name: front door, board: front-door, key: door, open: open, type: delayed }
  sirens: [ { board: siren, on: "SIREN=ON", off: "SIREN=OFF" } ]
CONF
"$bin" check-config --config "$run/wiregate.yaml"
"$bin" run --config "$run/wiregate.yaml" > "$run/wiregate.log" 2>&1 & pids+=($!)

broker_pid=${pids[0]}
echo "broker 127.0.0.1:$port (pid $broker_pid), gateway log $run/wiregate.log; try in another shell:"
echo "  mosquitto_pub -p $port -t wiregate/demo-house/front-door/set -m SIREN=ON     # a command to the board"
echo "  $PWD/$bin status --config $run/wiregate.yaml                     # the journal's backlog"
echo "  curl -s http://127.0.0.1:$metrics_port/metrics | grep ^wiregate_        # the Prometheus metrics"
echo "  mosquitto_sub -p $port -t wiregate/demo-house/health -C 1                  # the health report"
echo "  kill $broker_pid; sleep 10; mosquitto -d -c $run/mosquitto.conf      # pull the broker's plug, then back"
echo "the alarm, with the broker stopped (the board's door opens every 10 s; the code is 1234):"
echo "  $PWD/$bin alarm arm away --config $run/wiregate.yaml"
echo "  kill $broker_pid       # then wait: 'siren board: command: SIREN=ON' after the entry delay"
echo "  $PWD/$bin alarm disarm --config $run/wiregate.yaml    # asks for the code; the siren is told SIREN=OFF"
echo "messages on wiregate/# (Ctrl-C to stop):"
if [ -n "${DEMO_SECONDS:-}" ]; then
  timeout "$DEMO_SECONDS" mosquitto_sub -p "$port" -t 'wiregate/#' -v || true
else
  mosquitto_sub -p "$port" -t 'wiregate/#' -v
fi
