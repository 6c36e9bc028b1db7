//! Rebuild when migrations or built-in block types change: both are embedded.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=blocks");
}
