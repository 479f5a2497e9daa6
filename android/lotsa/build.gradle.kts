// The Lotsa core as an Android library (AAR):
//   - cargoNdkBuild       builds liblotsa_ffi.so for arm64-v8a, armeabi-v7a and x86_64 with
//                         cargo-ndk into build/rustJniLibs (packaged as jniLibs)
//   - generateUniffiKotlin generates the Kotlin bindings (package se.lotsa.core) from that
//                         library with the workspace's pinned uniffi-bindgen into
//                         build/generated/uniffi/kotlin (compiled as a source folder)
// Both run before every build (Gradle skips them when their inputs did not change).
// Generated code and native libraries are build outputs: never committed.
//
// Needs: Android SDK + NDK (r27+; ANDROID_NDK_HOME or the SDK's ndk folder), Rust with the
// targets aarch64-linux-android, armv7-linux-androideabi, x86_64-linux-android, and cargo-ndk.
// See android/README.md.

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

val jnaVersion = "5.17.0"
val workVersion = "2.10.0"

// The Cargo workspace is two levels up (android/lotsa -> repo root).
val repoRoot: File = rootProject.projectDir.parentFile
val cargoTargetDir: File = System.getenv("CARGO_TARGET_DIR")?.let(::File) ?: File(repoRoot, "target")
val rustProfile: String = (findProperty("lotsa.rustProfile") as String?) ?: "release"

/** Android ABI -> Rust target triple. */
val abis = mapOf(
    "arm64-v8a" to "aarch64-linux-android",
    "armeabi-v7a" to "armv7-linux-androideabi",
    "x86_64" to "x86_64-linux-android",
)

val jniLibsDir = layout.buildDirectory.dir("rustJniLibs")
val generatedKotlinDir = layout.buildDirectory.dir("generated/uniffi/kotlin")

android {
    namespace = "se.lotsa.core"
    compileSdk = 35

    defaultConfig {
        // java.time (used by the generated bindings for timestamps) needs API 26.
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            abiFilters += abis.keys
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            jniLibs.srcDir(jniLibsDir)
            java.srcDir(generatedKotlinDir)
            // SyncJob: plain Kotlin, also compiled and tested on the JVM (bindings/kotlin-tests).
            java.srcDir("src/shared/kotlin")
        }
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The generated bindings call the native library through JNA; the @aar carries
    // libjnidispatch.so for each Android ABI (the plain jar only has desktop ones).
    // `api`: JNA types (Pointer, Structure) appear in the generated public classes.
    api("net.java.dev.jna:jna:$jnaVersion@aar")
    // SyncWorker (background delivery); from Google's Maven repository.
    implementation("androidx.work:work-runtime-ktx:$workVersion")
}

/** The NDK folder: ANDROID_NDK_HOME if set, else the one the Android plugin resolved. */
fun ndkHome(): String =
    System.getenv("ANDROID_NDK_HOME")
        ?: android.ndkDirectory.takeIf { it.exists() }?.absolutePath
        ?: throw GradleException(
            "Android NDK not found: set ANDROID_NDK_HOME or install the NDK with the SDK manager",
        )

val cargoNdkBuild by tasks.registering(Exec::class) {
    group = "lotsa"
    description = "Builds liblotsa_ffi.so for ${abis.keys.joinToString()} with cargo-ndk"
    workingDir = repoRoot

    inputs.files(
        fileTree(File(repoRoot, "core")) { include("**/*.rs", "Cargo.toml", "**/*.json", "**/*.csv", "**/*.tsv") },
        fileTree(File(repoRoot, "bindings")) { include("src/**", "Cargo.toml", "uniffi.toml") },
        File(repoRoot, "Cargo.toml"),
        File(repoRoot, "Cargo.lock"),
    )
    inputs.property("rustProfile", rustProfile)
    outputs.dir(jniLibsDir)

    doFirst {
        environment("ANDROID_NDK_HOME", ndkHome())
    }
    // 16 KB ELF alignment (required by Play for Android 15+ targets; NDK r28+ does it by default).
    environment("RUSTFLAGS", "-C link-arg=-Wl,-z,max-page-size=16384")

    val args = mutableListOf("cargo", "ndk")
    abis.keys.forEach { args += listOf("-t", it) }
    args += listOf("--platform", "26", "-o", jniLibsDir.get().asFile.absolutePath, "build", "-p", "lotsa-ffi", "--lib")
    if (rustProfile == "release") args += "--release"
    commandLine(args)
}

val generateUniffiKotlin by tasks.registering(Exec::class) {
    group = "lotsa"
    description = "Generates the Kotlin bindings (se.lotsa.core) with the workspace's uniffi-bindgen"
    dependsOn(cargoNdkBuild)
    workingDir = repoRoot

    // Bindgen reads the uniffi metadata from the UNSTRIPPED library in cargo's target dir
    // (cargo-ndk strips the copies it puts in jniLibs). Any ABI's library carries the same metadata.
    val library = File(cargoTargetDir, "aarch64-linux-android/$rustProfile/liblotsa_ffi.so")
    inputs.file(library)
    inputs.file(File(repoRoot, "bindings/uniffi.toml"))
    outputs.dir(generatedKotlinDir)

    doFirst {
        delete(generatedKotlinDir)
    }
    commandLine(
        "cargo", "run", "--quiet", "-p", "uniffi-bindgen", "--",
        "generate", "--library", library.absolutePath,
        "--language", "kotlin", "--no-format",
        "--out-dir", generatedKotlinDir.get().asFile.absolutePath,
    )
}

tasks.named("preBuild") {
    dependsOn(generateUniffiKotlin)
}
