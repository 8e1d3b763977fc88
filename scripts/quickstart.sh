#!/usr/bin/env bash
# The quick start: a broker (Apache Kafka, or Tansu), the local Function
# Compute emulator and fcsink, end to end, with a few sample records.
#
#   make demo                          # runs scripts/setup.sh first, then this
#   scripts/quickstart.sh              # the same, once setup has been done
#   KEEP_RUNNING=1 scripts/quickstart.sh   # leave everything running afterwards
#   scripts/quickstart.sh stop         # stop what KEEP_RUNNING=1 left running
#
# Environment:
#   DEMO_BROKER        kafka (the default: Apache Kafka in KRaft mode, one node)
#                      or tansu
#   KAFKA_PORT         the broker's port on 127.0.0.1 (default 9092); Apache
#                      Kafka's controller listens on KAFKA_PORT + 10000
#   FC_PORT            the emulator's port on 127.0.0.1 (default 9000)
#   KEEP_RUNNING=1     do not stop the broker, the emulator and fcsink at the end
#   DEMO_TIMEOUT       seconds to wait for the records to reach the function (default 60)
#   FCSINK_TOOLS, FCSINK_VENV  where the brokers and the Python venv live (see setup.sh)
#
# Everything it writes goes to the git-ignored .run/ folder: the broker's
# data (wiped at every start, for a clean demo), the generated config, one
# log per process and their pid files.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run_dir="$repo/.run"
kafka_port="${KAFKA_PORT:-9092}"
fc_port="${FC_PORT:-9000}"
keep_running="${KEEP_RUNNING:-0}"
demo_timeout="${DEMO_TIMEOUT:-60}"
broker="${DEMO_BROKER:-kafka}"

topic="fc-test-input"
partitions=3
example="$repo/examples/quickstart.toml"
config="$run_dir/quickstart.toml"
tansu_data="$run_dir/tansu"
tansu_log="$run_dir/tansu.log"
# Apache Kafka's node: scripts/kafka.sh keeps its data, log and pid here.
kafka_run="$run_dir/kafka"
kafka_log="$kafka_run/node-1/kafka.log"
emulator_log="$run_dir/fc-emulator.log"
fcsink_log="$run_dir/fcsink.log"

# LOCAL DEMO VALUES, not a real AccessKey: the emulator accepts exactly this
# key and fcsink signs its requests with it. Real keys never go in a script.
export ALIBABA_CLOUD_ACCESS_KEY_ID="demo-access-key-id"
export ALIBABA_CLOUD_ACCESS_KEY_SECRET="demo-access-key-secret"
unset ALIBABA_CLOUD_SECURITY_TOKEN

# The processes started by this run (name → pid), stopped again on exit.
declare -A started=()
# The order to stop them in: fcsink first, so it can still commit to the broker.
stop_order=(fcsink fc-emulator tansu kafka)

say() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() {
    printf '\nerror: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------- processes

pid_file() { echo "$run_dir/$1.pid"; }

# True when `pid` is a live process (a child that exited but was not yet
# waited for is a zombie, which `kill -0` would still find).
is_alive() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z* ]]
}

