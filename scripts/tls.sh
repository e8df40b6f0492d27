#!/usr/bin/env bash
# TLS test brokers for the test suite (started by the TLS tests themselves,
# stopped by scripts/test.sh): a test CA, a server certificate for
# `localhost` (subjectAltName DNS:localhost only), a client certificate
# signed by that CA and an unrelated second CA, then two RabbitMQ nodes that
# listen with TLS only on 127.0.0.1:
#   port P   (node daribridge-tls-P@localhost)        client certificate optional
#   port P+1 (node daribridge-tlsclient-P+1@localhost) client certificate required
#
#   scripts/tls.sh certs|start|stop|dir
#
# P is DARI_TEST_TLS_RABBIT_PORT (default 5691); everything lives in
# <repo>/.rabbitmq/tls-P (git-ignored). `start` is idempotent and safe to run
# from two processes at once (flock).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=${DARI_TEST_TLS_RABBIT_PORT:-5691}
port2=$((port + 1))
base=$here/.rabbitmq/tls-$port
certs=$base/certs

make_certs() {
  [ -f "$certs/complete" ] && return 0
  command -v openssl >/dev/null || { echo "tls.sh: openssl is missing (scripts/setup.sh installs it)" >&2; exit 1; }
  rm -rf "$certs"
  mkdir -p "$certs"
  cd "$certs"
  cat > req.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
  cat > server.ext <<'EXT'
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
EXT
  cat > client.ext <<'EXT'
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
EXT
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  for ca in ca other-ca; do
    key "$ca.key"
    openssl req -x509 -new -key "$ca.key" -out "$ca.pem" -days 3650 -config req.cnf -extensions ca \
      -subj "/CN=dari-bridge test $ca"
  done
  for leaf in server client; do
    key "$leaf.key"
    openssl req -new -key "$leaf.key" -out "$leaf.csr" -config req.cnf -subj "/CN=dari-bridge test $leaf"
    openssl x509 -req -in "$leaf.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
      -days 3650 -extfile "$leaf.ext" -out "$leaf.pem" 2>/dev/null
  done
  chmod 600 ./*.key
  touch complete
}

node() {  # node PORT NAME REQUIRE_CLIENT_CERT ACTION
  # 9>&-: the broker runs on in the background and must not inherit the lock,
  # or the next `start` waits for it forever.
  RABBIT_PORT=$1 RABBIT_NODE=$2-$1@localhost RABBIT_DIR=$base/node-$1 RABBIT_TLS_CERTS=$certs \
    RABBIT_TLS_REQUIRE_CLIENT_CERT=$3 "$here/scripts/rabbitmq.sh" "$4" 9>&-
}

case "${1:-}" in
certs)
  mkdir -p "$base"
  exec 9>"$base/lock"
  flock 9
  make_certs
  ;;
start)
  mkdir -p "$base"
  exec 9>"$base/lock"
  flock 9
  make_certs
  node "$port" daribridge-tls false start &
  first=$!
  node "$port2" daribridge-tlsclient true start &
  second=$!
  status=0
  wait $first || status=1
  wait $second || status=1
  exit $status
  ;;
stop)
  node "$port" daribridge-tls false stop || true
  node "$port2" daribridge-tlsclient true stop || true
  ;;
dir)
  echo "$certs"
  ;;
*)
  echo "usage: $0 certs|start|stop|dir" >&2
  exit 2
  ;;
esac
