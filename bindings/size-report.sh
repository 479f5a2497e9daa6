#!/usr/bin/env bash
# Size report of the release lotsa-ffi library for the host.
#
# Builds liblotsa_ffi with the workspace's release profile (opt-level "s", lto = true,
# codegen-units = 1, panic = "unwind") and checks that LTO really ran: cargo silently
# skips LTO when "lib" is among the crate types (a known cargo limitation), so in that case
# the library is built with `cargo rustc --crate-type cdylib,staticlib` instead.
# Reports the unstripped and stripped (`strip` on a copy: what an app ships) sizes,
# and what weighs most: `cargo bloat --crates` (installed if absent), or, if cargo
# bloat cannot read the library, `nm --size-sort -S` grouped by crate prefix.
# Prints a table and writes target/size-report.json.
#
# The build keeps all symbols (CARGO_PROFILE_RELEASE_STRIP=false, as cargo bloat builds
# it), so cargo bloat reuses it instead of running a second LTO build; "unstripped"
# therefore includes the symbol table and the debug info std ships with.
#
# Slow: a release LTO build on 2 cores takes minutes. Run it deliberately.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

die() { echo "bindings/size-report.sh: $*" >&2; exit 1; }
for tool in cargo python3 strip nm gzip; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
lib="$target_dir/release/liblotsa_ffi.so"
work="$target_dir/size-report"
mkdir -p "$work"
build_log="$work/build.log"

# --- build -------------------------------------------------------------------
crate_types="$(sed -n 's/^crate-type *= *//p' bindings/Cargo.toml)"
if grep -q '"lib"' <<<"$crate_types"; then
    echo "==> crate types $crate_types include \"lib\": building with cargo rustc so LTO is not skipped"
    build=(cargo rustc -p lotsa-ffi --lib --release --crate-type cdylib,staticlib -v)
else
    echo "==> crate types $crate_types: plain release build gets real LTO"
    build=(cargo build -p lotsa-ffi --lib --release -v)
fi
echo "    ${build[*]}  (log: $build_log)"
# Same profile override as cargo bloat uses, so its build is a no-op afterwards.
export CARGO_PROFILE_RELEASE_STRIP=false
start=$(date +%s)
if ! "${build[@]}" >"$build_log" 2>&1; then
    tail -30 "$build_log" >&2
    die "release build failed"
fi
build_seconds=$(( $(date +%s) - start ))
[[ -f "$lib" ]] || die "release library not found: $lib"

# Did rustc get -C lto for lotsa_ffi? (Only visible when it was rebuilt.)
rustc_line="$(grep -E "Running .*--crate-name lotsa_ffi " "$build_log" || true)"
if [[ -z "$rustc_line" ]]; then
    lto="not rebuilt (fresh); run 'cargo clean -p lotsa-ffi --release' to re-check"
elif grep -qE -- "-C lto( |=(fat|true))" <<<"$rustc_line"; then
    lto="yes (-C lto on the lotsa_ffi rustc line)"
else
    lto="NO: lotsa_ffi was built without -C lto"
fi

# --- sizes -------------------------------------------------------------------
stripped="$work/liblotsa_ffi.stripped.so"
strip --strip-all -o "$stripped" "$lib"
strip --strip-debug -o "$work/liblotsa_ffi.nodebug.so" "$lib"
unstripped_bytes=$(stat -c %s "$lib")
nodebug_bytes=$(stat -c %s "$work/liblotsa_ffi.nodebug.so")
stripped_bytes=$(stat -c %s "$stripped")
stripped_gzip_bytes=$(gzip -9 -c "$stripped" | wc -c)

# --- what weighs most --------------------------------------------------------
bloat_json="$work/bloat.json"
method=""
if ! command -v cargo-bloat >/dev/null; then
    echo "==> installing cargo-bloat (cargo install cargo-bloat --locked)"
    cargo install cargo-bloat --locked --quiet || echo "    cargo-bloat could not be installed; using nm"
fi
if command -v cargo-bloat >/dev/null; then
    echo "==> cargo bloat -p lotsa-ffi --release --lib --crates -n 15"
    if [[ "$crate_types" == *'"lib"'* ]]; then
        echo "    (note: with \"lib\" among the crate types cargo bloat measures a build without LTO)"
    fi
    if cargo bloat -p lotsa-ffi --release --lib --crates -n 15 --message-format json \
            >"$bloat_json" 2>"$work/bloat.err" && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$bloat_json" 2>/dev/null; then
        method="cargo-bloat"
    else
        echo "    cargo bloat failed ($(tail -1 "$work/bloat.err" 2>/dev/null)); falling back to nm"
    fi