# True when `pid` is alive and runs the command `name` (not a recycled pid).
is_ours() {
    local name="$1" pid="$2" comm
    comm="$(ps -o comm= -p "$pid" 2>/dev/null || true)"
    # Apache Kafka runs as java.
    [[ "$name" == kafka ]] && name=java
    is_alive "$pid" && [[ "$(basename -- "${comm// /}")" == "$name" ]]
}

# Sends the process SIGTERM and waits up to its grace period, then
# SIGKILL. Prints the exit status when the process is a child of this shell.
stop_process() {
    local name="$1" pid="$2" grace waited=0 status=0
    if [[ "$name" == kafka ]]; then
        # Not a child of this shell: scripts/kafka.sh stops it and deletes its data.
        KAFKA_RUN="$kafka_run" "$repo/scripts/kafka.sh" stop 2>/dev/null
        note "stopped kafka (pid $pid)"
        rm -f "$(pid_file kafka)"
        return 0
    fi
    grace="$(grace_of "$name")"
    kill -TERM "$pid" 2>/dev/null || true
    while is_alive "$pid" && ((waited < grace * 10)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if is_alive "$pid"; then
        note "$name (pid $pid) did not stop within ${grace}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    if [[ -n "${started[$name]:-}" ]]; then
        wait "$pid" 2>/dev/null || status=$?
        note "stopped $name (pid $pid, exit status $status)"
    else
        note "stopped $name (pid $pid)"
    fi
    rm -f "$(pid_file "$name")"
}

# Grace periods: fcsink drains and commits, Tansu needs about 1.5 s
# (scripts/kafka.sh waits for Apache Kafka itself).
grace_of() {
    case "$1" in
        fcsink) echo 30 ;;
        tansu) echo 10 ;;
        *) echo 5 ;;
    esac
}

# Stops the processes a previous run left behind (KEEP_RUNNING=1), found by
# their pid files and checked by name, so a recycled pid is left alone.
stop_previous() {
    local name pid
    for name in "${stop_order[@]}"; do
        [[ -f "$(pid_file "$name")" ]] || continue
        pid="$(cat "$(pid_file "$name")")"
        if is_ours "$name" "$pid"; then
            say "Stopping $name left running by an earlier run (pid $pid)"
            stop_process "$name" "$pid"
        fi
        rm -f "$(pid_file "$name")"
    done
    # Apache Kafka's data from a run that could not stop it.
    if [[ -d "$kafka_run" ]]; then
        KAFKA_RUN="$kafka_run" "$repo/scripts/kafka.sh" stop 2>/dev/null
    fi
}

# Runs a command in the background with its output in `log`; records its pid.
# `set -m` gives it a process group of its own, so a Ctrl-C in the terminal
# reaches only this script, whose exit trap then stops everything in order
# (fcsink before the broker it commits to).
spawn() {
    local name="$1" log="$2"
    shift 2
    set -m
    "$@" </dev/null >"$log" 2>&1 &
    started[$name]=$!
    set +m
    echo "$!" >"$(pid_file "$name")"
}

# Exits with the log's tail when `name` is no longer running.
check_alive() {
    local name="$1" log="$2"
    if ! is_alive "${started[$name]}"; then
        show_tail "$log"
        die "$name exited unexpectedly; its log is $log"
    fi
}

show_tail() {
    local log="$1"
    printf '\n--- last lines of %s ---\n' "$log" >&2
    tail -n 20 "$log" >&2 2>/dev/null || true
    printf -- '--- end of %s ---\n' "$log" >&2
}

show_all_tails() {
    local log
    for log in "$tansu_log" "$kafka_log" "$emulator_log" "$fcsink_log"; do
        [[ -f "$log" ]] && show_tail "$log"
    done
    return 0
}

on_exit() {
    local status=$? name
    trap - EXIT INT TERM
    if ((${#started[@]} == 0)); then
        exit "$status"
    fi
    if [[ "$keep_running" == 1 ]]; then
        say "Left running (KEEP_RUNNING=1)"
        for name in "${stop_order[@]}"; do
            [[ -n "${started[$name]:-}" ]] && note "$name: pid ${started[$name]}"
        done
        note "broker:   127.0.0.1:$kafka_port (topic $topic)"
        note "function: http://127.0.0.1:$fc_port (GET /_emulator/invocations lists what arrived)"
        note "logs:     $(broker_log_name)  .run/fc-emulator.log  .run/fcsink.log"
        note "stop them with: scripts/quickstart.sh stop"
        exit "$status"
    fi
    say "Stopping what this run started (fcsink first, so it commits its offsets)"
    for name in "${stop_order[@]}"; do
        [[ -n "${started[$name]:-}" ]] || continue
        stop_process "$name" "${started[$name]}"
    done
    exit "$status"
}

# ---------------------------------------------------------------- steps

build() {
    say "Building fcsink and fc-emulator (release)"
    (cd "$repo" && cargo build --release --locked -p fcsink -p fc-emulator)
    local target_dir="${CARGO_TARGET_DIR:-$repo/target}"
    fcsink="$target_dir/release/fcsink"
    fc_emulator="$target_dir/release/fc-emulator"
    [[ -x "$fcsink" && -x "$fc_emulator" ]] ||
        die "the build succeeded but $fcsink or $fc_emulator is missing"
}

find_tools() {
    case "$broker" in
    tansu)
        tansu="$("$repo/scripts/install-tansu.sh" | tail -n 1)"
        [[ -x "$tansu" ]] || die "Tansu is not installed; run DEMO_BROKER=tansu scripts/setup.sh demo (or DEMO_BROKER=tansu make demo)"
        ;;
    kafka)
        "$repo/scripts/install-kafka.sh" >/dev/null ||
            die "Apache Kafka is not installed; run scripts/setup.sh demo (or make demo)"
        ;;
    *) die "DEMO_BROKER must be kafka or tansu (got '$broker')" ;;
    esac
    python="$("$repo/scripts/python-env.sh" | tail -n 1)"
    [[ -x "$python" ]] || die "the Python venv is missing; run scripts/setup.sh demo (or make demo)"
}

broker_log_name() {
    case "$broker" in
    tansu) echo .run/tansu.log ;;
    kafka) echo .run/kafka/node-1/kafka.log ;;
    esac
}

