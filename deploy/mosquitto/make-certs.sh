#!/usr/bin/env bash
# Makes the house's MQTT certificates with openssl: a CA, the broker's server certificate
# (its IP addresses and host names in subjectAltName, which is what clients verify) and a
# client certificate for each name given with --client.
#
#   deploy/mosquitto/make-certs.sh [-o DIR] [--ip ADDR]... [--dns NAME]... [--client NAME]... [--days N]
#
# Defaults: -o ./certs, --ip 172.19.0.3 (the broker's address on the house network),
# --client wiregate, --days 825. An existing ca.crt/ca.key in DIR is reused, so running it
# again renews the server and client certificates without touching any device's trust.
# Keys are EC P-256 (fast handshakes on a Pi) and written mode 0600.
set -euo pipefail

out=./certs
days=825
ips=()
names=()
clients=()
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out) out=$2; shift 2 ;;
    --ip) ips+=("$2"); shift 2 ;;
    --dns) names+=("$2"); shift 2 ;;
    --client) clients+=("$2"); shift 2 ;;
    --days) days=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "make-certs.sh: unknown argument '$1'" >&2; usage >&2; exit 64 ;;
  esac
done
[ ${#ips[@]} -gt 0 ] || [ ${#names[@]} -gt 0 ] || ips=(172.19.0.3)
[ ${#clients[@]} -gt 0 ] || clients=(wiregate)
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is not installed (apt-get install openssl)" >&2; exit 69; }

mkdir -p "$out"
cd "$out"
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f ca.key ] || [ ! -f ca.crt ]; then
  newkey ca.key
  # A name of its own: a client that trusts another house's CA then says "unable to get local
  # issuer certificate" rather than failing on a same-named CA's signature.
  openssl req -x509 -new -key ca.key -sha256 -days 3650 \
    -subj "/O=wiregate house/CN=wiregate house CA $(hostname -s) $(date -u +%Y-%m-%dT%H%M%S)-$RANDOM" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
  echo "made ca.crt (keep ca.key offline once every certificate is made)"
fi

san=()
for ip in "${ips[@]}"; do san+=("IP:$ip"); done
for name in "${names[@]}"; do san+=("DNS:$name"); done
subject_name=${names[0]:-${ips[0]}}

# sign NAME "extensions": NAME.key + NAME.csr -> NAME.crt, signed by the CA.
sign() {
  local name=$1 extensions=$2
  printf '%s\n' "$extensions" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

newkey server.key
openssl req -new -key server.key -subj "/O=wiregate house/CN=$subject_name" -out server.csr
sign server "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$(IFS=,; echo "${san[*]}")"
echo "made server.crt for $(IFS=,; echo "${san[*]}")"

for client in "${clients[@]}"; do
  newkey "$client.key"
  openssl req -new -key "$client.key" -subj "/O=wiregate house/CN=$client" -out "$client.csr"
  sign "$client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
  echo "made $client.crt"
done
chmod 0644 ./*.crt
echo "in $(pwd): give the broker ca.crt, server.crt, server.key; give each client ca.crt and its own .crt and .key"
