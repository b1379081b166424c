#!/usr/bin/env bash
# Every benchmark of the README, on a release build, against private mosquitto brokers on loopback:
# ingest through the journal (vs a bare libmosquitto loop), replay of a backlog by the daemon
# (events/s, peak RSS), latency from the pty to a subscriber (HdrHistogram), and disk writes.
# ingest-tls is the ingest benchmark against the house broker's TLS deploy config.
# burst is a 100,000-line burst from one pty: the daemon's private dirty memory and peak RSS.
# Usage: scripts/bench.sh [ingest|ingest-tls|replay|latency|latency-backlog|writes|live|upload|burst ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
swift build -c release --product wiregate >/dev/null
swift build -c release --product wiregate-bench >/dev/null
which=("$@"); [ ${#which[@]} -gt 0 ] || which=(ingest ingest-tls replay latency latency-backlog writes live upload burst)
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
