#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input with libFuzzer (through the Swift toolchain:
# swiftc -sanitize=fuzzer), each target for a bounded time:
#   decoder     message decoder + JSON scanner      Sources/DariBridge/{JSONScanner,JSONWriter,ResumeRequest,ApprovedURL,ASCIITrim}.swift
#   urlpolicy   URL policy vs AsyncHTTPClient's     Sources/DariBridge/{URLPolicy*,ApprovedURL,IPAddress*,ASCIITrim}.swift
#               derivation from Foundation's URL
#   amqpurl     AMQP URL parser (no password leak)  Sources/RabbitMQ/AMQPURL*.swift (+ AMQPTLSOptions.swift)
#   retryafter  Retry-After parser                  Sources/DariBridge/{RetryPolicy,ASCIITrim}.swift
# Usage: scripts/fuzz.sh [seconds-per-target]   (default 15: about a minute in all)
# Builds into .build-fuzz/ (git-ignored). Seeds: Fuzz/corpus/<target>/ (committed, read
# only); new corpus entries go to .build-fuzz/corpus/<target>/, crash inputs to
# .build-fuzz/artifacts/. Exits non-zero when a target crashes (or fails to build).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
seconds=${1:-15}
case "$seconds" in (''|*[!0-9]*) echo "fuzz.sh: seconds-per-target must be a number" >&2; exit 2;; esac
out=.build-fuzz
mkdir -p "$out/artifacts"

d=Sources/DariBridge
sources_decoder="$d/JSONScanner.swift $d/JSONWriter.swift $d/ResumeRequest.swift $d/ApprovedURL.swift $d/ASCIITrim.swift Fuzz/DecoderFuzz.swift"
sources_urlpolicy="$d/URLPolicy.swift $d/URLPolicy+Grammar.swift $d/ApprovedURL.swift $d/IPAddress.swift $d/IPAddress+Classification.swift $d/ASCIITrim.swift Fuzz/URLPolicyFuzz.swift"
# The AMQP URL parser may be split over AMQPURL+*.swift files and use AMQPTLSOptions.
sources_amqpurl=""
for f in Sources/RabbitMQ/AMQPURL*.swift Sources/RabbitMQ/AMQPTLSOptions.swift; do
  [ -f "$f" ] && sources_amqpurl+="$f "
done
sources_amqpurl+="Fuzz/AMQPURLFuzz.swift"
sources_retryafter="$d/RetryPolicy.swift $d/ASCIITrim.swift Fuzz/RetryAfterFuzz.swift"

failed=()
summary=()
for target in decoder urlpolicy amqpurl retryafter; do
  var="sources_$target"
  read -r -a files <<< "${!var}"
  binary="$out/$target"
  # Rebuild only when a source is newer than the binary.
  stale=0
  [ -x "$binary" ] || stale=1
  for f in "${files[@]}"; do [ "$f" -nt "$binary" ] && stale=1; done
  if [ $stale = 1 ]; then
    echo "fuzz.sh: building $target" >&2
    if ! swiftc -sanitize=fuzzer -parse-as-library -O -package-name dari_bridge -module-name "Fuzz_$target" "${files[@]}" -o "$binary"; then
      failed+=("$target (build)")
      continue
    fi
  fi
  scratch="$out/corpus/$target"
  mkdir -p "$scratch"
  log="$out/$target.log"
  echo "fuzz.sh: running $target for ${seconds}s" >&2
  status=0
  # SWIFT_BACKTRACE off: the Swift runtime's backtracer would take the trap's signal from
  # libFuzzer, which then writes no crash input.
  # The first corpus directory receives new entries: the scratch one, never the committed seeds.
  SWIFT_BACKTRACE=enable=no "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$target-" "$scratch" "Fuzz/corpus/$target" > "$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  if [ $status -ne 0 ]; then
    failed+=("$target")
    echo "fuzz.sh: $target FAILED (exit $status); the input is in $out/artifacts/$target-*; log $log:" >&2
    grep -E 'Fatal error|ERROR|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
  fi
  summary+=("$target: ${runs:-?} executions, exit $status")
done
printf 'FUZZ %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
