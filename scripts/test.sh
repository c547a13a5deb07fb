#!/usr/bin/env bash
# `make test`: set up what is missing, then every check CI runs, in this order:
# formatting, clippy (server and browser sides), the Rust tests (SQLite always; PostgreSQL
# when reachable, required when CI is set), a build of the front end, and the Playwright
# tests in Chromium against a freshly started portal. Ends with a summary.
set -uo pipefail
cd "$(dirname "$0")/.."

T0=$(date +%s)
LOG_DIR=${TEST_LOG_DIR:-$(mktemp -d /tmp/portcullis-test.XXXXXX)}
SUMMARY=()

summary() {
  echo
  echo "==================== test summary ===================="
  printf '%s\n' "${SUMMARY[@]}"
  echo "total time: $(( $(date +%s) - T0 ))s   logs: $LOG_DIR"
  echo "======================================================"
}

# step NAME COMMAND...: runs one check, output also kept in $LOG_DIR/NAME.log.
step() {
  local name=$1; shift
  local log="$LOG_DIR/$name.log"
  local t=$(date +%s)
  echo "==> $name: $*"
  if "$@" 2>&1 | tee "$log"; then
    SUMMARY+=("ok    $(printf '%-14s' "$name") $(( $(date +%s) - t ))s$(step_detail "$name" "$log")")
  else
    SUMMARY+=("FAIL  $(printf '%-14s' "$name") $(( $(date +%s) - t ))s  (see $log)")
    summary
    exit 1
  fi
}

step_detail() {
  local name=$1 log=$2
  case "$name" in
    rust-tests)
      awk '/^test result:/ { p += $4; f += $6; i += $8 }
           /^!!! SKIPPED/ { s++ }
           END { printf "  %d passed, %d failed, %d ignored", p, f, i;
                 if (s) printf ", %d PostgreSQL runs SKIPPED", s; else printf ", PostgreSQL included" }' "$log" ;;
    playwright)
      grep -Eo '[0-9]+ (passed|failed|skipped|flaky)' "$log" | tr '\n' ' ' | sed 's/^/  /'
      if grep -q '^!!! SKIPPED' "$log"; then printf ', PostgreSQL SKIPPED'; else printf ', SQLite and PostgreSQL'; fi ;;
  esac
}

step setup scripts/setup.sh test
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

step fmt cargo fmt --all -- --check
step clippy-server cargo clippy --locked --workspace --exclude frontend --all-targets -- -D warnings
# The browser side (app with `hydrate`) is linted on the host target: same code, no wasm
# toolchain needed for clippy.
step clippy-browser cargo clippy --locked -p frontend --all-targets -- -D warnings
# ... and its contractor's bundle: app without `admin` (its own router).
step clippy-contractor cargo clippy --locked -p frontend --no-default-features --all-targets -- -D warnings
step rust-tests cargo test --locked --workspace --exclude frontend
# Both bundles in debug: the browser tests check which bundle each page loads and that it
# hydrates. The contractor's bundle's size limit (bundle.spec.ts) applies to a release build
# only (`scripts/build --frontend-only --release-contractor`, ~9 min of CPU more on a cold
# cache); it is not part of this run yet (issue 19: the 300 KB target is not met).
step build-front scripts/build --frontend-only
# The Rust tests built target/debug/portcullis (the integration tests run it); build it only
# if they did not, so the feature set (and the build) stays the tests' own.
[ -x "$TARGET_DIR/debug/portcullis" ] || step build-server cargo build --locked -p server --bin portcullis
step playwright env PORTCULLIS_BIN="$TARGET_DIR/debug/portcullis" SITE_ROOT="$PWD/target/site" \
  npm --prefix end2end test --silent

summary
