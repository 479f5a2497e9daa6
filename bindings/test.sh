#!/usr/bin/env bash
# The one entry point for the binding tests of lotsa-ffi:
#   1. bindings/generate.sh        builds the host library, generates Python/Kotlin/Swift
#   2. cargo build -p lotsa        the CLI, which makes the test fixtures the way an administrator
#                                  would: two keys (`program keygen`) and the example program set
#                                  signed with each (`program sign`), and a variant of the set in
#                                  which Kalmar requires the personnummer, in <target>/bindings/fixtures
#   3. pytest bindings/python-tests  through the generated Python module
#   4. mvn -B test in bindings/kotlin-tests  the generated Kotlin on the JVM (JNA + host library)
# Both suites get the fixtures folder (LOTSA_FIXTURES, and -Dlotsa.fixtures for Maven) and fail
# loudly, never skip, when it is missing.
# Both suites always run; the script exits non-zero if either fails or cannot run
# (no pytest, no mvn/java, bindings not generated, ...). Nothing is skipped silently.
#
#   bindings/test.sh [--release]     (--release is passed to generate.sh)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "bindings/test.sh: $*" >&2; exit 1; }

profile=debug
for arg in "$@"; do
    case "$arg" in
        --release) profile=release ;;
        *) die "unknown option '$arg'" ;;
    esac
done

# Check every tool first, so a missing one fails the run before anything is built.
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || die "$python not found"
"$python" -c 'import pytest' 2>/dev/null \
    || die "pytest is not installed for $python: run .ci/bindings-setup.sh (pip install -r bindings/python-tests/requirements.txt)"
command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven), see .ci/bindings-setup.sh"
command -v java >/dev/null || die "java not found: install a JDK 17+"

bindings/generate.sh --dev-vault "$@"

target_dir="$(cargo metadata --format-version 1 --no-deps \
    | "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
py_dir="$target_dir/bindings/python"
kt_dir="$target_dir/bindings/kotlin"
lib_dir="$target_dir/$profile"
[[ -f "$py_dir/lotsa_ffi.py" ]] || die "generated Python module missing in $py_dir"
[[ -f "$kt_dir/se/lotsa/core/lotsa_ffi.kt" ]] || die "generated Kotlin missing in $kt_dir"
[[ -f "$lib_dir/liblotsa_ffi.so" ]] || die "host library missing: $lib_dir/liblotsa_ffi.so"

echo
echo "==> test fixtures: a signed program bundle and trust keys, made with the lotsa CLI"
cargo build -p lotsa
lotsa="$target_dir/debug/lotsa"
[[ -x "$lotsa" ]] || die "lotsa CLI missing: $lotsa"
fixtures="$target_dir/bindings/fixtures"
rm -rf "$fixtures"   # keygen refuses to overwrite a key: start from an empty folder
mkdir -p "$fixtures"
example="$root/schemas/examples/programs.example.json"
"$lotsa" program keygen -o "$fixtures/admin" >/dev/null
"$lotsa" program keygen -o "$fixtures/other" >/dev/null
"$lotsa" program sign "$example" --key "$fixtures/admin.key" -o "$fixtures/bundle.json"
"$lotsa" program sign "$example" --key "$fixtures/other.key" -o "$fixtures/other-bundle.json"
"$lotsa" program verify "$fixtures/bundle.json" --trust "$fixtures/admin.pub" >/dev/null \
    || die "the freshly signed fixture bundle does not verify"
# The same set with Kalmar's personnummer *required* (the example has no such program), signed with
# admin.key: a consent must then cover the personnummer whatever the person ticked.
"$python" - "$example" "$fixtures/programs.pnr-required.json" <<'PY'
import json, sys
programs = json.load(open(sys.argv[1], encoding="utf-8"))
programs["bundle_id"] += "-pnr-required"
[kalmar] = [p for p in programs["programs"] if p["id"] == "kalmar"]
kalmar["fields"]["personnummer"] = "required"
json.dump(programs, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False, indent=2)
PY
"$lotsa" program sign "$fixtures/programs.pnr-required.json" --key "$fixtures/admin.key" \
    -o "$fixtures/pnr-required-bundle.json"
# The same set issued a month earlier, signed with admin.key: a device that has used the current
# one must refuse it (a rollback).
"$python" - "$example" "$fixtures/programs.older.json" <<'PY'
import json, sys
programs = json.load(open(sys.argv[1], encoding="utf-8"))
programs["bundle_id"] += "-older"
programs["issued_at"] = "2026-10-01T00:00:00+02:00"
json.dump(programs, open(sys.argv[2], "w", encoding="utf-8"), ensure_ascii=False, indent=2)
PY
"$lotsa" program sign "$fixtures/programs.older.json" --key "$fixtures/admin.key" \
    -o "$fixtures/older-bundle.json"
for f in bundle.json admin.pub other-bundle.json other.pub pnr-required-bundle.json older-bundle.json; do
    [[ -s "$fixtures/$f" ]] || die "fixture $fixtures/$f was not made"
done
export LOTSA_FIXTURES="$fixtures"
export LOTSA_CLI="$lotsa"   # the cross-front-end table test runs the real CLI

failed=()

echo
echo "==> Python binding tests (pytest)"
if ! LOTSA_BINDINGS_PYTHON="$py_dir" "$python" -m pytest bindings/python-tests; then
    failed+=(python)
fi

echo
echo "==> Kotlin binding tests on the JVM (mvn test)"
# clean: the generated sources change under Maven; stale classes must not survive.
# No Kotlin compile daemon: it would outlive the run and keep a core busy.
if ! (cd bindings/kotlin-tests && mvn -B -ntp clean test -Dkotlin.compiler.daemon=false \
        -Dlotsa.bindings.kotlin="$kt_dir" -Dlotsa.lib.dir="$lib_dir" -Dlotsa.fixtures="$fixtures" -Dlotsa.cli="$lotsa"); then
    failed+=(kotlin)
fi

echo
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "bindings/test.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "bindings/test.sh: python and kotlin binding tests passed"
