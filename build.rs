//! Bindings to the proxy ABI header in `include/`.
//!
//! The generated file is committed as `src/ffi/bindings.rs`, so a plain `cargo build` needs no
//! libclang. With `--features bindgen` this script regenerates it into `OUT_DIR`; the plugin then
//! compiles against the fresh output and the `bindings_match_header` test fails if the committed
//! copy has drifted (CI runs it with libclang installed).

fn main() {
    println!("cargo:rerun-if-changed=include/flb_proxy_abi.h");
    println!("cargo:rerun-if-changed=build.rs");
    // Tests against a real Fluent Bit run only when FLUENT_BIT_BIN names one; otherwise they
    // are listed as ignored, so the skip is visible in every test run.
    println!("cargo::rustc-check-cfg=cfg(fluent_bit_bin)");
    println!("cargo:rerun-if-env-changed=FLUENT_BIT_BIN");
    if std::env::var_os("FLUENT_BIT_BIN").is_some() {
        println!("cargo:rustc-cfg=fluent_bit_bin");
    }
    #[cfg(feature = "bindgen")]
    generate();
}

#[cfg(feature = "bindgen")]
fn generate() {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bindings = bindgen::Builder::default()
        .header("include/flb_proxy_abi.h")
        .allowlist_type("flb.*")
        .allowlist_var("FLB_.*")
        .use_core()
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .generate()
        .expect("bindgen failed on include/flb_proxy_abi.h");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("cannot write bindings to OUT_DIR");
}
