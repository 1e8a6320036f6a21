//! Which SIMD code openh264 was built with, and a link-time guarantee that it was.
//!
//! openh264-sys2 builds openh264's x86-64 assembly with nasm and, when nasm is missing, goes on
//! in plain C (2-3x the CPU, measured) with only a line in cargo's build output. Referencing one
//! of the assembly routines here turns that silent fallback into a link error, so a box cannot
//! be built without its codec SIMD (build.rs says what to install before it gets that far).
//! On aarch64 the NEON routines are built by the C compiler; the same reference checks them.

use std::os::raw::c_int;

type Sad16x16 = unsafe extern "C" fn(*mut u8, c_int, *mut u8, c_int) -> c_int;

extern "C" {
    #[cfg(target_arch = "x86_64")]
    fn WelsSampleSad16x16_sse2(a: *mut u8, a_stride: c_int, b: *mut u8, b_stride: c_int) -> c_int;
    #[cfg(target_arch = "aarch64")]
    fn WelsSampleSad16x16_AArch64_neon(
        a: *mut u8,
        a_stride: c_int,
        b: *mut u8,
        b_stride: c_int,
    ) -> c_int;
    /// openh264's own CPU probe (what its encoder uses to pick routines at run time).
    fn WelsCPUFeatureDetect(logical_cpus: *mut c_int) -> u32;
}

/// openh264's 16x16 sum of absolute differences in the build's SIMD flavour.
#[cfg(target_arch = "x86_64")]
const SIMD_SAD: Option<(&str, Sad16x16)> = Some(("x86-64 assembly", WelsSampleSad16x16_sse2));
#[cfg(target_arch = "aarch64")]
const SIMD_SAD: Option<(&str, Sad16x16)> = Some(("NEON", WelsSampleSad16x16_AArch64_neon));
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SIMD_SAD: Option<(&str, Sad16x16)> = None;

/// Feature bits of openh264's cpu_core.h, for the log line.
#[cfg(target_arch = "x86_64")]
const FEATURES: &[(u32, &str)] = &[
    (0x8, "SSE2"),
    (0x200, "SSSE3"),
    (0x20, "SSE4.1"),
    (0x800, "AVX"),
    (0x40000, "AVX2"),
];
#[cfg(target_arch = "aarch64")]
const FEATURES: &[(u32, &str)] = &[(0x4, "NEON")];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const FEATURES: &[(u32, &str)] = &[];

/// The SIMD flavour openh264 was built with, if this architecture has one.
pub fn built_with() -> Option<&'static str> {
    SIMD_SAD.map(|(name, _)| name)
}

/// The CPU features openh264 detects on this machine (it picks its routines from these).
pub fn cpu_features() -> Vec<&'static str> {
    let mut cpus: c_int = 0;
    // SAFETY: openh264's CPU probe only writes the logical CPU count through the pointer.
    let bits = unsafe { WelsCPUFeatureDetect(&mut cpus) };
    FEATURES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

/// One line for the log: what was built in and what this CPU offers.
pub fn describe() -> String {
    match built_with() {
        Some(name) => format!(
            "openh264 built with {name}; this CPU has {}",
            match cpu_features() {
                f if f.is_empty() => "none of it".to_string(),
                f => f.join(" "),
            }
        ),
        None => format!(
            "openh264 built in plain C (no SIMD for {})",
            std::env::consts::ARCH
        ),
    }
}

/// A 16x16 block of pixels, aligned as openh264's SIMD loads expect (its encoder's blocks are).
#[cfg(test)]
#[repr(align(16))]
struct Block([u8; 256]);

/// Runs the SIMD sum of absolute differences over two 16x16 blocks (a check that the routine
/// is really there and computes).
#[cfg(test)]
fn simd_sad16x16(a: &mut Block, b: &mut Block) -> Option<i32> {
    let (_, sad) = SIMD_SAD?;
    // SAFETY: both blocks are 16 rows of 16 bytes with a stride of 16, 16-byte aligned; the
    // routine only reads them.
    Some(unsafe { sad(a.0.as_mut_ptr(), 16, b.0.as_mut_ptr(), 16) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn the_build_has_openh264s_simd_and_it_computes() {
        assert!(built_with().is_some());
        let mut a = Block([0; 256]);
        let mut b = Block([0; 256]);
        for (i, (x, y)) in a.0.iter_mut().zip(b.0.iter_mut()).enumerate() {
            *x = (i * 7 % 251) as u8;
            *y = (i * 13 % 241) as u8;
        }
        let want: i32 =
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| (i32::from(*x) - i32::from(*y)).abs())
                .sum();
        assert_eq!(simd_sad16x16(&mut a, &mut b), Some(want));
        let line = describe();
        assert!(line.contains(built_with().unwrap()), "{line}");
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn every_x86_64_cpu_has_sse2() {
        assert!(cpu_features().contains(&"SSE2"), "{:?}", cpu_features());
    }
}
