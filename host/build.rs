// Builds what the test host needs from C:
// - the variadic `log_print` the host passes to plugins in `struct flb_api` (linked in);
// - a shared library exporting the library version functions that the fluent-bit executable
//   exports (`cmt_version`), loaded with RTLD_GLOBAL at run time (FBHOST_EXPORTS_SO).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=src/exports.c");
    cc::Build::new()
        .file("src/shim.c")
        .warnings(true)
        .compile("fbhost_shim");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR set by cargo"));
    let so = out.join("libfbhost_exports.so");
    let status = cc::Build::new()
        .get_compiler()
        .to_command()
        .args(["-shared", "-fPIC", "-Wall", "-o"])
        .arg(&so)
        .arg("src/exports.c")
        .status()
        .expect("run the C compiler for src/exports.c");
    assert!(
        status.success(),
        "building src/exports.c as a shared library failed"
    );
    println!("cargo:rustc-env=FBHOST_EXPORTS_SO={}", so.display());
}
