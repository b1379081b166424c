#!/usr/bin/env bash
# The deployment checks: the systemd unit (systemd-analyze verify, and a security exposure
# below 2.0), the Debian package (builds, lists what it must, lintian without errors, and
# installs, runs and purges in a fresh Debian chroot: scripts/test-package.sh), the corpus
# replayed and a minute of fuzzing. Runs after scripts/test.sh's build.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The unit, pointed at the binary just built (verify checks that ExecStart exists).
sed "s#/usr/bin/wiregate#$(swift build --show-bin-path)/wiregate#" deploy/wiregate.service > "$work/wiregate.service"
systemd-analyze verify "$work/wiregate.service"
# --threshold is on a 0-100 scale: 20 is the "OK" exposure 2.0.
report=$(systemd-analyze security --offline=true --threshold=20 "$work/wiregate.service") \
  || { echo "$report" | grep -E '✗|Overall'; echo "wiregate.service: exposure above 2.0" >&2; exit 1; }
echo "wiregate.service: systemd-analyze verify OK; $(echo "$report" | grep -o 'Overall exposure level.*')"

# The package.
deb=$(deploy/package-deb.sh -o "$work/deb" | tail -1)
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
for path in ./usr/bin/wiregate ./lib/systemd/system/wiregate.service ./lib/udev/rules.d/99-wiregate.rules \
            ./usr/lib/modules-load.d/wiregate.conf ./usr/lib/systemd/timesyncd.conf.d/wiregate.conf ./etc/wiregate/wiregate.yaml ./usr/share/doc/wiregate/copyright \
            ./usr/share/doc/wiregate/changelog.gz ./usr/share/doc/wiregate/mosquitto/make-certs.sh \
            ./usr/share/man/man1/wiregate.1.gz ./usr/share/doc/wiregate/wiregate.example.yaml \
            ./usr/share/doc/wiregate/udev.md; do
  grep -qx "$path" <<<"$contents" || { echo "$deb lacks $path" >&2; exit 1; }
done
dpkg-deb --info "$deb" conffiles | grep -qx /etc/wiregate/wiregate.yaml || { echo "$deb: the config is not a conffile" >&2; exit 1; }
for script in postinst prerm postrm; do dpkg-deb --info "$deb" "$script" | sh -n; done
# The packaged binary runs (the static Swift runtime is complete).
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./usr/bin/wiregate
"$work/usr/bin/wiregate" --version
status=0
findings=$(lintian --fail-on error "$deb" 2>&1) || status=$?
grep -v 'running with root privileges' <<<"$findings" || true
[ "$status" -eq 0 ] || { echo "lintian: errors in $deb" >&2; exit 1; }
echo "$(basename "$deb"): contents, conffiles and maintainer scripts OK; lintian: no errors"
# The symbols, apart: the packaged binary has none, and gdb finds them by its build id.
dbgsym=$(dirname "$deb")/$(basename "$deb" | sed 's/^wiregate_/wiregate-dbgsym_/')
build_id=$(readelf -n "$work/usr/bin/wiregate" | sed -n 's/^ *Build ID: *//p')
# (Read whole first: grep -q closing the pipe early would kill dpkg-deb, and pipefail fail the check.)
dbgsym_contents=$(dpkg-deb --contents "$dbgsym")
grep -q "usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug" <<<"$dbgsym_contents" \
  || { echo "$dbgsym lacks the symbols of build id $build_id" >&2; exit 1; }
grep -q '\.symtab' <<<"$(readelf -S "$work/usr/bin/wiregate")" && { echo "the packaged binary is not stripped" >&2; exit 1; }
echo "$(basename "$dbgsym"): the symbols of build id $build_id; installed sizes: $(dpkg-deb -f "$deb" Installed-Size) KiB, symbols $(dpkg-deb -f "$dbgsym" Installed-Size) KiB"

# The package on a fresh Debian: installed, run as its user, purged.
./scripts/test-package.sh "$deb"

# Fuzzing: the corpus as regression inputs, then a minute of libFuzzer.
"$(swift build --show-bin-path)/wiregate-fuzz" Tests/fuzz-corpus
./scripts/fuzz.sh
