#!/usr/bin/env bash
# One command from a fresh Debian 12 machine with Swift to a running worker:
# installs librabbitmq-dev and rabbitmq-server when missing, starts a local
# broker on 127.0.0.1 when AMQP_URL's broker is not reachable, builds in
# release mode and runs `dari-bridge run` with any arguments given here.
#
#   scripts/run.sh [--allowed-hosts api.usedari.com ...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}
hostport=$(echo "$url" | sed -E 's#^amqps?://([^@/]*@)?##; s#/.*$##')
host=${hostport%:*}; port=${hostport##*:}
[ "$host" = "$hostport" ] && port=5672
if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  if [ "$host" = "127.0.0.1" ] || [ "$host" = "localhost" ]; then
    echo "run.sh: no broker on $host:$port; starting a local one" >&2
    RABBIT_PORT=$port scripts/rabbitmq.sh start
  else
    echo "run.sh: broker $host:$port is not reachable; the worker will keep retrying" >&2
  fi
fi
swift build -c release --static-swift-stdlib --product dari-bridge
exec .build/release/dari-bridge run "$@"
