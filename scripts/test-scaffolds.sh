#!/usr/bin/env bash
# CI for `fcsink plugin new`: generate a Rust and a Python plugin project
# into a temporary folder and check that each builds and passes its own
# test as generated. The Rust project builds in target/scaffold (kept, so
# reruns are incremental); the Python one needs scripts/python-env.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
venv="${FCSINK_VENV:-$repo/.venv}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --quiet --locked -p fcsink --manifest-path "$repo/Cargo.toml"
fcsink="$target/debug/fcsink"

echo "== Rust scaffold" >&2
"$fcsink" plugin new scaffold-rust --lang rust --dir "$work"
(
    cd "$work/scaffold-rust"
    # The outer build's target folder and flags are not the scaffold's.
    unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET
    export CARGO_TARGET_DIR="$target/scaffold"
    cargo test --quiet
    cargo build --quiet --release --target wasm32-wasip2
)
"$fcsink" plugin test "$target/scaffold/wasm32-wasip2/release/scaffold_rust.wasm" \
    --value 'a secret value' --config word=secret | grep -q '"outcome": "drop"'

echo "== Python scaffold" >&2
"$fcsink" plugin new scaffold-python --lang python --dir "$work"
(
    cd "$work/scaffold-python"
    python3 -m unittest
    "$fcsink" plugin build-python scaffold_python.py -o scaffold_python.wasm \
        --componentize-py "$venv/bin/componentize-py"
    test -s scaffold_python.wasm
)
echo "scaffolds build and pass their tests" >&2
