#!/usr/bin/env bash
# Run Apache Kafka (KRaft, combined broker+controller nodes) on loopback by
# hand: one node, or a three-node cluster. The tests start their own brokers
# (tests/src/broker/kafka.rs); this is for trying fcsink against Kafka.
#
#   scripts/kafka.sh start          # one node: bootstrap 127.0.0.1:9092
#   scripts/kafka.sh stop
#   scripts/kafka.sh cluster-start  # three nodes: 127.0.0.1:9092,9093,9094
#   scripts/kafka.sh cluster-stop
#
# State lives in $KAFKA_RUN (default <repo>/.run/kafka, git-ignored); stop
# deletes it. KAFKA_PORT moves the first node's port (the others follow it),
# KAFKA_CONTROLLER_PORT the first controller port (default 19093). Heaps are small (KAFKA_HEAP, default -Xmx256m) so three nodes
# fit on a small machine. Installs Kafka first (scripts/install-kafka.sh).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="${KAFKA_RUN:-$repo/.run/kafka}"
heap="${KAFKA_HEAP:--Xms128m -Xmx256m}"
# Any fixed KRaft cluster id (22 characters of base64 UUID).
cluster_id="ZmNzaW5rLXRlc3RzLWthZms"
first_port="${KAFKA_PORT:-9092}"
# Controller listener of node i: KAFKA_CONTROLLER_PORT + i - 1.
controller_base=$((${KAFKA_CONTROLLER_PORT:-19093} - 1))
ready_timeout=60

libs() { "$repo/scripts/install-kafka.sh" | tail -n1; }

# java_args DIR: sets `java` to the JVM command line for node DIR.
java_args() {
    # C1 only and the serial collector: a faster start and less memory, which
    # matter more here than peak throughput.
    # shellcheck disable=SC2206
    java=(java $heap -XX:+UseSerialGC -XX:TieredStopAtLevel=1
        "-Dlog4j2.configurationFile=$1/log4j2.properties" -cp "$kafka_libs/*")
}

# write_node DIR ID NODES: server.properties for node ID of a NODES-node cluster.
write_node() {
    local dir="$1" id="$2" nodes="$3" voters="" i
    for ((i = 1; i <= nodes; i++)); do
        voters+="${voters:+,}$i@127.0.0.1:$((controller_base + i))"
    done
    local rf=$((nodes < 3 ? nodes : 3))
    local min_isr=$((rf > 1 ? 2 : 1))
    mkdir -p "$dir/data"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((first_port + id - 1)),CONTROLLER://127.0.0.1:$((controller_base + id))
advertised.listeners=PLAINTEXT://127.0.0.1:$((first_port + id - 1))
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
default.replication.factor=$rf
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
EOF
    cat >"$dir/log4j2.properties" <<EOF
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=out
EOF
}

start_nodes() {
    local nodes="$1" id dir
    kafka_libs="$(libs)"
    if [[ -d "$run" ]]; then
        echo "error: $run exists (already running? run '$0 stop' first)" >&2
        exit 1
    fi
    for ((id = 1; id <= nodes; id++)); do
        dir="$run/node-$id"
        write_node "$dir" "$id" "$nodes"
        java_args "$dir"
        "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
            -c "$dir/server.properties" >"$dir/format.log" 2>&1 ||
            { cat "$dir/format.log" >&2; exit 1; }
        nohup "${java[@]}" kafka.Kafka "$dir/server.properties" \
            >"$dir/kafka.log" 2>&1 &
        echo $! >"$dir/pid"
    done
    local started=$SECONDS
    for ((id = 1; id <= nodes; id++)); do
        dir="$run/node-$id"
        until grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null; do
            if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
                tail -n 40 "$dir/kafka.log" >&2
                echo "error: Kafka node $id exited while starting" >&2
                exit 1
            fi
            if ((SECONDS - started > ready_timeout)); then
                tail -n 40 "$dir/kafka.log" >&2
                echo "error: Kafka node $id not ready within ${ready_timeout}s" >&2
                exit 1
            fi
            sleep 0.2
        done
    done
    local bootstrap="" 
    for ((id = 1; id <= nodes; id++)); do
        bootstrap+="${bootstrap:+,}127.0.0.1:$((first_port + id - 1))"
    done
    echo "Kafka ready in $((SECONDS - started))s; logs in $run" >&2
    echo "$bootstrap"
}

stop_nodes() {
    local pid_file
    [[ -d "$run" ]] || { echo "Kafka is not running ($run missing)" >&2; return 0; }
    for pid_file in "$run"/node-*/pid; do
        [[ -f "$pid_file" ]] && kill "$(cat "$pid_file")" 2>/dev/null || true
    done
    for pid_file in "$run"/node-*/pid; do
        [[ -f "$pid_file" ]] || continue
        while kill -0 "$(cat "$pid_file")" 2>/dev/null; do sleep 0.2; done
    done
    rm -rf "$run"
    echo "Kafka stopped" >&2
}

case "${1:-}" in
start) start_nodes 1 ;;
cluster-start) start_nodes 3 ;;
stop | cluster-stop) stop_nodes ;;
*)
    echo "usage: $0 start|stop|cluster-start|cluster-stop" >&2
    exit 2
    ;;
esac