# Fails when something already listens on 127.0.0.1:`port`.
require_free_port() {
    local port="$1" what="$2" variable="$3"
    if ! "$python" - "$port" <<'EOF'; then
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
        die "port $port on 127.0.0.1 is busy, so $what cannot listen there.
       Stop whatever uses it, or pick another port: $variable=<port> make demo"
    fi
}

# Both ports, before anything starts.
check_ports() {
    [[ "$kafka_port" =~ ^[0-9]+$ && "$fc_port" =~ ^[0-9]+$ ]] ||
        die "KAFKA_PORT and FC_PORT must be port numbers (got '$kafka_port' and '$fc_port')"
    [[ "$kafka_port" != "$fc_port" ]] ||
        die "KAFKA_PORT and FC_PORT must differ (both are $kafka_port)"
    require_free_port "$kafka_port" "the broker" KAFKA_PORT
    if [[ "$broker" == kafka ]]; then
        require_free_port "$((kafka_port + 10000))" "Apache Kafka's controller" KAFKA_PORT
    fi
    require_free_port "$fc_port" "the emulator" FC_PORT
}

# Waits up to `seconds` for `check` to succeed while `name` keeps running.
wait_until() {
    local name="$1" log="$2" seconds="$3" what="$4"
    shift 4
    local tries=$((seconds * 10))
    until "$@"; do
        check_alive "$name" "$log"
        tries=$((tries - 1))
        if ((tries <= 0)); then
            show_tail "$log"
            die "$name: $what did not happen within ${seconds}s; its log is $log"
        fi
        sleep 0.1
    done
}

start_tansu() {
    say "Starting Tansu on 127.0.0.1:$kafka_port (SQLite in .run/tansu, wiped for a clean demo)"
    rm -rf "$tansu_data"
    mkdir -p "$tansu_data"
    # sqlite:// paths are relative to the working directory: start it there.
    spawn tansu "$tansu_log" bash -c 'cd "$1" && shift && exec "$@"' _ "$tansu_data" \
        "$tansu" broker \
        --cluster-id fcsink-quickstart \
        --listener-url "tcp://127.0.0.1:$kafka_port" \
        --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
        --storage-engine sqlite://tansu.db
    wait_until tansu "$tansu_log" 20 "startup" grep -q "ready in" "$tansu_log"
    note "ready (pid ${started[tansu]}, log .run/tansu.log)"
}

