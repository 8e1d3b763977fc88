#!/usr/bin/env bash
# Install componentize-js (npm) into plugins-js/node_modules, as pinned by
# plugins-js/package-lock.json, unless it is there already. Needs node and npm.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ ! -d "$repo/plugins-js/node_modules/@bytecodealliance/componentize-js" ]]; then
    command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 or newer" >&2; exit 1; }
    echo "Installing componentize-js into plugins-js/node_modules" >&2
    # Not `npm ci`: npm 10 writes this lock file without entries for the
    # other platforms' optional binaries, then `npm ci` refuses it as out of
    # sync. `npm install` still takes the locked versions.
    npm install --prefix "$repo/plugins-js" --no-audit --no-fund >&2
fi
