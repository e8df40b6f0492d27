#!/usr/bin/env bash
# The benchmark, one command: installs what is missing, starts a local broker
# on 127.0.0.1:5672 if none is reachable, builds the worker and the benchmark
# in release mode, runs every mode and writes bench-results/latest.json.
# Arguments go to dari-bridge-bench (e.g. --messages 5000 --concurrency 64).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
port=${BENCH_RABBIT_PORT:-5672}
RABBIT_PORT=$port scripts/rabbitmq.sh start
swift build -c release --static-swift-stdlib --product dari-bridge
swift build -c release --product dari-bridge-bench
exec .build/release/dari-bridge-bench --amqp-url "amqp://guest:guest@127.0.0.1:$port/%2F" "$@"
