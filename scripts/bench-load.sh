#!/usr/bin/env bash
# fcsink near its limits: pipelining against C·B/L, memory while draining a
# backlog against a slow function, cold start. Prints tables.
#
#   scripts/bench-load.sh                       # all three parts (about 10 minutes)
#   scripts/bench-load.sh pipelining            # one part: pipelining, memory, cold-start
#   scripts/bench-load.sh memory --records 200000
#
# Arguments go to the bench binary (tests/src/bin/bench-load.rs).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FCSINK_TOOLS="${FCSINK_TOOLS:-$repo/.tools}"

"$repo/scripts/setup.sh"

cd "$repo"
# bench-load runs the fcsink program that this builds beside it.
cargo build --release --locked -p fcsink-tests --bins
cargo run --release --locked -p fcsink-tests --bin bench-load -- "$@"
