#!/usr/bin/env bash
# The package on a fresh Debian, as a new user meets it:
#
#   scripts/test-package.sh DEB
#
# installs DEB with `apt-get install ./wiregate_*.deb` into a minimal Debian 12 chroot (debootstrap
# from this machine's apt mirror; the bare system is cached in .build/chroot-cache), then:
#   - `wiregate check-config` on the config the package installed: exit 0, no edit;
#   - the daemon, as the wiregate user, on that config against a Mosquitto in the chroot: its
#     retained `online` arrives;
#   - a simulated board made for the service's user (`simulate --owner wiregate`), a config for it
#     written by `wiregate init`, and the board's lines arriving through the daemon;
#   - `apt-get remove` (config and journal kept, the unit masked) and a reinstall (unmasked,
#     enabled again);
#   - `apt-get purge`: the package's files, journal and enablement gone; the user and the files
#     the operator added to /etc/wiregate kept, and listed.
# The chroot runs in its own mount and PID namespaces (everything it started dies with it) and,
# once installed, its own network namespace: its broker's 127.0.0.1:1883 is its own.
set -euo pipefail
deb=$(realpath "${1:?usage: test-package.sh DEB}")
root_dir=$(cd "$(dirname "$0")/.." && pwd)
cache=$root_dir/.build/chroot-cache
suite=bookworm
tools=mosquitto,mosquitto-clients
for tool in debootstrap unshare; do
  command -v "$tool" >/dev/null || { echo "test-package.sh: $tool is missing (apt-get install debootstrap util-linux)" >&2; exit 69; }
done

# The mirror this machine's apt uses (deb822 sources or sources.list), else Debian's.
# (Each lookup may find nothing: `|| true`, or set -e would end the script there.)
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1 || true)
[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list 2>/dev/null | sed 's/\[[^]]*\]//' \
  | awk '$1 == "deb" && $0 !~ /security/ && $0 ~ / main/ { print $2; exit }' || true)
