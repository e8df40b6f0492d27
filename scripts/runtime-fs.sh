#!/usr/bin/env bash
# The runtime image's filesystem without a container engine: what
# deploy/Dockerfile's runtime stage would contain, assembled with debootstrap
# into .build-rootfs/ (git-ignored), and the release worker run inside it.
#
#   scripts/runtime-fs.sh [--fresh] [--binary PATH]
#
#   --fresh        remove .build-rootfs/ first (an empty debootstrap cache)
#   --binary PATH  use this dari-bridge instead of building it
#
# Steps, each of which fails the script:
#   1. debootstrap --variant=minbase bookworm + librabbitmq4 ca-certificates
#      (the Dockerfile's runtime packages; libc6 and libstdc++6 come with
#      minbase), from the Debian mirror configured in /etc/apt; user and group
#      10001 as in the Dockerfile.
#   2. swift build -c release --static-swift-stdlib --product dari-bridge (as
#      the Dockerfile builds it), copied to /usr/local/bin/dari-bridge.
#   3. ldd inside the chroot: no "not found".
#   4. dari-bridge --help as uid 10001 inside the chroot.
#   5. the worker as uid 10001 inside the chroot, with a read-only root and a
#      tmpfs /tmp (as deploy/kubernetes/deployment.yaml runs it), against a
#      broker on the host's loopback (the test broker: scripts/rabbitmq.sh,
#      port DARI_TEST_RABBIT_PORT, default 5673; started if none
#      answers, stopped again); /readyz must answer 200; then SIGTERM, exit 0.
#
# Needs root (debootstrap, chroot, mount namespace). Settings (environment):
#   DARI_TEST_RABBIT_PORT / DARI_TEST_RABBIT_NODE  the broker
#   RUNTIME_FS_HTTP_PORT   the worker's /readyz port on 127.0.0.1 (default 9474)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
rootfs=$here/.build-rootfs
logs=$here/.build-rootfs-logs   # outside the image's filesystem
fresh=0
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
  --fresh) fresh=1 ;;
  --binary) binary=${2:?--binary needs a path}; shift ;;
  *) echo "usage: $0 [--fresh] [--binary PATH]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "runtime-fs.sh: needs root (debootstrap, chroot)" >&2; exit 1; }
started=$(date +%s)
mkdir -p "$logs"
say() { echo "runtime-fs.sh [$(($(date +%s) - started)) s]: $*" >&2; }

