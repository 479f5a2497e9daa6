//! The uniffi bindgen, pinned to the exact uniffi version the FFI crate uses.
fn main() {
    uniffi::uniffi_bindgen_main()
}
