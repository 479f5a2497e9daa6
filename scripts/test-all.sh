#!/usr/bin/env bash
# All of Lotsa's tests, on a fresh machine of this kind: installs what the binding tests need
# (pytest from PyPI, Maven artifacts from Maven Central), then runs, in order,
#   1. cargo fmt --check, cargo clippy -D warnings and cargo doc -D warnings (the code stays clean),
#   2. the Rust suites (core unit + property tests, CLI end-to-end, schema tests),
#   3. the binding suites (Python through the generated module, Kotlin on the JVM).
# Any part that cannot run fails the whole run; nothing is skipped silently.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

step "setup: test tools for the bindings"
bash .ci/bindings-setup.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "Rust tests"
cargo test --workspace --locked

step "binding tests (Python, Kotlin)"
bash bindings/test.sh
