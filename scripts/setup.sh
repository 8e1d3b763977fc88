#!/usr/bin/env bash
# Everything a fresh machine lacks for the demo and the tests: the Wasm
# target, Tansu (the Kafka-protocol broker), Apache Kafka (jars from Maven
# Central; needs Java 17 and Maven), a Python venv with the
# independent Kafka client and componentize-py, and componentize-js (npm).
# Safe to run repeatedly.
#
#   scripts/setup.sh         # everything (make test)
#   scripts/setup.sh demo    # only what `make demo` needs: the Wasm target,
#                            # the demo's broker (DEMO_BROKER: kafka, the
#                            # default, or tansu) and the Python venv
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
case "${1:-}" in
"")
    "$repo/scripts/install-tansu.sh" >/dev/null
    "$repo/scripts/install-kafka.sh" >/dev/null
    "$repo/scripts/python-env.sh" >/dev/null
    "$repo/scripts/js-env.sh"
    ;;
demo)
    case "${DEMO_BROKER:-kafka}" in
    kafka) "$repo/scripts/install-kafka.sh" >/dev/null ;;
    tansu) "$repo/scripts/install-tansu.sh" >/dev/null ;;
    *)
        echo "error: DEMO_BROKER must be kafka or tansu (got '$DEMO_BROKER')" >&2
        exit 2
        ;;
    esac
    "$repo/scripts/python-env.sh" >/dev/null
    ;;
*)
    echo "usage: $0 [demo]" >&2
    exit 2
    ;;
esac
echo "setup done" >&2
