// swift-tools-version:5.9
//
// The Lotsa core for iOS as a Swift package:
//   LotsaCoreFFI  the Rust static library for device and simulator with its C header and
//                 module map (module `lotsa_ffiFFI`), as an XCFramework
//   LotsaCore     the uniffi-generated Swift API (`import LotsaCore`)
// Both are build outputs of ios/build-xcframework.sh (run it on a Mac first); neither is
// committed. See ios/README.md.
import PackageDescription

let package = Package(
    name: "LotsaCore",
    platforms: [
        .iOS(.v15),
    ],
    products: [
        .library(name: "LotsaCore", targets: ["LotsaCore"]),
    ],
    targets: [
        .binaryTarget(
            name: "LotsaCoreFFI",
            path: "LotsaCoreFFI.xcframework"
        ),
        .target(
            name: "LotsaCore",
            dependencies: ["LotsaCoreFFI"],
            path: "Sources/LotsaCore",
            exclude: ["README.md"]
        ),
    ]
)