fi
if [[ -z "$method" ]]; then
    method="nm"
    nm --size-sort -S --demangle=rust "$lib" >"$work/nm.txt" 2>/dev/null \
        || nm --size-sort -S -C "$lib" >"$work/nm.txt"
fi

# --- table + JSON ------------------------------------------------------------
python3 - "$method" "$bloat_json" "$work/nm.txt" "$target_dir/size-report.json" \
    "$lib" "$unstripped_bytes" "$nodebug_bytes" "$stripped_bytes" "$stripped_gzip_bytes" "$lto" "$build_seconds" \
    "$crate_types" <<'PY'
import json, re, sys, collections, datetime

(method, bloat_json, nm_txt, out, lib, unstripped, nodebug, stripped, stripped_gz,
 lto, build_seconds, crate_types) = sys.argv[1:]
unstripped, nodebug, stripped, stripped_gz = int(unstripped), int(nodebug), int(stripped), int(stripped_gz)
MIB = 1024 * 1024

def crate_of(symbol: str) -> str:
    """First path segment of a demangled Rust symbol; C symbols (sqlite3_*, ...) by prefix."""
    s = symbol.strip()
    while s and s[0] in "<&*( ":
        s = s[1:]
    s = re.sub(r"^(dyn|mut|const|impl) ", "", s)
    if "::" in s:
        return s.split("::", 1)[0] or "?"
    m = re.match(r"([A-Za-z]+[0-9]*)_", s)
    return f"[C] {m.group(1)}_*" if m else "[other]"

top = []
text_size = None
if method == "cargo-bloat":
    data = json.load(open(bloat_json))
    text_size = data.get("text-section-size")
    for c in data.get("crates", []):
        top.append({"crate": c["name"], "bytes": c["size"]})
    top = top[:15]
else:
    sizes = collections.Counter()
    for line in open(nm_txt, errors="replace"):
        parts = line.rstrip("\n").split(" ", 3)
        if len(parts) < 4:
            continue
        _, size, kind, name = parts
        try:
            sizes[crate_of(name)] += int(size, 16)
        except ValueError:
            continue
    text_size = sum(sizes.values())
    top = [{"crate": k, "bytes": v} for k, v in sizes.most_common(15)]

report = {
    "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "library": lib,
    "crate_types": crate_types,
    "profile": {"opt-level": "s", "lto": True, "codegen-units": 1, "panic": "unwind"},
    "lto_applied": lto,
    "build_seconds": int(build_seconds),
    "unstripped_bytes": unstripped,
    "symbols_no_debuginfo_bytes": nodebug,
    "stripped_bytes": stripped,
    "stripped_gzip9_bytes": stripped_gz,
    "target_stripped_bytes": 4 * MIB,
    "within_target": stripped <= 4 * MIB,
    "breakdown_method": method,
    "breakdown_total_bytes": text_size,
    "top_crates": top,
}
json.dump(report, open(out, "w"), indent=2)

def fmt(n):
    return f"{n:>12,} B  {n / MIB:7.2f} MiB"

print()
print(f"lotsa-ffi release library ({lib})")
print(f"  LTO           : {lto}")
print(f"  build time    : {build_seconds} s")
print(f"  unstripped    : {fmt(unstripped)}   (symbols + std's debug info; what bindgen reads)")
print(f"  no debug info : {fmt(nodebug)}   (symbols kept: cargo's default release output)")
print(f"  stripped      : {fmt(stripped)}   (target <= 4 MiB: {'ok' if stripped <= 4 * MIB else 'OVER'})")
print(f"  stripped gz -9: {fmt(stripped_gz)}")
print()
what = ".text by crate (cargo bloat)" if method == "cargo-bloat" else "sized symbols by crate prefix (nm)"
print(f"what weighs most: {what}")
print(f"  {'crate':<32} {'bytes':>12} {'share':>7}")
for row in top:
    share = f"{100 * row['bytes'] / text_size:6.1f}%" if text_size else ""
    print(f"  {row['crate']:<32} {row['bytes']:>12,} {share:>7}")
if text_size:
    print(f"  {'(total measured)':<32} {text_size:>12,}")
print()
print(f"JSON: {out}")
PY
