#!/usr/bin/env bash
# A three-node RabbitMQ cluster on 127.0.0.1 for the cluster tests: three
# nodes of this project (their own node names, ports and folders under
# .rabbitmq/cluster/), one Erlang cookie, joined into one cluster. Each node is
# run by scripts/rabbitmq.sh.
#
#   scripts/cluster.sh start              start the missing nodes, join them, wait for 3 running nodes
#   scripts/cluster.sh stop               stop all nodes and remove the cluster's state
#   scripts/cluster.sh status             cluster_status as seen from the first running node
#   scripts/cluster.sh kill N             SIGKILL of node N's Erlang VM (N = 1, 2, 3)
#   scripts/cluster.sh start-node N       start node N again (it rejoins the cluster by itself)
#   scripts/cluster.sh stop-node N        graceful stop of node N (clients get 320 CONNECTION_FORCED)
#   scripts/cluster.sh restart-node N     stop-node N, start-node N, wait until the cluster has 3 running nodes
#   scripts/cluster.sh urls               the comma-separated AMQP URL list (for AMQP_URL)
#   scripts/cluster.sh port N | node N    node N's AMQP port / node name
#   scripts/cluster.sh pid N              node N's beam.smp pid (empty when not running)
#   scripts/cluster.sh ctl N ARGS...      rabbitmqctl against node N
#
# Settings (environment):
#   DARI_TEST_CLUSTER_PORTS  three AMQP ports (default "5701 5702 5703"); dist port = port + 20000
#
# Node names carry the port (daribridge-c5701@localhost) so that clusters of
# several checkouts on one machine never meet.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
read -r -a ports <<< "${DARI_TEST_CLUSTER_PORTS:-5701 5702 5703}"
if [ "${#ports[@]}" -ne 3 ]; then
  echo "cluster.sh: DARI_TEST_CLUSTER_PORTS needs three ports" >&2
  exit 2
fi
base=$here/.rabbitmq/cluster

port_of() { echo "${ports[$(($1 - 1))]}"; }
node_of() { echo "daribridge-c$(port_of "$1")@localhost"; }
dir_of() { echo "$base/n$1"; }

check_n() {
  case "${1:-}" in
  1 | 2 | 3) ;;
  *) echo "cluster.sh: node number must be 1, 2 or 3, not '${1:-}'" >&2; exit 2 ;;
  esac
}

# scripts/rabbitmq.sh for node N.
node_sh() {
  local n=$1
  shift
  RABBIT_PORT=$(port_of "$n") RABBIT_NODE=$(node_of "$n") RABBIT_DIR=$(dir_of "$n") \
    "$here/scripts/rabbitmq.sh" "$@"
}

ctl() {
  local n=$1
  shift
  HOME=$(dir_of "$n") ERL_EPMD_ADDRESS=127.0.0.1 /usr/lib/rabbitmq/bin/rabbitmqctl -n "$(node_of "$n")" "$@"
}

reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$(port_of "$1")") 2>/dev/null; }

# The beam.smp whose environment names node N (its command line does not).
beam_pid() {
  local want="RABBITMQ_NODENAME=$(node_of "$1")" p
  for p in /proc/[0-9]*; do
    case "$(tr '\0' '\n' 2>/dev/null < "$p/cmdline" | head -n 1)" in
    *beam.smp) ;;
    *) continue ;;
    esac
    if tr '\0' '\n' 2>/dev/null < "$p/environ" | grep -qx "$want"; then
      echo "${p#/proc/}"
      return 0
    fi
  done
  return 0
}

# Every node's HOME gets the same cookie before its first start: nodes (and
# rabbitmqctl, which reads $HOME/.erlang.cookie) only talk with the same one.
prepare() {
  local n cookie
  mkdir -p "$base"
  if [ ! -s "$base/cookie" ]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' > "$base/cookie")
  fi
  cookie=$(cat "$base/cookie")
  for n in 1 2 3; do
    mkdir -p "$(dir_of "$n")"
    if [ ! -f "$(dir_of "$n")/.erlang.cookie" ]; then
      printf '%s' "$cookie" > "$(dir_of "$n")/.erlang.cookie"
      chmod 0400 "$(dir_of "$n")/.erlang.cookie"
    fi
  done
}

