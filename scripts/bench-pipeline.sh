#!/usr/bin/env bash
# The whole-pipeline benchmark: CPU per record and records/s of the fcsink
# process against the function emulator, beside a Python sink doing the same
# job (bench/baseline.py) and a bare consumer that only counts
# (bench/count_consumer.py). Prints two tables.
#
#   scripts/bench-pipeline.sh                  # every cell (about 10 minutes)
#   scripts/bench-pipeline.sh 100B/20          # cells whose label starts so
#   scripts/bench-pipeline.sh --records 20000  # fewer records per cell
#
# Arguments go to the bench binary (tests/src/bin/bench-pipeline.rs).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FCSINK_TOOLS="${FCSINK_TOOLS:-$repo/.tools}"

"$repo/scripts/setup.sh"
FCSINK_PYTHON="$("$repo/scripts/python-env.sh" | tail -n 1)"
export FCSINK_PYTHON

cd "$repo"
# The bench runs the release `fcsink` binary it finds beside itself.
cargo build --release --locked -p fcsink --bin fcsink
cargo run --release --locked -p fcsink-tests --bin bench-pipeline -- "$@"
