#!/usr/bin/env bash
# The ledger campaign: numbered records through fcsink while faults play,
# then a count of delivered, filtered, dead-lettered, duplicated and lost.
#
#   scripts/ledger.sh                     # the long form: 100 000 records per plan, release build
#   scripts/ledger.sh --records 2000 all  # fewer records, one plan
#
# `make test` runs the short form (2000 records, debug build). Arguments go
# to the ledger binary (tests/src/bin/ledger.rs). Exits 1 if anything is lost.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FCSINK_TOOLS="${FCSINK_TOOLS:-$repo/.tools}"

"$repo/scripts/setup.sh"

cd "$repo"
# The ledger runs the fcsink program that this builds beside it.
cargo build --release --locked -p fcsink-tests --bins
if [ $# -eq 0 ]; then
    set -- --records 100000
fi
cargo run --release --locked -p fcsink-tests --bin ledger -- "$@"
