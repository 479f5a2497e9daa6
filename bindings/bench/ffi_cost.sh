#!/usr/bin/env bash
# The cost of one FFI call: each exported call of lotsa-ffi timed from Python (ctypes) and from
# Kotlin on the JVM (JNA), against the same work done in Rust without the FFI.
#
#   bindings/bench/ffi_cost.sh [--criterion]
#
#   1. bindings/generate.sh --release     the release library (opt-level "s", LTO), as shipped
#   2. the lotsa CLI signs the example programs into <target>/ffi-cost/fixtures (as test.sh does)
#   3. Rust:   bindings/bench/rust_cost.rs, built --release with the same profile as the library;
#              it calls each exported function of lotsa_ffi from Rust (same core calls, same owned
#              records), i.e. everything but the boundary
#   4. Python: bindings/bench/ffi_cost.py measure, through the generated module
#   5. Kotlin: FfiCostBench in bindings/kotlin-tests (mvn -Dtest=FfiCostBench), through JNA
#   6. the table (ns per call, ratios, Python−Rust and Kotlin−Rust) and <target>/ffi-cost.json
#
# --criterion also runs the core's criterion benchmarks (`cargo bench -p lotsa-core --bench core
# -- id_check eligibility`) for reference: they time a 1,000-number mix and a verdict on facts
# already parsed, so they are not the same call as the FFI's; the table does not use them.
#
# Timings are medians of 7 rounds; nothing is asserted. Slow: a release LTO build (minutes).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
die() { echo "ffi_cost.sh: $*" >&2; exit 1; }

criterion=0
for arg in "$@"; do
    case "$arg" in
        --criterion) criterion=1 ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$arg'" ;;
    esac
done

python="${PYTHON:-python3}"
command -v mvn >/dev/null || die "mvn not found"
command -v java >/dev/null || die "java not found"

target_dir="$(cargo metadata --format-version 1 --no-deps \
    | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
work="$target_dir/ffi-cost"
mkdir -p "$work"

echo "==> 1. release library and bindings"
bindings/generate.sh --release
lib_dir="$target_dir/release"
[[ -f "$lib_dir/liblotsa_ffi.so" ]] || die "release library missing in $lib_dir"

echo "==> 2. fixtures (lotsa CLI)"
cargo build -p lotsa
fixtures="$work/fixtures"
rm -rf "$fixtures" && mkdir -p "$fixtures"
"$target_dir/debug/lotsa" program keygen -o "$fixtures/admin" >/dev/null
"$target_dir/debug/lotsa" program keygen -o "$fixtures/other" >/dev/null
"$target_dir/debug/lotsa" program sign schemas/examples/programs.example.json \
    --key "$fixtures/admin.key" -o "$fixtures/bundle.json"
"$target_dir/debug/lotsa" program sign schemas/examples/programs.example.json \
    --key "$fixtures/other.key" -o "$fixtures/other-bundle.json"

echo "==> 3. Rust (the exported functions called from Rust, without the FFI)"
# A throw-away workspace: the FFI crate's own sources built as a Rust library (the shipped crate
# has no "lib" crate type, since cargo skips LTO for a cdylib built beside one), and a binary
# around rust_cost.rs that calls its exported functions. It has its own [workspace] (so it is not
# taken for a member of ours), the workspace's Cargo.lock (same dependency versions), the
# library's release profile, and the shared target dir (the release dependencies are built).
pkg="$work/rust-cost"
mkdir -p "$pkg/ffi"
cat > "$pkg/ffi/Cargo.toml" <<EOF
[package]
name = "lotsa-ffi"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
name = "lotsa_ffi"
path = "$root/bindings/src/lib.rs"

[dependencies]
lotsa-core = { path = "$root/core" }
uniffi = "=0.32.2"
thiserror = "2"
chrono = { version = "0.4.42", default-features = false, features = ["std", "clock", "serde"] }

[features]
dev-vault = []
EOF
cat > "$pkg/Cargo.toml" <<EOF
[package]
name = "lotsa-ffi-cost"
version = "0.0.0"
edition = "2021"
publish = false

[[bin]]
name = "lotsa-ffi-cost"
path = "$root/bindings/bench/rust_cost.rs"

[dependencies]
lotsa-ffi = { path = "ffi" }

[workspace]
members = ["ffi"]

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
panic = "unwind"
EOF
cp Cargo.lock "$pkg/Cargo.lock"
cargo build --release --manifest-path "$pkg/Cargo.toml" --target-dir "$target_dir"
"$target_dir/release/lotsa-ffi-cost" "$fixtures" "$work/rust.json"

echo "==> 4. Python"
LOTSA_BINDINGS_PYTHON="$target_dir/bindings/python" \
    "$python" bindings/bench/ffi_cost.py measure --fixtures "$fixtures" --out "$work/python.json"

echo "==> 5. Kotlin (JVM, JNA)"
# No Kotlin compile daemon: it would linger and compete with the timed JVM.
(cd bindings/kotlin-tests && mvn -B -ntp -q clean test -Dtest=FfiCostBench -Dkotlin.compiler.daemon=false \
    -Dsurefire.failIfNoSpecifiedTests=false \
    -Dlotsa.bindings.kotlin="$target_dir/bindings/kotlin" -Dlotsa.lib.dir="$lib_dir" \
    -Dlotsa.fixtures="$fixtures" -Dlotsa.bench.out="$work/kotlin.json")
[[ -s "$work/kotlin.json" ]] || die "the Kotlin timing wrote no results"

if [[ $criterion -eq 1 ]]; then
    echo "==> criterion (reference only)"
    cargo bench -p lotsa-core --bench core -- id_check eligibility
fi

echo
echo "==> ns per call ($(uname -m), $(nproc) CPUs; $(rustc --version | cut -d' ' -f1-2))"
"$python" bindings/bench/ffi_cost.py report "$work/rust.json" "$work/python.json" "$work/kotlin.json" \
    --out "$target_dir/ffi-cost.json"
