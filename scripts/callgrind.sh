#!/usr/bin/env bash
# Instructions per message of the worker, repeatable: the release worker
# (--static-swift-stdlib, as scripts/bench.sh builds it), a `strip --strip-debug`
# copy run under `valgrind --tool=callgrind`, instant Dari, concurrency 64,
# once with CALLGRIND_BASE (500) and once with CALLGRIND_MESSAGES (2500) pre-loaded messages:
# (Ir(messages) - Ir(base)) / (messages - base). Writes bench-results/callgrind.json
# and the profile of the larger run (bench-results/callgrind-profile.txt: self cost by
# owner from scripts/callgrind-buckets.py, then callgrind_annotate --inclusive=yes).
# BENCH_RABBIT_PORT picks the broker (started if none listens there).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
command -v valgrind >/dev/null || { s=""; [ "$(id -u)" -eq 0 ] || s=sudo; DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq valgrind >/dev/null; }
port=${BENCH_RABBIT_PORT:-5672}
RABBIT_PORT=$port scripts/rabbitmq.sh start
swift build -c release --static-swift-stdlib --product dari-bridge
swift build -c release --static-swift-stdlib --product dari-bridge-bench
out=${CALLGRIND_DIR:-$here/.build/callgrind}
mkdir -p "$out"
cp .build/release/dari-bridge "$out/dari-bridge"
strip --strip-debug "$out/dari-bridge"
.build/release/dari-bridge-bench --amqp-url "amqp://guest:guest@127.0.0.1:$port/%2F" --worker "$out/dari-bridge" \
  --concurrency 64 --callgrind "$out" --callgrind-base "${CALLGRIND_BASE:-500}" \
  --callgrind-messages "${CALLGRIND_MESSAGES:-2500}" --json "${CALLGRIND_JSON:-bench-results/callgrind.json}" "$@"
profile="$out/callgrind.${CALLGRIND_MESSAGES:-2500}.out"
report=${CALLGRIND_PROFILE:-bench-results/callgrind-profile.txt}
# Self cost by owner and the costliest functions, then the inclusive profile.
{ scripts/callgrind-buckets.py "$profile" "${CALLGRIND_MESSAGES:-2500}" 40
  echo; callgrind_annotate --inclusive=yes --threshold=99 "$profile" 2>/dev/null | head -120; } > "$report" || true
echo "profile: $report (callgrind_annotate --inclusive=yes $profile)"
