#!/usr/bin/env bash
# Builds wiregate_<version>_<arch>.deb for this machine's architecture (amd64 here, arm64 on
# a Raspberry Pi with 64-bit Raspberry Pi OS / Debian 12):
#
#   deploy/package-deb.sh [-o DIR]        # default DIR: .build/deb
#
# The release binary links the Swift runtime and Foundation statically, so the Pi needs no
# Swift toolchain, only the C libraries the package depends on (computed by dpkg-shlibdeps).
# Contents: /usr/bin/wiregate, the systemd unit, the udev rules, the USB serial modules to
# load at boot, /etc/wiregate/wiregate.yaml (a conffile that runs as installed: the broker on
# localhost, boards adopted), the annotated example config, the docs and the broker's deploy
# files, and maintainer scripts that create the wiregate user (group dialout) and its state
# directory and reload udev and systemd. Beside it, wiregate-dbgsym_<version>_<arch>.deb holds
# the binary's debug symbols (/usr/lib/debug/.build-id/), stripped from the package's binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/.build/deb
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package-deb.sh: unknown argument '$1'" >&2; exit 64 ;;
  esac
done
for tool in dpkg-deb dpkg-shlibdeps fakeroot; do
  command -v "$tool" >/dev/null || { echo "package-deb.sh: $tool is missing (apt-get install dpkg-dev fakeroot)" >&2; exit 69; }
done

cd "$root"
echo "building the release binary (static Swift runtime)..."
swift build -c release --product wiregate --static-swift-stdlib -Xswiftc -warnings-as-errors >/dev/null
binary=$(swift build -c release --static-swift-stdlib --show-bin-path)/wiregate
version=$("$binary" --version)
arch=$(dpkg --print-architecture)
package=wiregate_${version}_${arch}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/$package
install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/lib/udev/rules.d" \
  "$pkg/usr/lib/modules-load.d" "$pkg/etc/wiregate" "$pkg/usr/share/doc/wiregate/mosquitto" \
  "$pkg/usr/share/doc/wiregate/django" "$pkg/usr/share/lintian/overrides" "$pkg/usr/share/man/man1" \
  "$pkg/usr/share/doc/wiregate/prometheus" "$pkg/usr/lib/systemd/timesyncd.conf.d"
# The symbols go to the -dbgsym package (found by gdb through the binary's build id).
build_id=$(readelf -n "$binary" | sed -n 's/^ *Build ID: *//p')
[ -n "$build_id" ] || { echo "package-deb.sh: $binary has no build id" >&2; exit 1; }
dbg=$stage/wiregate-dbgsym_${version}_${arch}
debug_file=$dbg/usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug
install -d "$(dirname "$debug_file")" "$dbg/DEBIAN" "$dbg/usr/share/doc"
objcopy --only-keep-debug --compress-debug-sections "$binary" "$debug_file"
chmod 0644 "$debug_file"
install -m 0755 "$binary" "$pkg/usr/bin/wiregate"
objcopy --strip-all --add-gnu-debuglink="$debug_file" "$pkg/usr/bin/wiregate"
install -m 0644 deploy/wiregate.service "$pkg/lib/systemd/system/wiregate.service"
install -m 0644 deploy/timesyncd/wiregate.conf "$pkg/usr/lib/systemd/timesyncd.conf.d/wiregate.conf"
install -m 0644 udev/99-wiregate.rules "$pkg/lib/udev/rules.d/99-wiregate.rules"
install -m 0644 deploy/debian/modules-load.conf "$pkg/usr/lib/modules-load.d/wiregate.conf"
install -m 0644 deploy/debian/wiregate.yaml "$pkg/etc/wiregate/wiregate.yaml"
install -m 0644 config/wiregate.example.yaml "$pkg/usr/share/doc/wiregate/wiregate.example.yaml"
install -m 0644 udev/README.md "$pkg/usr/share/doc/wiregate/udev.md"
install -m 0644 README.md "$pkg/usr/share/doc/wiregate/README.md"
install -m 0644 deploy/README.md "$pkg/usr/share/doc/wiregate/deploy.md"
install -m 0644 deploy/debian/copyright "$pkg/usr/share/doc/wiregate/copyright"
gzip -9n -c deploy/debian/wiregate.1 > "$pkg/usr/share/man/man1/wiregate.1.gz"
chmod 0644 "$pkg/usr/share/man/man1/wiregate.1.gz"
install -m 0644 deploy/debian/lintian-overrides "$pkg/usr/share/lintian/overrides/wiregate"
install -m 0644 deploy/mosquitto/mosquitto.conf deploy/mosquitto/acl deploy/mosquitto/docker-compose.yml \
  "$pkg/usr/share/doc/wiregate/mosquitto/"
