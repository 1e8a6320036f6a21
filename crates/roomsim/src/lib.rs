//! A simulated room for testing echo cancellation without devices: synthetic talkers
//! ([`talker`]), a reverberant echo path with delay and clock drift ([`room`]), a conversation
//! laid out in far-end, double-talk and near-end phases ([`scenario`]) and the measures an
//! echo canceller is judged by ([`measure`]).
//!
//! Everything is deterministic for a seed, so a test's numbers repeat.

pub mod measure;
pub mod room;
pub mod scenario;
pub mod talker;

pub use room::EchoPath;
pub use scenario::{Phase, Scenario, Talk};
pub use talker::Voice;

/// The box's audio rate.
pub const RATE: u32 = 48_000;
/// Samples in one 10 ms block, the unit echo cancellers work in.
pub const BLOCK: usize = (RATE / 100) as usize;

/// Converts a level in dBFS (full scale = 1.0) to a linear amplitude.
pub fn db_to_amp(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// The RMS level of `x` in dBFS; -inf for silence.
pub fn rms_dbfs(x: &[f32]) -> f32 {
    if x.is_empty() {
        return f32::NEG_INFINITY;
    }
    let p: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64;
    (10.0 * p.log10()) as f32
}
