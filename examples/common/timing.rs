//! Shared by the per-frame benchmarks (`#[path]`-included: examples cannot share a crate).

use std::time::Duration;

/// Mean, median and 99th percentile of `samples`, in milliseconds (sorts them).
pub fn stats(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|&d| ms(d)).sum::<f64>() / samples.len() as f64;
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    (mean, at(0.5), at(0.99))
}
