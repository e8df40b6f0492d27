#!/usr/bin/env bash
# The webhook receiver's figures: idle RSS of the release worker without and
# with the receiver, then a load run with `dari-bridge-bench webhooks` (its own
# process) sending pre-signed unique webhooks over keep-alive connections.
#
#   AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2F scripts/webhook-load.sh [count] [concurrency]
#
# Builds nothing: run `swift build -c release --static-swift-stdlib --product dari-bridge`
# and `swift build -c release --product dari-bridge-bench` first.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-20000}
concurrency=${2:-64}
amqp=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}
port=${WEBHOOK_PORT:-18480}
secret=load-test-secret
worker=.build/release/dari-bridge
bench=.build/release/dari-bridge-bench
idle=${IDLE_SECONDS:-10}

rss() { awk '/VmRSS/ {print $2/1024 " MB"}' "/proc/$1/status"; }

start() {  # start [extra env...]: the worker in the background, its pid in $pid
  env AMQP_URL="$amqp" DARI_BRIDGE_HTTP_PORT=0 DARI_BRIDGE_QUEUE=load.webhook.requests DARI_BRIDGE_RESULTS_EXCHANGE=load.webhook.results \
      DARI_BRIDGE_LOG_LEVEL=warning "$@" "$worker" run >/tmp/webhook-load-worker.log 2>&1 &
  pid=$!
}

start
sleep "$idle"
echo "idle RSS, receiver off: $(rss $pid)"
kill -TERM $pid; wait $pid || true

start DARI_BRIDGE_WEBHOOK_PORT=$port DARI_BRIDGE_WEBHOOK_HOST=127.0.0.1 DARI_BRIDGE_WEBHOOK_SECRET=$secret DARI_BRIDGE_WEBHOOK_EXCHANGE=load.webhooks
sleep "$idle"
echo "idle RSS, receiver on:  $(rss $pid)"
"$bench" webhooks --url "http://127.0.0.1:$port/webhooks/dari" --secret $secret --amqp-url "$amqp" \
    --exchange load.webhooks --count "$count" --concurrency "$concurrency" --json "${JSON:-bench-results/webhooks-latest.json}"
echo "RSS after the run: $(rss $pid), peak $(awk '/VmHWM/ {print $2/1024 " MB"}' /proc/$pid/status)"
kill -TERM $pid; wait $pid || true
