// Builds the one piece of the test host that Rust cannot express: the variadic `log_print`
// the host passes to plugins in `struct flb_api`.
fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    cc::Build::new()
        .file("src/shim.c")
        .warnings(true)
        .compile("fbhost_shim");
}