mirror=${mirror:-http://deb.debian.org/debian}

# The bare system, with the test's own tools (the broker and its clients): what the package
# needs comes from apt-get install, every run.
base=$cache/$suite-minbase-${tools//,/-}.tar
if [ ! -s "$base" ]; then
  echo "debootstrap $suite (minbase, $tools) from $mirror..."
  mkdir -p "$cache"
  fresh=$(mktemp -d "$cache/root.XXXXXX")
  # In a mount namespace of its own: what debootstrap mounts (/proc, /sys) goes with it, even
  # when it is killed; and rm never crosses into a mount.
  unshare --mount --propagation private -- debootstrap --variant=minbase --include="$tools" "$suite" "$fresh" "$mirror" \
    > "$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; rm -rf --one-file-system "$fresh"; exit 1; }
  rm -rf "$fresh"/var/cache/apt/archives/*.deb
  tar -C "$fresh" -cf "$base.part" . && mv "$base.part" "$base"
  rm -rf --one-file-system "$fresh"
fi

work=$(mktemp -d)
chmod 0755 "$work"
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/root
mkdir "$root"
tar -C "$root" -xf "$base"
chmod 0755 "$root"   # mktemp's 0700 came with the tar's '.': apt's _apt user must reach /var/lib/apt
cp "$deb" "$root/tmp/"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
package=/tmp/$(basename "$deb")

# Inside the chroot, step by step; every step says what it checks, and the first failure stops.
cat > "$root/tmp/install.sh" <<'SH'
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
apt-get -qq update
apt-get -qq install -y --no-install-recommends "$1" > /tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
grep -i 'warn' /tmp/apt.log | grep -v 'apt does not have a stable CLI' && { echo "FAIL: apt-get install warned"; exit 1; }
echo "installed: $(dpkg-query -W -f '${Package} ${Version} ${Installed-Size} KiB' wiregate)"
SH

cat > "$root/tmp/run.sh" <<'SH'
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
# As the service's user. A command, not a function: a function run in the background is a
# subshell, whose PID ($!) is not the daemon's.
as_service="setpriv --reuid wiregate --regid wiregate --init-groups --"
wait_for() { for _ in $(seq 100); do eval "$1" && return 0; sleep 0.1; done; fail "$2"; }

# What the package made.
[ "$(stat -c '%U:%G %a' /var/lib/wiregate)" = "wiregate:wiregate 750" ] || fail "/var/lib/wiregate: $(stat -c '%U:%G %a' /var/lib/wiregate)"
[ "$(stat -c '%U:%G %a' /etc/wiregate)" = "root:wiregate 750" ] || fail "/etc/wiregate: $(stat -c '%U:%G %a' /etc/wiregate)"
id -nG wiregate | grep -qw dialout || fail "wiregate is not in dialout"
[ -L /etc/systemd/system/multi-user.target.wants/wiregate.service ] || fail "the service is not enabled"

# The config as installed.
checked=$(wiregate check-config) || fail "check-config on the installed config"
echo "$checked"
# The gateway's id is the host name (set to gw-test for the chroot) unless the config names one.
id=$(echo "$checked" | sed -n "s/.*gateway '\([^']*\)'.*/\1/p")
[ "$id" = gw-test ] || fail "gateway id '$id' is not the host name"
$as_service wiregate check-config >/dev/null || fail "check-config as the service's user"

# The house's broker, on the address the installed config names (the chroot has no /etc/hosts:
# addresses, not "localhost").
printf 'listener 1883 127.0.0.1\nallow_anonymous true\n' > /tmp/mosquitto.conf
mosquitto -c /tmp/mosquitto.conf > /tmp/mosquitto.log 2>&1 &
wait_for "mosquitto_pub -h 127.0.0.1 -t probe -n 2>/dev/null" "the broker did not start (see /tmp/mosquitto.log)"
$as_service wiregate run > /tmp/wiregate.log 2>&1 &
gateway=$!
online=$(mosquitto_sub -h 127.0.0.1 -t 'wiregate/+/status' -v -C 1 -W 15) || { cat /tmp/wiregate.log; fail "no retained status from the daemon"; }
[ "$online" = "wiregate/$id/status online" ] || fail "status: '$online'"
echo "daemon on the installed config, as wiregate: '$online'"
grep -q 'journal cannot be written\|memory' /tmp/wiregate.log && { cat /tmp/wiregate.log; fail "the journal is not on disk"; }
[ -f /var/lib/wiregate/journal.sqlite ] || fail "no journal in /var/lib/wiregate"
kill -TERM "$gateway"; wait "$gateway" || { status=$?; tail -5 /tmp/wiregate.log; fail "the daemon's stop: exit $status"; }

# A simulated board the service can open, and a config for it written by `wiregate init`.
mkdir -p /run/wiregate-demo
wiregate simulate --owner wiregate --link /run/wiregate-demo/board --rate 5 > /tmp/board.log 2>&1 &
board=$!
wait_for "[ -e /run/wiregate-demo/board ]" "simulate made no link"
[ "$(stat -L -c '%U %a' /run/wiregate-demo/board)" = "wiregate 600" ] || fail "pty: $(stat -L -c '%U %a' /run/wiregate-demo/board)"
wiregate init --output /etc/wiregate/demo.yaml --gateway-id demo --state-dir /run/wiregate-demo/state \
  --path front-door=/run/wiregate-demo/board >/dev/null
install -d -o wiregate -g wiregate /run/wiregate-demo/state
wiregate init --output /etc/wiregate/demo.yaml --gateway-id demo 2>/dev/null && fail "init overwrote a config without --force"
$as_service wiregate run --config /etc/wiregate/demo.yaml > /tmp/demo.log 2>&1 &
gateway=$!
message=$(mosquitto_sub -h 127.0.0.1 -t 'wiregate/demo/front-door/#' -v -C 3 -W 20) || { cat /tmp/demo.log; fail "no message from the simulated board"; }
echo "the simulated board through the daemon:"; echo "$message" | sed 's/^/  /'
kill -TERM "$gateway"; wait "$gateway" || { status=$?; tail -5 /tmp/demo.log; fail "the daemon's stop: exit $status"; }
kill -TERM "$board"; wait "$board" || true
[ -e /run/wiregate-demo/board ] && fail "simulate left its link behind on SIGTERM"
summary=$(grep '\] stopped' /tmp/demo.log) || fail "no shutdown summary"
published=$(echo "$summary" | sed -n 's/.* published=\([0-9]*\).*/\1/p')
acknowledged=$(echo "$summary" | sed -n 's/.* acknowledged=\([0-9]*\).*/\1/p')
[ -n "$published" ] && [ "$acknowledged" -le "$published" ] || fail "summary: $summary"
echo "shutdown summary: published=$published acknowledged=$acknowledged ($(echo "$summary" | grep -o 'status_acknowledged=[0-9]*'))"
SH

cat > "$root/tmp/purge.sh" <<'SH'
set -eu
export DEBIAN_FRONTEND=noninteractive
# Remove, then install again: the config and journal stay, the unit is masked, then unmasked.
apt-get -qq remove -y wiregate > /tmp/remove.log 2>&1 || { cat /tmp/remove.log; exit 1; }
[ -f /etc/wiregate/wiregate.yaml ] && [ -d /var/lib/wiregate ] || { echo "FAIL: remove took the config or the journal"; exit 1; }
[ "$(readlink /etc/systemd/system/wiregate.service)" = /dev/null ] || { echo "FAIL: not masked after remove"; exit 1; }
apt-get -qq install -y --no-install-recommends "$1" > /tmp/reinstall.log 2>&1 || { cat /tmp/reinstall.log; exit 1; }
[ -e /etc/systemd/system/wiregate.service ] && { echo "FAIL: still masked after reinstall"; exit 1; }
[ -L /etc/systemd/system/multi-user.target.wants/wiregate.service ] || { echo "FAIL: not enabled after reinstall"; exit 1; }
echo "remove and reinstall: config and journal kept, unit masked then enabled again"
apt-get -qq purge -y wiregate > /tmp/purge.log 2>&1 || { cat /tmp/purge.log; exit 1; }
dpkg-query -W wiregate 2>/dev/null | grep -q . && dpkg -s wiregate 2>/dev/null | grep -q '^Status: install' && { echo "FAIL: still installed"; exit 1; }
[ -e /usr/bin/wiregate ] && { echo "FAIL: /usr/bin/wiregate remains"; exit 1; }
[ -e /var/lib/wiregate ] && { echo "FAIL: /var/lib/wiregate remains"; exit 1; }
[ -e /etc/systemd/system/multi-user.target.wants/wiregate.service ] && { echo "FAIL: still enabled"; exit 1; }
[ -e /etc/systemd/system/wiregate.service ] && { echo "FAIL: still masked"; exit 1; }
[ -e /etc/wiregate/wiregate.yaml ] && { echo "FAIL: the package's config remains"; exit 1; }
# Kept on purpose (deploy/README.md): the user, and what the operator added to /etc/wiregate.
getent passwd wiregate >/dev/null || { echo "FAIL: the wiregate user went"; exit 1; }
[ -f /etc/wiregate/demo.yaml ] || { echo "FAIL: the operator's file went"; exit 1; }
echo "after purge, what remains:"
getent passwd wiregate | sed 's/^/  user: /'
find /etc/wiregate 2>/dev/null | sed 's/^/  /'
SH

echo "== the package in a fresh $suite chroot ($(basename "$deb"))"
# A host name of its own (UTS namespace): the gateway's default id is the host name's.
unshare --mount --propagation private --pid --fork --uts -- bash -euc '
  root=$1 package=$2
  hostname gw-test
  mount -t proc proc "$root/proc"
  # A /dev of its own: the few nodes a system needs, its own ptys and its own /dev/shm (where a
  # memory journal would go), nothing of the host'"'"'s.
  mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev"
  for node in null zero full random urandom tty; do
    touch "$root/dev/$node" && mount --bind "/dev/$node" "$root/dev/$node"
  done
  mkdir -p "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
  mount -t tmpfs -o mode=0755 tmpfs "$root/run"
  chroot "$root" sh /tmp/install.sh "$package"
  unshare --net -- bash -euc "ip link set lo up; chroot \"$root\" sh /tmp/run.sh"
  chroot "$root" sh /tmp/purge.sh "$package"
' bash "$root" "$package"
echo "the package in a fresh chroot: OK"
