#!/usr/bin/env bash
# The whole test suite, the same way everywhere (CI calls exactly this):
# installs what is missing, starts the project's own RabbitMQ node (its own
# node name and port 5673, so a developer's broker on 5672 is never touched),
# builds, runs every test, stops the broker.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
scripts/setup.sh
# deploy/ checked offline (Kubernetes and KEDA schemas, broker definitions, hadolint).
scripts/validate-deploy.sh
export RABBIT_PORT=${DARI_TEST_RABBIT_PORT:-5673}
export RABBIT_NODE=${DARI_TEST_RABBIT_NODE:-daribridge-test@localhost}
# The fault tests start, stop and break a second node of their own
# (daribridge-faults-<port>@localhost, port 5690), the TLS tests two more
# (5691, 5692), the cluster tests a three-node cluster (scripts/cluster.sh,
# ports 5701-5703); stop them too when done.
stop_broker() {
  scripts/rabbitmq.sh stop || true
  fault_port=${DARI_TEST_FAULT_RABBIT_PORT:-5690}
  RABBIT_PORT=$fault_port RABBIT_NODE=daribridge-faults-$fault_port@localhost RABBIT_DIR="$here/.rabbitmq/faults" scripts/rabbitmq.sh stop || true
  # The TLS tests start two TLS-only nodes (scripts/tls.sh, ports
  # DARI_TEST_TLS_RABBIT_PORT and the next one, default 5691 and 5692).
  scripts/tls.sh stop || true
  # The cluster tests start a three-node cluster of their own (scripts/cluster.sh).
  scripts/cluster.sh stop || true
}
trap stop_broker EXIT
scripts/rabbitmq.sh start
export DARI_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2F"
# The integration tests run the built executable as a separate process.
swift build
swift test "$@"
# Then fuzz the parsers of untrusted input for a bounded time (about a minute; a crash
# fails the run). DARI_TEST_FUZZ_SECONDS sets the seconds per target.
scripts/fuzz.sh "${DARI_TEST_FUZZ_SECONDS:-15}"
