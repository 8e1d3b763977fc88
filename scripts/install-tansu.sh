#!/usr/bin/env bash
# Install Tansu, the Kafka-protocol broker the integration tests run against.
#
#   scripts/install-tansu.sh                      # into <repo>/.tools (git-ignored)
#   FCSINK_TOOLS=~/.cache/fcsink-tools scripts/install-tansu.sh
#
# Safe to run repeatedly: cargo runs only when $FCSINK_TOOLS/bin/tansu is
# missing or reports a different version. A build from source takes 10+ minutes.
# The last line printed is the binary's path (the tests read it from TANSU_BIN,
# or look in the same place when FCSINK_TOOLS is set the same way).
set -euo pipefail

TANSU_VERSION="0.6.0"
TANSU_FEATURES="dynostore,libsql"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${FCSINK_TOOLS:-$repo/.tools}"
bin="$tools/bin/tansu"

installed_version() {
    # `tansu --version` prints e.g. "tansu 0.6.0".
    "$bin" --version 2>/dev/null | awk '{ print $NF; exit }'
}

if [[ -x "$bin" && "$(installed_version)" == "$TANSU_VERSION" ]]; then
    echo "Tansu $TANSU_VERSION already installed" >&2
else
    echo "Installing Tansu $TANSU_VERSION into $tools (takes a while)" >&2
    # --force replaces a binary of another version that cargo itself installed.
    cargo install tansu \
        --version "$TANSU_VERSION" \
        --features "$TANSU_FEATURES" \
        --locked \
        --force \
        --root "$tools" >&2
    if [[ "$(installed_version)" != "$TANSU_VERSION" ]]; then
        echo "error: $bin does not report version $TANSU_VERSION" >&2
        exit 1
    fi
fi

echo "$bin"
