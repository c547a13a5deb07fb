#!/usr/bin/env bash
# Offline fallback only (scripts/setup.sh calls it when rustup cannot download the wasm32
# target). Builds the Rust standard library for wasm32-unknown-unknown from Debian's
# rust-web-src with Debian's rustc-web and installs it into that compiler's sysroot, the layout
# of Debian's own libstd-rust-dev-wasm32 package. Afterwards `cargo build --target
# wasm32-unknown-unknown` works with Debian's rustc with no -Z flags and no nightly.
# Idempotent: skipped when the stamp matches the compiler.
set -euo pipefail

RUSTC_WEB=${RUSTC_WEB:-/usr/bin/rustc}
CARGO_WEB=${CARGO_WEB:-/usr/bin/cargo}
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo

SYSROOT=$("$RUSTC_WEB" --print sysroot)
DEST="$SYSROOT/lib/rustlib/wasm32-unknown-unknown/lib"
STAMP="$DEST/.built-by"
WANT=$("$RUSTC_WEB" -vV | tr '\n' ' ')

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "setup: wasm32 std for $("$RUSTC_WEB" -V) already in $DEST"
  exit 0
fi
[ -d "$SYSROOT/lib/rustlib/src/rust/library/std" ] || {
  echo "setup: FAILED: missing the standard library's sources (apt-get install rust-web-src)" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/Cargo.toml" <<'TOML'
[package]
name = "wasm-sysroot-dummy"
version = "0.0.0"
edition = "2021"
[lib]
path = "lib.rs"
[profile.release]
opt-level = 3
debug = false
debug-assertions = false
overflow-checks = false
codegen-units = 1
TOML
: > "$WORK/lib.rs"

echo "setup: building the wasm32 std with $("$RUSTC_WEB" -V) (about a minute, once)"
# -Cembed-bitcode=yes keeps LLVM bitcode in the rlibs so that `lto = true` profiles work.
env -u RUSTUP_TOOLCHAIN -u CARGO_ENCODED_RUSTFLAGS -u CARGO_TARGET_DIR \
  RUSTC="$RUSTC_WEB" RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cembed-bitcode=yes" \
  CARGO_TARGET_DIR="$WORK/target" \
  "$CARGO_WEB" build --quiet --manifest-path "$WORK/Cargo.toml" --release \
  --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort

$SUDO mkdir -p "$DEST"
$SUDO find "$DEST" -maxdepth 1 -name '*.rlib' -delete
$SUDO cp "$WORK"/target/wasm32-unknown-unknown/release/deps/lib*.rlib "$DEST/"
$SUDO rm -f "$DEST"/libwasm_sysroot_dummy-*.rlib
echo "$WANT" | $SUDO tee "$STAMP" > /dev/null
echo "setup: installed $(ls "$DEST"/*.rlib | wc -l) rlibs into $DEST"
