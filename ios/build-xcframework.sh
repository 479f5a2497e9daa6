#!/usr/bin/env bash
# Builds ios/LotsaCoreFFI.xcframework and ios/Sources/LotsaCore/LotsaCore.swift, the two
# inputs of ios/Package.swift. Runs on macOS with Xcode (xcodebuild, lipo) and rustup.
#
#   ios/build-xcframework.sh            # release (opt-level "s", LTO): what an app ships
#   ios/build-xcframework.sh --debug    # unoptimised, for debugging the core
#
# Slices:
#   ios-arm64                  aarch64-apple-ios                       (devices)
#   ios-arm64_x86_64-simulator aarch64-apple-ios-sim + x86_64-apple-ios (lipo'd into one)
# Headers: lotsa_ffiFFI.h + module.modulemap (module lotsa_ffiFFI) from uniffi's Swift
# generator, the same run that writes LotsaCore.swift.
set -euo pipefail

die() { echo "ios/build-xcframework.sh: $*" >&2; exit 1; }

profile=release
cargo_profile=(--release)
case "${1:-}" in
    "") ;;
    --debug) profile=debug; cargo_profile=() ;;
    *) die "unknown option '$1' (use --debug or nothing)" ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ios="$root/ios"
cd "$root"

[[ "$(uname -s)" == Darwin ]] || die "needs macOS with Xcode (xcodebuild, lipo); this is $(uname -s)"
for tool in cargo rustup xcodebuild lipo python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

device_target=aarch64-apple-ios
sim_targets=(aarch64-apple-ios-sim x86_64-apple-ios)
installed="$(rustup target list --installed)"
for t in "$device_target" "${sim_targets[@]}"; do
    grep -qx "$t" <<<"$installed" || die "Rust target $t missing: rustup target add $t"
done

# Same minimum as Package.swift's platforms.
export IPHONEOS_DEPLOYMENT_TARGET=15.0

target_dir="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
work="$target_dir/ios-xcframework"
rm -rf "$work"
mkdir -p "$work/headers" "$work/simulator"

# 1. Static libraries. `cargo rustc --crate-type staticlib` builds only what iOS links
#    (no dylib) and keeps LTO even if "lib" is ever added to the crate types.
for t in "$device_target" "${sim_targets[@]}"; do
    echo "==> building lotsa-ffi for $t ($profile)"
    cargo rustc -p lotsa-ffi --lib --target "$t" "${cargo_profile[@]}" --crate-type staticlib
done

# 2. Swift bindings, header and module map, generated from the host library by the
#    workspace's uniffi-bindgen (bindings/generate.sh, same profile).
echo "==> generating the Swift bindings"
if [[ "$profile" == release ]]; then
    bindings/generate.sh --release
else
    bindings/generate.sh
fi
swift_out="$target_dir/bindings/swift"
cp "$swift_out/lotsa_ffiFFI.h" "$work/headers/"
# Inside an XCFramework the module map must be called module.modulemap.
cp "$swift_out/lotsa_ffiFFI.modulemap" "$work/headers/module.modulemap"
mkdir -p "$ios/Sources/LotsaCore"
cp "$swift_out/LotsaCore.swift" "$ios/Sources/LotsaCore/LotsaCore.swift"

# 3. One fat simulator library (arm64 + x86_64).
echo "==> lipo: simulator slices"
lipo -create \
    "$target_dir/aarch64-apple-ios-sim/$profile/liblotsa_ffi.a" \
    "$target_dir/x86_64-apple-ios/$profile/liblotsa_ffi.a" \
    -output "$work/simulator/liblotsa_ffi.a"

# 4. The XCFramework.
echo "==> xcodebuild -create-xcframework"
rm -rf "$ios/LotsaCoreFFI.xcframework"
xcodebuild -create-xcframework \
    -library "$target_dir/$device_target/$profile/liblotsa_ffi.a" -headers "$work/headers" \
    -library "$work/simulator/liblotsa_ffi.a" -headers "$work/headers" \
    -output "$ios/LotsaCoreFFI.xcframework"

echo
echo "xcframework : $ios/LotsaCoreFFI.xcframework"
echo "swift       : $ios/Sources/LotsaCore/LotsaCore.swift"
echo "package     : $ios/Package.swift  (swift build / add the ios folder as a local package in Xcode)"
