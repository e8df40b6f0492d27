#!/usr/bin/env bash
# Installs what dari-bridge needs on Debian 12 (the Swift toolchain must
# already be on PATH): librabbitmq-dev to build, rabbitmq-server for a local
# broker, openssl and ca-certificates for TLS. Does nothing when all are there.
set -euo pipefail
missing=()
dpkg -s librabbitmq-dev >/dev/null 2>&1 || missing+=(librabbitmq-dev)
dpkg -s rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
dpkg -s pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# openssl: the TLS tests make their own CA and certificates (scripts/tls.sh);
# ca-certificates: the system CA bundle amqps:// uses by default.
dpkg -s openssl >/dev/null 2>&1 || missing+=(openssl)
dpkg -s ca-certificates >/dev/null 2>&1 || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup.sh: swift is not on PATH; install the Swift 6 toolchain first" >&2; exit 1; }
