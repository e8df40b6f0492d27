#!/usr/bin/env bash
# The benchmark, one command: installs what is missing, starts a local broker
# on 127.0.0.1:5672 if none is reachable (BENCH_RABBIT_PORT picks another),
# builds the worker as users build it (release, --static-swift-stdlib) and the
# benchmark, runs every mode and writes bench-results/latest.json.
# Arguments go to dari-bridge-bench (e.g. --messages 5000 --concurrency 64).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
port=${BENCH_RABBIT_PORT:-5672}
RABBIT_PORT=$port scripts/rabbitmq.sh start
swift build -c release --static-swift-stdlib --product dari-bridge
swift build -c release --static-swift-stdlib --product dari-bridge-bench
# The broker's OS process (beam.smp), for its CPU share: the one listening on the port.
broker_pid=$(ss -Htlnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
exec .build/release/dari-bridge-bench --amqp-url "amqp://guest:guest@127.0.0.1:$port/%2F" ${broker_pid:+--broker-pid "$broker_pid"} "$@"