start_kafka() {
    say "Starting Apache Kafka (KRaft, one node) on 127.0.0.1:$kafka_port (data in .run/kafka, deleted at the end)"
    KAFKA_RUN="$kafka_run" KAFKA_PORT="$kafka_port" KAFKA_CONTROLLER_PORT="$((kafka_port + 10000))" \
        "$repo/scripts/kafka.sh" start >/dev/null 2>"$run_dir/kafka-start.log" || {
        show_tail "$run_dir/kafka-start.log"
        die "Apache Kafka did not start; see $run_dir/kafka-start.log"
    }
    started[kafka]="$(cat "$kafka_run/node-1/pid")"
    echo "${started[kafka]}" >"$(pid_file kafka)"
    note "ready (pid ${started[kafka]}, log .run/kafka/node-1/kafka.log)"
}

start_broker() {
    case "$broker" in
    tansu) start_tansu ;;
    kafka) start_kafka ;;
    esac
}

emulator_up() { curl -fsS -o /dev/null "http://127.0.0.1:$fc_port/_emulator/stats" 2>/dev/null; }

start_emulator() {
    say "Starting the Function Compute emulator on 127.0.0.1:$fc_port"
    spawn fc-emulator "$emulator_log" "$fc_emulator" --listen "127.0.0.1:$fc_port"
    wait_until fc-emulator "$emulator_log" 20 "startup" emulator_up
    note "ready (pid ${started[fc-emulator]}, log .run/fc-emulator.log)"
    note "it accepts the local demo AccessKey $ALIBABA_CLOUD_ACCESS_KEY_ID"
}

create_topic() {
    say "Creating the topic $topic ($partitions partitions)"
    "$python" - "127.0.0.1:$kafka_port" "$topic" "$partitions" <<'EOF'
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it quietly
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})
future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic]
try:
    future.result(timeout=30)
    print(f"    created {topic}")
except KafkaException as err:
    if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
        sys.exit(f"error: cannot create {topic}: {err}")
    print(f"    {topic} already exists")
# Apache Kafka's metadata shows a new topic a moment after it is created.
deadline = time.monotonic() + 30
while (found := admin.list_topics(topic, timeout=30).topics[topic]).error is not None:
    if time.monotonic() > deadline:
        sys.exit(f"error: {topic} is not in the broker's metadata: {found.error}")
    time.sleep(0.2)
print(f"    {topic} has {len(found.partitions)} partitions")
EOF
}

write_config() {
    say "Writing .run/quickstart.toml from examples/quickstart.toml"
    sed -e "s|\"127\\.0\\.0\\.1:9092\"|\"127.0.0.1:$kafka_port\"|" \
        -e "s|\"http://127\\.0\\.0\\.1:9000\"|\"http://127.0.0.1:$fc_port\"|" \
        "$example" >"$config"
    grep -q "^bootstrap_servers = \"127.0.0.1:$kafka_port\"" "$config" &&
        grep -q "^endpoint = \"http://127.0.0.1:$fc_port\"" "$config" ||
        die "examples/quickstart.toml no longer has the addresses this script rewrites"
    note "bootstrap_servers = 127.0.0.1:$kafka_port, endpoint = http://127.0.0.1:$fc_port"
}

validate_config() {
    say "fcsink validate --config .run/quickstart.toml"
    "$fcsink" validate --config "$config" | sed 's/^/    /'
}

fcsink_started() { grep -q "Started" "$fcsink_log"; }

start_fcsink() {
    say "Starting fcsink run --config .run/quickstart.toml"
    spawn fcsink "$fcsink_log" "$fcsink" run --config "$config"
    wait_until fcsink "$fcsink_log" 60 "startup" fcsink_started
    note "running (pid ${started[fcsink]}, log .run/fcsink.log)"
}

