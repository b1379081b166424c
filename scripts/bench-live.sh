#!/usr/bin/env bash
# Benchmark: a simulated board sends RATE lines/s for SECONDS seconds through the
# release gateway to a private mosquitto; counts what a QoS 1 subscriber received
# (every sequence number between the first and the last must be there) and samples
# the daemon's resident memory every 5 s. Usage: scripts/bench-live.sh [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-1000}; seconds=${2:-60}
./scripts/install-deps.sh
swift build -c release --product wiregate >/dev/null
bin=.build/release/wiregate
run=$(mktemp -d /tmp/wiregate-bench.XXXXXX)
port=${BENCH_PORT:-18840}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$run"; }
trap cleanup EXIT INT TERM
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\nmax_queued_messages 0\n' "$port" > "$run/mosquitto.conf"
mosquitto -c "$run/mosquitto.conf" > "$run/mosquitto.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do mosquitto_pub -p "$port" -t probe -n 2>/dev/null && break; sleep 0.1; done
stdbuf -oL mosquitto_sub -p "$port" -q 1 -t 'wiregate/bench/sim/line' > "$run/received" & pids+=($!)
"$bin" simulate --protocol raw --rate "$rate" --count $((rate * seconds)) --link "$run/board" > "$run/board.log" 2>&1 &
sim=$!; pids+=($sim)
for _ in $(seq 50); do [ -e "$run/board" ] && break; sleep 0.1; done
cat > "$run/wiregate.yaml" <<CONF
gateway: { id: bench, state_dir: $run }
mqtt: { host: 127.0.0.1, port: $port }
log: { level: warning }
boards:
  - { name: sim, match: { path: $run/board }, protocol: raw, settle: 0s }
CONF
"$bin" run --config "$run/wiregate.yaml" > "$run/wiregate.log" 2>&1 & gw=$!; pids+=($gw)
echo "rss_kib_every_5s:"
while kill -0 "$sim" 2>/dev/null; do
  printf ' %s' "$(awk '/VmRSS/ {print $2}' /proc/$gw/status)"; sleep 5
done
echo
sleep 2
python3 - "$run/received" "$rate" "$seconds" <<'PY'
import re, sys
seqs = [int(m.group(1)) for m in (re.match(r"seq=(\d+) ", l) for l in open(sys.argv[1])) if m]
rate, seconds = int(sys.argv[2]), int(sys.argv[3])
first, last = min(seqs), max(seqs)
missing = set(range(first, last + 1)) - set(seqs)
print(f"sent {rate * seconds} lines at {rate}/s; received seq {first}..{last}: {len(set(seqs))} distinct, "
      f"{len(missing)} missing in between, {len(seqs) - len(set(seqs))} duplicates")
PY
echo "command: scripts/bench-live.sh $rate $seconds"
