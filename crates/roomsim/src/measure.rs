//! What an echo canceller is judged by.
//!
//! - Echo return loss enhancement (ERLE): how much quieter the echo is after the canceller
//!   than at the microphone, over the 10 ms blocks where there is echo to cancel.
//! - Convergence: how long after the far end starts before ERLE reaches a goal and stays.
//! - Double talk: how much of the room's own speech survives while the far end talks. The
//!   output is projected onto the clean near-end signal: the projection's gain says how much
//!   the canceller suppressed the room (a failing suppressor gates it: -10 dB and worse), the
//!   correlation how much else (residual echo, distortion) rides along. Unlike a perceptual
//!   score (PESQ) both are exact for a known signal, need no reference implementation, and
//!   separate the two ways double talk fails.

use crate::{Phase, BLOCK, RATE};

/// Blocks whose echo is this far below the phase's loudest block carry no echo to cancel
/// (pauses, the tail of the reverberation).
const ACTIVE_BELOW_PEAK_DB: f32 = 35.0;

fn power(x: &[f32]) -> f64 {
    x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

/// Indices of the blocks in `[start, end)` where `echo` is active.
fn active_blocks(echo: &[f32], start: usize, end: usize) -> Vec<usize> {
    let levels: Vec<(usize, f32)> = (start / BLOCK..end / BLOCK)
        .map(|b| (b, crate::rms_dbfs(&echo[b * BLOCK..(b + 1) * BLOCK])))
        .collect();
    let peak = levels.iter().map(|l| l.1).fold(f32::NEG_INFINITY, f32::max);
    levels
        .into_iter()
        .filter(|l| l.1 > peak - ACTIVE_BELOW_PEAK_DB)
        .map(|l| l.0)
        .collect()
}

/// ERLE in dB over the echo-active blocks of `[start, end)`: microphone power over output
/// power.
pub fn erle_db(mic: &[f32], out: &[f32], echo: &[f32], start: usize, end: usize) -> f32 {
    let blocks = active_blocks(echo, start, end);
    let range = |x: &[f32]| -> f64 {
        blocks
            .iter()
            .map(|&b| power(&x[b * BLOCK..(b + 1) * BLOCK]))
            .sum()
    };
    (10.0 * (range(mic) / range(out).max(1e-20)).log10()) as f32
}

/// Windows whose echo is this far below the phase's loudest window say more about the room's
/// noise floor than about the canceller (there is little echo to cancel): skipped.
const WINDOW_BELOW_PEAK_DB: f64 = 15.0;

/// ERLE of each `window`-second stretch of `phase` that carries echo, with its start time in
/// seconds from the phase's start.
pub fn erle_over_time(
    mic: &[f32],
    out: &[f32],
    echo: &[f32],
    phase: &Phase,
    window: f32,
) -> Vec<(f32, f32)> {
    let w = (window * RATE as f32) as usize;
    let starts: Vec<usize> = (phase.start..phase.end.saturating_sub(w - 1))
        .step_by(w)
        .collect();
    let echo_power = |s: usize| power(&echo[s..s + w]);
    let peak = starts.iter().map(|&s| echo_power(s)).fold(0.0, f64::max);
    let floor = peak * 10f64.powf(-WINDOW_BELOW_PEAK_DB / 10.0);
    starts
        .into_iter()
        .filter(|&s| echo_power(s) > floor)
        .map(|s| {
            let t = (s - phase.start) as f32 / RATE as f32;
            (t, erle_db(mic, out, echo, s, s + w))
        })
        .collect()
}

/// How many samples `out` lags `reference` (a processing chain's own delay), searched up to
/// `max_lag` over `[start, end)`: the lag of the highest correlation.
pub fn latency(out: &[f32], reference: &[f32], start: usize, end: usize, max_lag: usize) -> usize {
    near_kept(out, reference, start, end, max_lag).lag
}

/// `out` moved `lag` samples earlier (zeros at the end), so it lines up with its input.
pub fn aligned(out: &[f32], lag: usize) -> Vec<f32> {
    let mut v = out[lag.min(out.len())..].to_vec();
    v.resize(out.len(), 0.0);
    v
}

/// A window this far below the goal after convergence is a relapse (audible echo), not a
/// quiet window whose ERLE the noise floor limits.
const RELAPSE_BELOW_GOAL_DB: f32 = 10.0;

/// Seconds from the phase's start until the echo canceller converged: the first window
/// (of `windows`, from [`erle_over_time`]) that reached `goal_db`, after which the echo
/// stayed `goal_db` down over every remaining stretch of the phase taken together and no
/// window fell more than 10 dB short of the goal. None if it never converged.
pub fn convergence_s(
    mic: &[f32],
    out: &[f32],
    echo: &[f32],
    phase: &Phase,
    windows: &[(f32, f32)],
    goal_db: f32,
) -> Option<f32> {
    let start_of = |t: f32| phase.start + (t * RATE as f32) as usize;
    let holds = |i: usize| {
        windows[i..].iter().all(|w| {
            w.1 >= goal_db - RELAPSE_BELOW_GOAL_DB
                && erle_db(mic, out, echo, start_of(w.0), phase.end) >= goal_db
        })
    };
    (0..windows.len())
        .find(|&i| windows[i].1 >= goal_db && holds(i))
        .map(|i| windows[i].0)
}

/// How the room's speech came through: the gain (dB) of the output's projection onto the
/// clean near-end speech, and their correlation, at the best lag up to `max_lag` samples
/// (the canceller's own delay).
#[derive(Clone, Copy, Debug)]
pub struct NearKept {
    pub gain_db: f32,
    pub correlation: f32,
    pub lag: usize,
}

pub fn near_kept(out: &[f32], near: &[f32], start: usize, end: usize, max_lag: usize) -> NearKept {
    let n = &near[start..end];
    let nn = power(n);
    (0..=max_lag)
        .filter(|lag| end + lag <= out.len())
        .map(|lag| {
            let o = &out[start + lag..end + lag];
            let on: f64 = o
                .iter()
                .zip(n)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let oo = power(o);
            NearKept {
                gain_db: (20.0 * (on / nn).abs().max(1e-10).log10()) as f32,
                correlation: (on / (oo * nn).sqrt().max(1e-20)) as f32,
                lag,
            }
        })
        .max_by(|a, b| a.correlation.total_cmp(&b.correlation))
        .expect("max_lag >= 0 gives a lag")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EchoPath, Scenario, Talk};

    #[test]
    fn measures_are_right_on_known_outputs() {
        let s = Scenario::conversation(EchoPath::default());
        let far = s.phases[0];
        // Sending the microphone unchanged: 0 dB ERLE, the near end fully kept but mixed
        // with echo.
        assert!(erle_db(&s.mic, &s.mic, &s.echo, far.start, far.end).abs() < 0.01);
        // A canceller that removes the echo exactly and keeps the rest.
        let perfect: Vec<f32> = s.mic.iter().zip(&s.echo).map(|(m, e)| m - e).collect();
        assert!(erle_db(&s.mic, &perfect, &s.echo, far.start, far.end) > 30.0);
        let dt = s.phases_of(Talk::DoubleTalk).next().expect("double talk");
        let kept = near_kept(&perfect, &s.near, dt.start, dt.end, 480);
        assert!(
            kept.gain_db.abs() < 0.1 && kept.correlation > 0.99,
            "{kept:?}"
        );
        assert_eq!(kept.lag, 0);
        let raw = near_kept(&s.mic, &s.near, dt.start, dt.end, 480);
        // Echo as loud as the room: about 1/sqrt(2).
        assert!(raw.correlation < 0.75, "the echo rides along: {raw:?}");
        // A canceller that mutes the room in double talk: -20 dB kept.
        let gated: Vec<f32> = perfect.iter().map(|x| x * 0.1).collect();
        let kept = near_kept(&gated, &s.near, dt.start, dt.end, 480);
        assert!((kept.gain_db + 20.0).abs() < 0.1, "{kept:?}");
    }

    #[test]
    fn convergence_is_when_the_goal_is_reached_for_good() {
        let s = Scenario::conversation(EchoPath::default());
        let far = s.phases[0];
        // A canceller that removes 40 dB of echo from 1.5 s on, nothing before.
        let from = far.start + 72_000;
        let out: Vec<f32> = (0..s.mic.len())
            .map(|n| {
                if n < from {
                    s.mic[n]
                } else {
                    s.mic[n] - 0.99 * s.echo[n]
                }
            })
            .collect();
        let w = erle_over_time(&s.mic, &out, &s.echo, &far, 0.5);
        // (The first window with echo from 1.5 s on: quiet windows are skipped.)
        let expected = w.iter().find(|x| x.0 >= 1.5).map(|x| x.0);
        assert!(expected.is_some_and(|t| t < 3.0), "{w:?}");
        assert_eq!(
            convergence_s(&s.mic, &out, &s.echo, &far, &w, 25.0),
            expected
        );
        // One that never does.
        let w = erle_over_time(&s.mic, &s.mic, &s.echo, &far, 0.5);
        assert_eq!(convergence_s(&s.mic, &s.mic, &s.echo, &far, &w, 25.0), None);
    }
}
