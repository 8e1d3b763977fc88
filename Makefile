# fcsink's dev loop. `make demo` and `make test` do all set-up on a fresh machine.
.PHONY: setup demo test lint fmt plugins bench e2e e2e-tansu tansu-smoke kafka-cluster ledger fuzz

# The Wasm target, the Tansu and Apache Kafka brokers, the Python client used as an independent peer.
setup:
	scripts/timed.sh setup scripts/setup.sh

# Broker + function emulator + fcsink + sample records, end to end; only the
# demo's broker is installed (DEMO_BROKER=kafka, the default, or tansu).
demo:
	scripts/setup.sh demo
	scripts/quickstart.sh

# Every test: unit, plugin (native), sandbox, Python and JS plugins, end-to-end
# against Apache Kafka (one node, and the three-node cluster), the Tansu
# smoke subset, the projects `fcsink plugin new` generates, and the ledger
# campaign's short form (every fault scenario, 2000 records each: nothing lost).
test: setup
	scripts/timed.sh "cargo test --workspace" cargo test --workspace --locked
	scripts/timed.sh "tansu smoke" $(MAKE) tansu-smoke
	cd plugins && ../scripts/timed.sh "plugin tests" cargo test --locked
	scripts/timed.sh "scaffolds" scripts/test-scaffolds.sh
	cargo build --locked -p fcsink-tests --bins
	scripts/timed.sh "ledger (short)" cargo run --locked -p fcsink-tests --bin ledger

# What must keep working on Tansu (the README's compatibility matrix): the
# harness, headers in every format, FC 2.0 and 3.0, dead letters, Lambda, a
# two-instance fleet, and the ledger's broker-restart and sigkill plans.
TANSU_SMOKE = broker_smoke:: headers:: fc_e2e::async_fc2_delivers_every_record_in_order_and_commits \
	fc_e2e::sync_fc3_delivers_and_gets_the_function_result \
	fc_e2e::a_client_error_dead_letters_the_batch_with_reason_headers \
	lambda_e2e::sync_lambda_gets_confluent_payloads_and_answers_go_to_the_success_topic \
	fleet::two_instances_share_partitions_follow_the_config_topic_and_hand_over_partitions
tansu-smoke:
	FCSINK_BROKER=tansu cargo test -p fcsink-tests --locked --test main -- $(TANSU_SMOKE)
	cargo build --locked -p fcsink-tests --bins
	FCSINK_BROKER=tansu cargo run --locked -p fcsink-tests --bin ledger -- broker-restart sigkill

# The ledger campaign's long form: 100 000 records per scenario, release build.
ledger: setup
	scripts/ledger.sh

# Only the end-to-end tests, against one Apache Kafka node.
e2e: setup
	cargo test -p fcsink-tests --locked --test main

# The whole end-to-end suite against Tansu instead (not every test passes
# there: see the README's compatibility matrix).
e2e-tansu: setup
	FCSINK_BROKER=tansu cargo test -p fcsink-tests --locked --test main

# A three-node Apache Kafka cluster: a leader killed, static membership, a
# killed instance taken over, 10 MB records, dead letters with replicas down.
kafka-cluster: setup
	cargo test -p fcsink-tests --locked --test kafka_cluster

# Every fuzz target for FUZZ_SECONDS each (nightly, libFuzzer). New inputs
# land in fuzz/corpus/; minimise with `cd fuzz && cargo +nightly fuzz cmin <target>`
# before committing them (`make test` replays them).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = config encode record answer partial sts config_topic status_topic import_confluent scrub
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		cargo +nightly fuzz run -s none $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cd plugins && cargo fmt --all -- --check && cargo clippy --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all
	cd plugins && cargo fmt --all

plugins:
	cd plugins && cargo build --release --locked --target wasm32-wasip2

bench: setup
	cargo bench -p fcsink --bench transform
	cargo run --release --locked -p fcsink-tests --bin bench-plugins
	scripts/bench-pipeline.sh
	scripts/bench-load.sh
	scripts/bench-delivery.sh
