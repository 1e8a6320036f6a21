//! Refuses to build the box without openh264's SIMD: openh264-sys2 quietly builds plain C (2-3x
//! the CPU) when nasm is missing on x86-64. src/encode/openh264_simd.rs turns that into a link
//! error; this says what to install before the build gets there.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PATH");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch == "x86_64"
        && std::process::Command::new("nasm")
            .arg("-v")
            .output()
            .is_err()
    {
        panic!(
            "nasm is not installed: openh264's x86-64 assembly cannot be built, and the box \
             refuses to encode in plain C (2-3x the CPU). Install it: apt-get install nasm \
             (or: bash scripts/deps/install.sh build)"
        );
    }
}
