#!/usr/bin/env bash
# All of Lotsa's tests, on a fresh machine of this kind: installs what the binding, interop and
# browser tests need (pytest, the interop libraries and playwright from PyPI, Maven artifacts from
# Maven Central, Chromium from Debian, axe-core from npm) and the FHIR validator (HAPI FHIR from
# Maven Central, .ci/fhir-setup.sh), then runs, in order,
#   1. what CI cannot see: the repository stands alone (no reference to a folder beside it, no
#      issue-tracker pointers, every relative Markdown link resolves inside the repository),
#   2. the protocol interop tests (tests/interop): the published vectors, the schemas and the
#      OpenAPI document checked with Python's own libraries (pyhpke, http-message-signatures,
#      cryptography, jsonschema), no Lotsa code, and a device written from PROTOCOL.md alone
#      against the running clinic service (`lotsa clinic serve`, built first),
#   2b. the browser tests of the clinic's staff pages (tests/browser): Debian's Chromium (installed
#      with apt-get when missing) driven by playwright, axe-core from npm at WCAG 2.1 AA,
#   3. what CI cannot see either: no OpenSSL, aws-lc or native-tls anywhere in the dependency tree,
#   4. cargo fmt --check, cargo clippy -D warnings and cargo doc -D warnings (the code stays clean),
#   5. the Rust suites (core unit + property tests, the SIGKILL crash tests with their long budgets,
#      the clinic's FHIR exports validated by HAPI FHIR against base R4 in one JVM,
#      races between real processes, the full-disk test on a small tmpfs it mounts (root needed;
#      it fails if it cannot), CLI end-to-end, schema tests),
#   6. the binding suites (Python through the generated module, including the table test that
#      runs the same cases through the CLI, and Kotlin on the JVM).
# Each step prints how long it took. Any part that cannot run fails the whole run; nothing is
# skipped silently.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

started=$SECONDS
step_name=""
step_start=$SECONDS
end_step() {
    [[ -n "$step_name" ]] && printf '<== %s: %d s\n' "$step_name" $((SECONDS - step_start))
    return 0
}
step() {
    end_step
    step_name="$*"
    step_start=$SECONDS
    printf '\n==> %s\n' "$*"
}
trap 'end_step; printf "\ntotal: %d s\n" $((SECONDS - started))' EXIT

step "setup: test tools for the bindings"
bash .ci/bindings-setup.sh

step "setup: Chromium, playwright and axe-core for the browser tests"
bash .ci/browser-setup.sh

step "setup: HAPI FHIR's validator for the FHIR export tests"
bash .ci/fhir-setup.sh

step "the repository stands alone (links, references, no folder beside it)"
python3 scripts/stands-alone.py

step "protocol interop tests (tests/interop: vectors, schemas, OpenAPI, and an independent device against the running clinic service, with Python's own libraries)"
python3 -c 'import pytest' \
    || { echo "pytest is not installed for python3: run .ci/bindings-setup.sh (pip install -r tests/interop/requirements.txt)" >&2; exit 1; }
# The independent device talks to `lotsa clinic serve`: the binary it starts.
cargo build -p lotsa --locked --quiet
python3 -m pytest tests/interop

step "browser tests of the staff pages (Debian's headless Chromium through playwright, axe-core at WCAG 2.1 AA; screenshots in tests/browser/artifacts)"
python3 -m pytest tests/browser

step "no OpenSSL, aws-lc or native-tls in the dependency tree"
cargo tree --workspace --target all -e normal --locked -i ring >/dev/null \
    || { echo "cargo tree cannot read the dependency graph" >&2; exit 1; }
for crate in aws-lc-sys aws-lc-rs openssl-sys native-tls; do
    # `cargo tree -i` refuses a crate that is not in the graph at all: that refusal is the pass;
    # any other outcome (the crate found, or cargo failing otherwise) fails the run.
    if found="$(cargo tree --workspace --target all -e normal --locked -i "$crate" 2>&1)"; then
        printf '%s is in the dependency tree:\n%s\n' "$crate" "$found" >&2
        exit 1
    elif [[ "$found" != *"did not match any packages"* ]]; then
        printf 'cargo tree failed for %s:\n%s\n' "$crate" "$found" >&2
        exit 1
    fi
    echo "not in the tree: $crate"
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "a small file system for the full-disk test"
full_disk="$(mktemp -d "${TMPDIR:-/tmp}/lotsa-full-disk.XXXXXX")"
if ! mount -t tmpfs -o size=3m,mode=0700 tmpfs "$full_disk"; then
    echo "cannot mount a tmpfs at $full_disk: the full-disk test needs one (run as root)" >&2
    exit 1
fi
cleanup_full_disk() { umount "$full_disk" 2>/dev/null || true; rmdir "$full_disk" 2>/dev/null || true; }
trap 'cleanup_full_disk; end_step; printf "\ntotal: %d s\n" $((SECONDS - started))' EXIT
echo "mounted a 3 MiB tmpfs at $full_disk"

step "Rust tests (the crash test with its long budget, the full-disk test on the tmpfs)"
LOTSA_CRASH_SECS="${LOTSA_CRASH_SECS:-55}" LOTSA_SYNC_KILLS="${LOTSA_SYNC_KILLS:-30}" LOTSA_FULL_DISK_DIR="$full_disk" cargo test --workspace --locked

step "binding tests (Python, Kotlin)"
bash bindings/test.sh
