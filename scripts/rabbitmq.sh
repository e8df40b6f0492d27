#!/usr/bin/env bash
# Starts, stops and drives a local RabbitMQ node that belongs to this project:
# its own node name, ports and state folder, so a developer's own broker is
# never touched. Used by scripts/run.sh, scripts/test.sh, the benchmark and the
# fault tests.
#
#   scripts/rabbitmq.sh start|stop|status|ctl ARGS...|wait
#
# Settings (environment):
#   RABBIT_NODE   node name              (default daribridge-<port>@localhost)
#   RABBIT_PORT   AMQP port on 127.0.0.1 (default 5672)
#   RABBIT_DIR    state folder           (default <repo>/.rabbitmq/<port>)
#   RABBIT_TLS_CERTS  a folder with ca.pem, server.pem, server.key (scripts/tls.sh):
#                 then RABBIT_PORT is a TLS listener and there is no plain one
#   RABBIT_TLS_REQUIRE_CLIENT_CERT  true: refuse clients without a certificate
#
# Debian's wrapper script switches to the rabbitmq user and fails as root on
# folders it cannot write, and there is no systemd here: we start the server
# binary directly with all of its state in RABBIT_DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
port=${RABBIT_PORT:-5672}
node=${RABBIT_NODE:-daribridge-$port@localhost}
dir=${RABBIT_DIR:-$here/.rabbitmq/$port}
dist_port=$((port + 20000))

export HOME=$dir
export RABBITMQ_NODENAME=$node
tls_certs=${RABBIT_TLS_CERTS:-}
if [ -z "$tls_certs" ]; then
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$port
else
  # RABBITMQ_NODE_PORT would add a plain TCP listener on the TLS port.
  unset RABBITMQ_NODE_IP_ADDRESS RABBITMQ_NODE_PORT
fi
export RABBITMQ_DIST_PORT=$dist_port
export RABBITMQ_MNESIA_BASE=$dir/mnesia
export RABBITMQ_LOG_BASE=$dir/log
export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq
export RABBITMQ_PID_FILE=$dir/rabbit.pid
export ERL_EPMD_ADDRESS=127.0.0.1

ctl() { /usr/lib/rabbitmq/bin/rabbitmqctl -n "$node" "$@"; }

reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

case "${1:-}" in
start)
  if ! command -v /usr/lib/rabbitmq/bin/rabbitmq-server >/dev/null 2>&1; then
    echo "rabbitmq.sh: rabbitmq-server is not installed (apt-get install rabbitmq-server)" >&2
    exit 1
  fi
  if reachable; then
    echo "rabbitmq.sh: something already listens on 127.0.0.1:$port; using it" >&2
    exit 0
  fi
  mkdir -p "$dir/mnesia" "$dir/log"
  echo '[].' > "$dir/enabled_plugins"
  # Loopback only; small disk limit so a nearly full disk does not block publishers in tests.
  if [ -z "$tls_certs" ]; then
    cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$port
loopback_users = none
disk_free_limit.absolute = 50MB
CONF
  else
    # TLS only. verify_peer: a client certificate, when sent, must be signed
    # by ca.pem; fail_if_no_peer_cert decides whether one is required.
    cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$port
ssl_options.cacertfile = $tls_certs/ca.pem
ssl_options.certfile = $tls_certs/server.pem
ssl_options.keyfile = $tls_certs/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = ${RABBIT_TLS_REQUIRE_CLIENT_CERT:-false}
loopback_users = none
disk_free_limit.absolute = 50MB
CONF
  fi
  nohup /usr/lib/rabbitmq/bin/rabbitmq-server > "$dir/log/stdout.log" 2>&1 &
  echo $! > "$dir/server.pid"
  "$0" wait
  ;;
wait)
  for _ in $(seq 1 120); do
    if reachable && ctl -q await_startup >/dev/null 2>&1; then
      echo "rabbitmq.sh: broker $node ready on 127.0.0.1:$port" >&2
      exit 0
    fi
    sleep 0.5
  done
  echo "rabbitmq.sh: broker did not start within 60 s; see $dir/log" >&2
  exit 1
  ;;
stop)
  ctl -q stop >/dev/null 2>&1 || true
  if [ -f "$dir/server.pid" ]; then
    pid=$(cat "$dir/server.pid")
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/server.pid"
  fi
  ;;
status)
  ctl status
  ;;
ctl)
  shift
  ctl "$@"
  ;;
url)
  echo "amqp://guest:guest@127.0.0.1:$port/%2F"
  ;;
*)
  echo "usage: $0 start|stop|wait|status|url|ctl ARGS..." >&2
  exit 2
  ;;
esac
