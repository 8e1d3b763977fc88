#!/usr/bin/env bash
# Runs a command and prints how long it took, so `make test`'s log says what
# each part costs (the README's timings come from it).
#
#   scripts/timed.sh LABEL COMMAND [ARGS…]
set -uo pipefail
label="$1"
shift
start=$SECONDS
"$@"
status=$?
echo "==> [timing] $label: $((SECONDS - start)) s (exit $status)" >&2
exit "$status"
