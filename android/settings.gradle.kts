// Gradle build of the Lotsa core for Android: one library module, `:lotsa`, that builds
// liblotsa_ffi.so with cargo-ndk and compiles the uniffi-generated Kotlin bindings.
// See android/README.md. Not buildable on the Linux build machines (no Android SDK/NDK there).

pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "lotsa-android"
include(":lotsa")