# Number of running nodes as node N sees them (0 when it does not answer).
running_count() {
  ctl "$1" -q cluster_status --formatter json 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("running_nodes", [])))' 2>/dev/null || echo 0
}

# Whether node N belongs to the cluster of node 1 (disk_nodes of node N name node 1).
joined() {
  ctl "$1" -q cluster_status --formatter json 2>/dev/null |
    python3 -c 'import json,sys; sys.exit(0 if sys.argv[1] in json.load(sys.stdin).get("disk_nodes", []) else 1)' "$(node_of 1)" 2>/dev/null
}

wait_running() {
  local n
  for _ in $(seq 1 240); do
    for n in 1 2 3; do
      if [ "$(running_count "$n")" = 3 ]; then
        echo "cluster.sh: cluster of 3 running nodes: $("$0" urls)" >&2
        return 0
      fi
    done
    sleep 0.5
  done
  echo "cluster.sh: the cluster did not reach 3 running nodes within 120 s; see $base/n*/log" >&2
  return 1
}

start_all() {
  local n pids=() failed=0
  prepare
  # In parallel: a node that was clustered before waits at boot for the
  # others (Mnesia), so starting them one after another could stall.
  for n in 1 2 3; do
    node_sh "$n" start > "$base/n$n.start.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  if [ "$failed" = 1 ]; then
    cat "$base"/n*.start.log >&2
    echo "cluster.sh: a node did not start" >&2
    return 1
  fi
  for n in 2 3; do
    if ! joined "$n"; then
      ctl "$n" -q stop_app
      ctl "$n" -q join_cluster "$(node_of 1)"
      ctl "$n" -q start_app
    fi
  done
  wait_running
}

stop_node() {
  node_sh "$1" stop || true
  local pid
  pid=$(beam_pid "$1")
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  return 0
}

case "${1:-}" in
start)
  start_all
  ;;
stop)
  for n in 1 2 3; do stop_node "$n"; done
  rm -rf "$base"
  ;;
status)
  for n in 1 2 3; do
    if reachable "$n"; then ctl "$n" cluster_status; exit 0; fi
  done
  echo "cluster.sh: no node is running" >&2
  exit 1
  ;;
kill)
  check_n "${2:-}"
  pid=$(beam_pid "$2")
  if [ -z "$pid" ]; then echo "cluster.sh: node $2 is not running" >&2; exit 1; fi
  kill -9 "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  rm -f "$(dir_of "$2")/server.pid"
  ;;
start-node)
  check_n "${2:-}"
  prepare
  node_sh "$2" start
  ;;
stop-node)
  check_n "${2:-}"
  stop_node "$2"
  ;;
restart-node)
  check_n "${2:-}"
  stop_node "$2"
  node_sh "$2" start
  wait_running
  ;;
wait)
  wait_running
  ;;
urls)
  echo "amqp://guest:guest@127.0.0.1:$(port_of 1)/%2F,amqp://guest:guest@127.0.0.1:$(port_of 2)/%2F,amqp://guest:guest@127.0.0.1:$(port_of 3)/%2F"
  ;;
port)
  check_n "${2:-}"
  port_of "$2"
  ;;
node)
  check_n "${2:-}"
  node_of "$2"
  ;;
pid)
  check_n "${2:-}"
  beam_pid "$2"
  ;;
ctl)
  check_n "${2:-}"
  n=$2
  shift 2
  ctl "$n" "$@"
  ;;
*)
  echo "usage: $0 start|stop|status|wait|kill N|start-node N|stop-node N|restart-node N|urls|port N|node N|pid N|ctl N ARGS..." >&2
  exit 2
  ;;
esac
