//! Release builds lay out the binary's code by build/orderfile.txt (scripts/orderfile.sh
//! makes it): the functions the proxy runs first, together, so that its resident code is
//! about the code it runs rather than most of `.text` (RELIABILITY.md#load).
//!
//! The file is lld's `--symbol-ordering-file`; Rust links with lld on x86_64 Linux (rust-lld,
//! the default since 1.90). Anything else (another target, or a linker chosen in cargo's
//! config or RUSTFLAGS, which may not know the option) builds with the default layout.

use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=build/orderfile.txt");
    println!("cargo::rerun-if-env-changed=PORTCULLIS_NO_ORDERFILE");
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    let flags = env("CARGO_ENCODED_RUSTFLAGS");
    let own_linker = [
        "linker=",
        "linker-flavor",
        "linker-features",
        "link-self-contained",
    ]
    .iter()
    .any(|f| flags.contains(f));
    let order = Path::new(&env("CARGO_MANIFEST_DIR")).join("build/orderfile.txt");
    if env("PROFILE") != "release"
        || env("TARGET") != "x86_64-unknown-linux-gnu"
        || own_linker
        || std::env::var_os("RUSTC_LINKER").is_some()
        || std::env::var_os("PORTCULLIS_NO_ORDERFILE").is_some()
        || !order.is_file()
    {
        return;
    }
    println!(
        "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    // Names the binary lacks (the file is older than the code) are skipped, not errors.
    println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
