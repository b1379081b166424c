#!/usr/bin/env bash
# The seeded fault campaign: the gateway as a process (debug build, as the tests run it), a
# persistent mosquitto, the Django app over a private PostgreSQL, pty boards streaming numbered
# and hostile lines, and faults drawn from SEED (broker SIGTERM/SIGKILL/SIGSTOP, gateway
# SIGTERM/SIGKILL, backend 5xx/401/302/login page/slow/down, a full state directory, a corrupted
# journal, an unplugged board). Checks at a persistent MQTT 5 subscriber and at the Django app
# that every promised event arrived, in order, under an id never reused, inside its board's
# subtree, and that the daemon stayed under its memory bound. Exits 1 with the seed, the schedule
# and what broke when a guarantee did.
# Usage: scripts/torture.sh SEED [MINUTES] [more wiregate-torture options]
#        scripts/torture.sh --soak HOURS [options]  (10-minute campaigns back to back, seeds drawn and printed)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/torture.sh SEED [MINUTES] | --soak HOURS" >&2; exit 64; }
if [ "${WIREGATE_SKIP_SETUP:-}" != 1 ]; then
  ./scripts/install-deps.sh
  ./scripts/django-venv.sh
fi
swift build --product wiregate >/dev/null
swift build --product wiregate-torture >/dev/null
source scripts/postgres.sh
if [ "$1" = --soak ]; then
  # HOURS may be a decimal (0.5). Every campaign runs, failing or not; the seeds that failed are
  # listed at the end (each kept its directory) and make the exit status 1.
  end=$(( $(date +%s) + $(awk -v h="${2:?hours}" 'BEGIN { printf "%d", h * 3600 }') ))
  runs=0 failed=()
  while [ "$(date +%s)" -lt "$end" ]; do
    seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
    .build/debug/wiregate-torture "$seed" 10 "${@:3}" || failed+=("$seed")
    runs=$((runs + 1))
  done
  echo "soak: $runs campaigns, ${#failed[@]} failed${failed:+: seeds ${failed[*]}}"
  [ ${#failed[@]} -eq 0 ]
else
  .build/debug/wiregate-torture "$@"
fi