# The first Debian mirror of the apt sources (deb822 "URIs:" or one-line "deb").
mirror() {
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ && $2 ~ /debian\/?$/ && $2 !~ /security/ {print $2; exit}')
  if [ -z "$m" ]; then
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" && $0 ~ /bookworm/ && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}')
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# debootstrap mounts /proc (and, in a container, binds /dev) inside the
# target while it works: never delete through a mount that a failed run left.
# (seen here: debootstrap in a Docker container left /proc mounted in it).
unmount_all() {
  local m
  for m in $(findmnt -rn -o TARGET 2>/dev/null | grep -F "$rootfs" | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
}
remove_rootfs() {
  unmount_all
  rm -rf --one-file-system "$rootfs"
}

# 1. The filesystem.
if [ "$fresh" = 1 ]; then remove_rootfs; fi
if [ ! -f "$rootfs/.runtime-fs-complete" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  remove_rootfs
  m=$(mirror)
  say "debootstrap --variant=minbase bookworm from $m"
  debootstrap --variant=minbase --include=librabbitmq4,ca-certificates bookworm "$rootfs" "$m" \
    > "$logs/debootstrap.log" 2>&1 || { unmount_all; tail -n 30 "$logs/debootstrap.log" >&2; exit 1; }
  unmount_all
  # As the Dockerfile's runtime stage: the user, and no apt lists or package cache.
  chroot "$rootfs" groupadd --system --gid 10001 dari
  chroot "$rootfs" useradd --system --uid 10001 --gid 10001 --no-create-home \
    --home-dir /nonexistent --shell /usr/sbin/nologin dari
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  touch "$rootfs/.runtime-fs-complete"
  say "filesystem ready ($(du -sxh "$rootfs" | cut -f1))"
else
  say "reusing $rootfs (--fresh to rebuild it)"
fi

# 2. The binary, built as deploy/Dockerfile builds it.
if [ -z "$binary" ]; then
  say "swift build -c release --static-swift-stdlib --product dari-bridge"
  swift build -c release --static-swift-stdlib --product dari-bridge >&2
  binary="$(swift build -c release --static-swift-stdlib --show-bin-path)/dari-bridge"
fi
install -m 0755 "$binary" "$rootfs/usr/local/bin/dari-bridge"

# Runs a command in the image's filesystem as the image's user, the way a
# container runtime would: a private mount namespace, the root bind-mounted
# read-only (Kubernetes' readOnlyRootFilesystem), a tmpfs /tmp, /proc and
# /dev. /proc matters: Swift's runtime reads the command line from
# /proc/self/cmdline, and without it CommandLine.arguments is empty (seen
# here: `dari-bridge --help` in a bare chroot started the worker instead).
# With in_image_exec=1 (in a background subshell) it replaces the subshell,
# so that $! is the worker's pid and SIGTERM reaches the worker.
in_image() {
  ${in_image_exec:+exec} unshare --mount --propagation private /bin/sh -c '
    set -e
    r=$1; shift
    mount --bind "$r" "$r"
    mount -o remount,bind,ro "$r"
    mount -t tmpfs -o size=16m tmpfs "$r/tmp"
    mount -t proc proc "$r/proc"
    mount --bind /dev "$r/dev"
    exec chroot --userspec=10001:10001 "$r" "$@"
  ' sh "$rootfs" "$@"
}

# 3. Every shared library is in the runtime filesystem.
libs=$(in_image /usr/bin/ldd /usr/local/bin/dari-bridge)
echo "$libs" | sed 's/^/  /' >&2
if echo "$libs" | grep -q "not found"; then
  say "FAILED: a shared library is missing in the runtime filesystem"
  exit 1
fi

# 4. --help as the image's user (bounded: a worker started by mistake must not hang the script).
if ! help=$(in_image /usr/bin/timeout 30 /usr/local/bin/dari-bridge --help); then
  say "FAILED: dari-bridge --help in the runtime filesystem failed or hung"
  exit 1
fi
if ! echo "$help" | grep -q AMQP_URL; then
  say "FAILED: dari-bridge --help printed no settings"
  exit 1
fi
say "dari-bridge --help ran as uid 10001"

# 5. The worker against a broker on the host's loopback.
export RABBIT_PORT=${DARI_TEST_RABBIT_PORT:-5673}
export RABBIT_NODE=${DARI_TEST_RABBIT_NODE:-daribridge-test@localhost}
http_port=${RUNTIME_FS_HTTP_PORT:-9474}
our_broker=0
if ! (exec 3<>"/dev/tcp/127.0.0.1/$RABBIT_PORT") 2>/dev/null; then
  scripts/rabbitmq.sh start
  our_broker=1
fi
worker=""
cleanup() {
  if [ -n "$worker" ]; then kill -KILL "$worker" 2>/dev/null || true; fi
  scripts/rabbitmq.sh ctl -q delete_queue runtime-fs.requests >/dev/null 2>&1 || true
  scripts/rabbitmq.sh ctl -q delete_exchange runtime-fs.results >/dev/null 2>&1 || true
  if [ "$our_broker" = 1 ]; then scripts/rabbitmq.sh stop || true; fi
}
trap cleanup EXIT
log=$logs/worker.log
(in_image_exec=1 in_image /usr/bin/env -i \
  AMQP_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2F" \
  DARI_BRIDGE_QUEUE=runtime-fs.requests \
  DARI_BRIDGE_RESULTS_EXCHANGE=runtime-fs.results \
  DARI_BRIDGE_HTTP_HOST=127.0.0.1 \
  DARI_BRIDGE_HTTP_PORT="$http_port" \
  DARI_BRIDGE_DRAIN_TIMEOUT_MS=2000 \
  /usr/local/bin/dari-bridge run) > "$log" 2>&1 &
worker=$!
ready=""
for _ in $(seq 1 60); do
  ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz" || true)
  [ "$ready" = 200 ] && break
  kill -0 "$worker" 2>/dev/null || break
  sleep 0.5
done
if [ "$ready" != 200 ]; then
  cat "$log" >&2
  say "FAILED: /readyz did not answer 200 (last: ${ready:-no answer})"
  exit 1
fi
say "worker in the runtime filesystem as uid 10001 (read-only root): /readyz 200"
sleep 3
kill -TERM "$worker"
rc=0
wait "$worker" || rc=$?
worker=""
if [ "$rc" != 0 ]; then
  cat "$log" >&2
  say "FAILED: the worker exited with $rc after SIGTERM"
  exit 1
fi
say "OK: worker drained and exited 0 after SIGTERM"
