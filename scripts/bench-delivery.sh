#!/usr/bin/env bash
# Delivery control against what it promises: several batches of one
# partition at once (source.ordering), the request budget, adaptive
# concurrency against a throttling function. Prints tables.
#
#   scripts/bench-delivery.sh                   # all three parts (about 4 minutes)
#   scripts/bench-delivery.sh ordering          # one part: ordering, rate-limit, aimd
#
# Arguments go to the bench binary (tests/src/bin/bench-delivery.rs).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FCSINK_TOOLS="${FCSINK_TOOLS:-$repo/.tools}"

"$repo/scripts/setup.sh"

cd "$repo"
cargo run --release --locked -p fcsink-tests --bin bench-delivery -- "$@"
