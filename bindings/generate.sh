#!/usr/bin/env bash
# Builds the lotsa-ffi library for the host and generates the Python, Kotlin and
# Swift bindings from it in library mode, with the in-workspace (pinned) uniffi-bindgen.
#
#   bindings/generate.sh            # debug library (what the binding tests use)
#   bindings/generate.sh --release  # release library (opt-level "s", LTO)
#   bindings/generate.sh --dev-vault  # with the development file key vault (tests only)
#
# Output (never committed; regenerated from scratch on every run):
#   <target>/bindings/python/lotsa_ffi.py + liblotsa_ffi.so   (importable as is)
#   <target>/bindings/kotlin/se/lotsa/core/lotsa_ffi.kt
#   <target>/bindings/swift/LotsaCore.swift, lotsa_ffiFFI.h, lotsa_ffiFFI.modulemap
# where <target> is cargo's target dir (normally ./target at the repo root).
set -euo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

profile=debug
cargo_profile=()
features=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --release) profile=release; cargo_profile=(--release) ;;
        --dev-vault) features=(--features dev-vault) ;;
        -h|--help) usage; exit 0 ;;
        *) echo "generate.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Respect CARGO_TARGET_DIR / .cargo/config; fall back to ./target.
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null \
    || echo "$root/target")"

case "$(uname -s)" in
    Darwin) libfile=liblotsa_ffi.dylib ;;
    *)      libfile=liblotsa_ffi.so ;;
esac
lib="$target_dir/$profile/$libfile"
out="$target_dir/bindings"

echo "==> building lotsa-ffi ($profile)"
cargo build -p lotsa-ffi "${cargo_profile[@]}" "${features[@]}"
echo "==> building uniffi-bindgen"
cargo build -p uniffi-bindgen --quiet
bindgen="$target_dir/debug/uniffi-bindgen"

if [[ ! -f "$lib" ]]; then
    echo "generate.sh: expected library not found: $lib" >&2
    exit 1
fi

rm -rf "$out/python" "$out/kotlin" "$out/swift"
for lang in python kotlin swift; do
    echo "==> generating $lang"
    # --no-format: ktlint / swift-format are not installed on the build machines.
    "$bindgen" generate --library "$lib" --language "$lang" --out-dir "$out/$lang" --no-format
done

# Python loads the library from the folder of the generated module.
cp "$lib" "$out/python/"

echo
echo "library : $lib"
echo "python  : $out/python   (PYTHONPATH=$out/python python3 -c 'import lotsa_ffi')"
echo "kotlin  : $(find "$out/kotlin" -name '*.kt' | sort | tr '\n' ' ')"
echo "swift   : $(find "$out/swift" -type f | sort | tr '\n' ' ')"