install -m 0755 deploy/mosquitto/make-certs.sh "$pkg/usr/share/doc/wiregate/mosquitto/"
cp -r deploy/django/wiregate_events "$pkg/usr/share/doc/wiregate/django/"
install -m 0644 deploy/django/README.md deploy/django/wiregate-heartbeats.service deploy/django/wiregate-heartbeats.timer \
  "$pkg/usr/share/doc/wiregate/django/"
# The alert rules, their promtool tests and a scrape config, for the operator's Prometheus.
install -m 0644 deploy/prometheus/wiregate-rules.yml deploy/prometheus/wiregate-rules.test.yml \
  deploy/prometheus/prometheus.yml "$pkg/usr/share/doc/wiregate/prometheus/"
find "$pkg/usr/share/doc/wiregate/django" \( -name __pycache__ -o -name '*.pyc' \) -prune -exec rm -rf {} +
find "$pkg/usr/share/doc/wiregate/django" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
# A native package (no Debian revision): its changelog is changelog.gz.
cat > "$stage/changelog" <<EOF
wiregate ($version) stable; urgency=medium

  * Release $version; see /usr/share/doc/wiregate/README.md.

 -- wiregate maintainers <wiregate-maintainers@users.noreply.github.com>  $(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
EOF
gzip -9n -c "$stage/changelog" > "$pkg/usr/share/doc/wiregate/changelog.gz"
chmod 0644 "$pkg/usr/share/doc/wiregate/changelog.gz"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$pkg/DEBIAN/"
echo /etc/wiregate/wiregate.yaml > "$pkg/DEBIAN/conffiles"

# Depends: the shared libraries the binary links, as dpkg-shlibdeps names their packages.
mkdir -p "$stage/debian"
printf 'Source: wiregate\n\nPackage: wiregate\nArchitecture: any\n' > "$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O -e"$pkg/usr/bin/wiregate" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$stage/debian"
installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<EOF
Package: wiregate
Version: $version
Architecture: $arch
Maintainer: wiregate maintainers <wiregate-maintainers@users.noreply.github.com>
Installed-Size: $installed_size
Depends: $depends, adduser, udev, systemd
Recommends: mosquitto-clients
Suggests: mosquitto
Section: net
Priority: optional
Description: edge gateway from USB serial boards to MQTT, with a journal
 wiregate finds Arduino-class boards on USB serial ports through udev, reads
 their text lines (key=value, JSON, MySensors, InfluxDB line protocol, raw),
 and publishes them as MQTT messages at QoS 1 over TLS. Every event is kept
 in a SQLite journal until the broker and the backend have it, so broker or
 internet outages lose nothing, and intrusion events go before telemetry.
 Commands from MQTT are written to the boards when allow-listed.
EOF

cat > "$dbg/DEBIAN/control" <<EOF
Package: wiregate-dbgsym
Source: wiregate
Version: $version
Architecture: $arch
Maintainer: wiregate maintainers <wiregate-maintainers@users.noreply.github.com>
Installed-Size: $(du -sk --exclude=DEBIAN "$dbg" | cut -f1)
Depends: wiregate (= $version)
Section: debug
Priority: optional
Build-Ids: $build_id
Description: debug symbols for wiregate
 The symbols of /usr/bin/wiregate, for gdb and for symbolising a crash's backtrace.
EOF
ln -s wiregate "$dbg/usr/share/doc/wiregate-dbgsym"

mkdir -p "$out"
fakeroot dpkg-deb --build -Zxz "$dbg" "$out/wiregate-dbgsym_${version}_${arch}.deb" >/dev/null
fakeroot dpkg-deb --build -Zxz "$pkg" "$out/$package.deb" >/dev/null
echo "$out/$package.deb"
