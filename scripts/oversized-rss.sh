#!/usr/bin/env bash
# The memory cost of oversized input, one command: 16 messages of 48 MiB (the
# worker's limit is 1 MiB) and 4 normal ones are pre-loaded, the release worker
# runs against them as its own process at concurrency 64, and its peak RSS
# (VmHWM) is printed with the number of outcomes (every message must get one).
# A measurement, not a test. Writes bench-results/oversized-latest.json.
#   OVERSIZED_RABBIT_PORT / RABBIT_NODE: the broker to use or start (default 5672).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
port=${OVERSIZED_RABBIT_PORT:-5672}
RABBIT_PORT=$port scripts/rabbitmq.sh start
swift build -c release --static-swift-stdlib --product dari-bridge
swift build --product dari-bridge-bench   # only publishes and samples /proc: debug is fine
exec "$(swift build --show-bin-path)/dari-bridge-bench" --oversized --concurrency 64 \
  --amqp-url "amqp://guest:guest@127.0.0.1:$port/%2F" --json bench-results/oversized-latest.json "$@"
