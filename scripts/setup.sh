#!/usr/bin/env bash
# Installs what dari-bridge needs on Debian 12 (the Swift toolchain must
# already be on PATH): librabbitmq-dev to build, rabbitmq-server for a local
# broker. Does nothing when both are there.
set -euo pipefail
missing=()
dpkg -s librabbitmq-dev >/dev/null 2>&1 || missing+=(librabbitmq-dev)
dpkg -s rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
dpkg -s pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup.sh: swift is not on PATH; install the Swift 6 toolchain first" >&2; exit 1; }
