#!/usr/bin/env bash
# `make run`: set up what is missing, build the portal (release), and start it on its
# embedded defaults: SQLite under ./data, the built-in sandbox org, http://127.0.0.1:3000.
# Any setting in README.md can be given in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
scripts/build --release
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export SITE_ROOT=${SITE_ROOT:-$PWD/target/site}
exec "$TARGET_DIR/release/portcullis" "$@"
