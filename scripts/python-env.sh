#!/usr/bin/env bash
# Create (or reuse) a Python virtualenv holding the independent Kafka client
# (confluent-kafka) and requests, used to cross-check fcsink against Tansu,
# moto's server with boto3 (a real implementation of the Lambda API that
# verifies SigV4, for the Lambda end-to-end tests) and componentize-py,
# which builds Python plugins (`fcsink plugin build-python`).
#
#   scripts/python-env.sh            # venv in <repo>/.venv (git-ignored)
#   FCSINK_VENV=~/venvs/fcsink scripts/python-env.sh
#
# Safe to run repeatedly: packages are installed only when an import fails.
# The last line printed is the venv's python.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${FCSINK_VENV:-$repo/.venv}"
python="$venv/bin/python"

if [[ ! -x "$python" ]]; then
    echo "Creating virtualenv in $venv" >&2
    python3 -m venv "$venv"
fi

if ! "$python" -c 'import confluent_kafka, requests, moto.server, boto3' 2>/dev/null; then
    echo "Installing confluent-kafka, requests, moto[server] and boto3 into $venv" >&2
    "$python" -m pip install --quiet --disable-pip-version-check \
        confluent-kafka requests 'moto[server,awslambda]==5.2.5' boto3 >&2
fi

# The version the adapter in python/fcsink_etl is tested with.
componentize_py_version=0.25.1
if [[ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $componentize_py_version" ]]; then
    echo "Installing componentize-py $componentize_py_version into $venv" >&2
    "$python" -m pip install --quiet --disable-pip-version-check "componentize-py==$componentize_py_version" >&2
fi

echo "$python"
