#!/usr/bin/env bash
# Every benchmark of the README, on a release build, against private mosquitto brokers on loopback:
# ingest through the journal (vs a bare libmosquitto loop), replay of a backlog by the daemon
# (events/s, peak RSS), latency from the pty to a subscriber (HdrHistogram), and disk writes.
# ingest-tls is the ingest benchmark against the house broker's TLS deploy config.
# burst is a 100,000-line burst from one pty: the daemon's private dirty memory and peak RSS.
# alarm is the time from a door line on one pty to the siren line on another, the broker frozen.
# Usage: scripts/bench.sh [ingest|ingest-tls|replay|latency|latency-backlog|writes|live|upload|burst|alarm ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# -q: only errors are printed (a failed build used to end the script without a word)
swift build -q -c release --product wiregate
swift build -q -c release --product wiregate-bench
which=("$@"); [ ${#which[@]} -gt 0 ] || which=(ingest ingest-tls replay latency latency-backlog writes live upload burst alarm)
for bench in "${which[@]}"; do
  case "$bench" in
    live) ./scripts/bench-live.sh 1000 60 ;;
    ingest-tls) .build/release/wiregate-bench ingest --tls ;;
    upload) ./scripts/django-venv.sh
            # A private PostgreSQL for the Django app the daemon uploads to; stopped when the subshell ends.
            (source scripts/postgres.sh; .build/release/wiregate-bench upload) ;;
    latency-backlog) .build/release/wiregate-bench latency --backlog 200000 ;;
    *) .build/release/wiregate-bench "$bench" ;;
  esac
done