# The sample records: the README's record, then a few orders.
produce() {
    say "Producing the sample records to $topic"
    "$python" - "127.0.0.1:$kafka_port" "$topic" <<'EOF'
import json, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it quietly
from confluent_kafka import Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
records = [("demo", '{"key": "test"}')]
records += [
    (f"order-{i}", json.dumps({"order": i, "item": item, "quantity": i}))
    for i, item in enumerate(["apple", "pear", "plum", "fig", "kiwi"], start=1)
]
errors = []

def delivered(err, msg):
    if err is not None:
        errors.append(f"{msg.key()!r}: {err}")
    else:
        print(f"    {msg.key().decode()} -> partition {msg.partition()} offset {msg.offset()}: {msg.value().decode()}")

producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 30000})
for key, value in records:
    producer.produce(topic, key=key, value=value, on_delivery=delivered)
left = producer.flush(40)
if errors or left:
    sys.exit("error: not every record was produced: " + "; ".join(errors or [f"{left} still queued"]))
EOF
}

# Polls the emulator until every sample record has arrived, then prints the
# function's log for those invocations and a summary.
wait_for_delivery() {
    say "Waiting for the records at the function (up to ${demo_timeout}s)"
    if ! "$python" - "http://127.0.0.1:$fc_port" "$topic" "$emulator_log" "$demo_timeout" <<'EOF'; then
import json, signal, sys, time, urllib.request
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it quietly

url, topic, log_path, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
expected = {"demo"} | {f"order-{i}" for i in range(1, 6)}

def arrived():
    try:
        with urllib.request.urlopen(url + "/_emulator/invocations", timeout=5) as reply:
            invocations = json.load(reply)
    except OSError as err:
        sys.exit(f"error: the emulator at {url} does not answer: {err}")
    ours = []
    for inv in invocations:
        if inv["failed"]:
            continue
        records = [r for r in json.loads(inv["body"]) if r.get("topic") == topic]
        if records:
            ours.append((inv["request_id"], records))
    return ours

deadline = time.monotonic() + timeout
while True:
    ours = arrived()
    keys = {r.get("key") for _, records in ours for r in records}
    if expected <= keys:
        break
    if time.monotonic() > deadline:
        missing = ", ".join(sorted(expected - keys))
        sys.exit(f"error: after {timeout:.0f}s the function has not received: {missing}")
    time.sleep(0.2)

ids = {request_id for request_id, _ in ours}
print()
with open(log_path, encoding="utf-8", errors="replace") as log:
    lines = log.read().splitlines()
show = False
for line in lines:
    if line.startswith("FC Invoke Start RequestId: "):
        show = line.split(": ", 1)[1] in ids
    if show:
        print("    " + line)
    if line.startswith("FC Invoke End RequestId: "):
        show = False
count = sum(len(records) for _, records in ours)
print(f"\n    {count} records in {len(ours)} invocations of guide-hello_world/hello_world")
EOF
        show_all_tails
        die "the records did not all reach the function"
    fi
}

plugin_demo() {
    say "fcsink plugin test: the built-in passthrough plugin on the default record (key demo)"
    "$fcsink" plugin test | sed 's/^/    /'
}

# ---------------------------------------------------------------- main

main() {
    mkdir -p "$run_dir"
    case "${1:-}" in
        stop)
            stop_previous
            echo "the quick start's processes are stopped"
            return 0
            ;;
        "") ;;
        *) die "unknown argument ${1}; usage: scripts/quickstart.sh [stop]" ;;
    esac
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    [[ "$keep_running" == 0 || "$keep_running" == 1 ]] || die "KEEP_RUNNING must be 0 or 1"
    [[ "$demo_timeout" =~ ^[0-9]+$ ]] || die "DEMO_TIMEOUT must be a number of seconds (got '$demo_timeout')"
    build
    find_tools
    stop_previous
    check_ports
    start_broker
    start_emulator
    create_topic
    write_config
    validate_config
    start_fcsink
    produce
    wait_for_delivery
    plugin_demo
    say "Done: the sample records went Kafka -> fcsink -> Function Compute (emulated)"
}

main "$@"
