#!/usr/bin/env bash
# Everything a fresh machine lacks for the demo and the tests: the Wasm
# target, Tansu (the Kafka-protocol broker), Apache Kafka (jars from Maven
# Central; needs Java 17 and Maven), a Python venv with the
# independent Kafka client and componentize-py, and componentize-js (npm).
# Safe to run repeatedly.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
"$repo/scripts/install-tansu.sh" >/dev/null
"$repo/scripts/install-kafka.sh" >/dev/null
"$repo/scripts/python-env.sh" >/dev/null
"$repo/scripts/js-env.sh"
echo "setup done" >&2
