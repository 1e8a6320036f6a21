//! The processing chain on a simulated room (crates/roomsim): a far-end talker played into a
//! reverberant room with delay and clock drift, mixed with the room's own talker and noise.
//! Each case prints what it measured (bench/audio/RESULTS.md quotes them).

use super::*;
use roombox_roomsim::measure::{
    aligned, convergence_s, erle_db, erle_over_time, latency, near_kept,
};
use roombox_roomsim::scenario::{from_i16, to_i16};
use roombox_roomsim::{EchoPath, Scenario, Talk, RATE};

/// What one run of the conversation through the chain measured.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "some fields are only reported (Debug), not asserted"
)]
struct Run {
    /// ERLE (dB) over the first far-only phase after its first 2 s.
    erle_first: f32,
    /// ERLE over the second far-only phase (after double talk and a far-end silence of
    /// 9 s, over which drift moved the echo) as a whole, and after its first second.
    erle_second: f32,
    erle_second_settled: f32,
    /// Seconds until ERLE (0.5 s windows) reached 25 dB for good.
    converged_25: Option<f32>,
    /// The worst 0.5 s window after convergence.
    worst_window: f32,
    /// The room's speech in double talk: projection gain (dB) and correlation.
    double_talk_gain_db: f32,
    double_talk_correlation: f32,
    /// The room's speech alone.
    near_only_gain_db: f32,
    near_only_correlation: f32,
    /// The chain's own delay, ms.
    latency_ms: f32,
}

fn run(path: EchoPath, stages: Stages) -> Run {
    run_with(path, stages, 1.0)
}

/// The conversation through the chain, the reference resampled by `drift_ratio` (what the box
/// measured of its two clocks; 1 = not compensated).
fn run_with(path: EchoPath, stages: Stages, drift_ratio: f64) -> Run {
    let s = Scenario::conversation(path);
    let (far, mic) = (to_i16(&s.far), to_i16(&s.mic));
    let mut chain = RoomProcessor::new(stages);
    chain.set_drift_ratio(drift_ratio);
    let mut out = Vec::with_capacity(mic.len());
    for (f, m) in far
        .chunks_exact(AUDIO_FRAME)
        .zip(mic.chunks_exact(AUDIO_FRAME))
    {
        chain.far_end(f.try_into().expect("a frame"));
        let mut frame: [i16; AUDIO_FRAME] = m.try_into().expect("a frame");
        chain.near_end(&mut frame);
        out.extend_from_slice(&frame);
    }
    let mic = from_i16(&mic);
    let near = *s.phases_of(Talk::NearOnly).next().expect("near only");
    let dt = *s.phases_of(Talk::DoubleTalk).next().expect("double talk");
    let far_phases: Vec<_> = s.phases_of(Talk::FarOnly).copied().collect();
    let (first, second) = (far_phases[0], far_phases[1]);
    // The chain delays its output (band splitting, the suppressors' overlap): line it up.
    let out = from_i16(&out);
    let lag = latency(&out, &s.near, near.start, near.end, 1920);
    let out = aligned(&out, lag);
    let windows = erle_over_time(&mic, &out, &s.echo, &first, 0.5);
    let converged_25 = convergence_s(&mic, &out, &s.echo, &first, &windows, 25.0);
    let worst_window = windows
        .iter()
        .filter(|w| converged_25.is_some_and(|t| w.0 >= t))
        .map(|w| w.1)
        .fold(f32::INFINITY, f32::min);
    let one_s = RATE as usize;
    let kept = near_kept(&out, &s.near, dt.start, dt.end, 48);
    let alone = near_kept(&out, &s.near, near.start, near.end, 48);
    let r = Run {
        erle_first: erle_db(&mic, &out, &s.echo, first.start + 2 * one_s, first.end),
        erle_second: erle_db(&mic, &out, &s.echo, second.start, second.end),
        erle_second_settled: erle_db(&mic, &out, &s.echo, second.start + one_s, second.end),
        converged_25,
        worst_window,
        double_talk_gain_db: kept.gain_db,
        double_talk_correlation: kept.correlation,
        near_only_gain_db: alone.gain_db,
        near_only_correlation: alone.correlation,
        latency_ms: lag as f32 / 48.0,
    };
    eprintln!(
        "delay {} ms, rt60 {} s, echo {} dB, drift {} ppm, seed {}, compensated {}; {}:\n  {r:?}",
        path.delay_ms,
        path.rt60_s,
        path.gain_db,
        path.drift_ppm,
        path.seed,
        drift_ratio != 1.0,
        stages.label()
    );
    r
}

const AEC_ONLY: Stages = Stages {
    echo_cancellation: true,
    high_pass: true,
    noise_suppression: false,
    auto_gain: false,
};

/// Rooms across the range: 20-200 ms of delay, 100-300 ms of reverberation, the
/// capture clock 100 ppm off the playback clock.
fn rooms() -> [EchoPath; 3] {
    [
        EchoPath {
            delay_ms: 20.0,
            rt60_s: 0.1,
            ..EchoPath::default()
        },
        EchoPath::default(),
        EchoPath {
            delay_ms: 200.0,
            rt60_s: 0.3,
            ..EchoPath::default()
        },
    ]
}

#[test]
fn the_echo_of_a_reverberant_room_with_drifting_clocks_is_cancelled() {
    for path in rooms() {
        let r = run(path, AEC_ONLY);
        assert!(r.erle_first >= 25.0, "{path:?}: {r:?}");
        assert!(r.converged_25.is_some_and(|t| t <= 2.0), "{path:?}: {r:?}");
        // After the far end was silent for 9 s, drift moved the echo by ~1 ms: the filter
        // takes about half a second to find it again (the first second is reported, not held
        // to the goal).
        assert!(r.erle_second_settled >= 25.0, "{path:?}: {r:?}");
    }
}

#[test]
fn measured_drift_keeps_the_echo_path_still() {
    // Five conversations in the meeting room with the clocks 100 ppm apart: as AEC3 alone
    // meets it, and with the reference put on the microphone's clock (the ratio the box
    // measures, audio::drift). Measured here: 22.7 dB worst alone (a second phase starting
    // at 7 dB), 27.4 dB compensated.
    let worst = |ratio: f64| {
        (1..=5)
            .map(|seed| {
                let path = EchoPath {
                    seed,
                    ..EchoPath::default()
                };
                let r = run_with(path, AEC_ONLY, ratio);
                // The second phase as a whole: right after 9 s without far-end speech is
                // where drift costs AEC3 alone.
                r.erle_first.min(r.erle_second)
            })
            .fold(f32::INFINITY, f32::min)
    };
    let (alone, compensated) = (worst(1.0), worst(1.0001));
    eprintln!(
        "worst ERLE over 5 seeds: {alone:.1} dB by AEC3 alone, {compensated:.1} dB compensated"
    );
    assert!(compensated >= 25.0, "{compensated}");
}

#[test]
fn the_room_is_heard_while_the_far_end_talks() {
    for path in rooms() {
        let r = run(path, AEC_ONLY);
        // Double talk: the room's speech comes through, at most 8 dB down (AEC3's suppressor
        // leans on it while the far end is loud; gating would be -20 dB and worse), and is
        // what dominates the output.
        assert!(r.double_talk_gain_db >= -8.0, "{path:?}: {r:?}");
        assert!(r.double_talk_correlation >= 0.7, "{path:?}: {r:?}");
        // The room alone passes untouched but for the high-pass filter.
        assert!(r.near_only_gain_db >= -2.0, "{path:?}: {r:?}");
        assert!(r.near_only_correlation >= 0.9, "{path:?}: {r:?}");
    }
}

#[test]
fn noise_suppression_keeps_the_cancellation_and_the_room() {
    let r = run(
        EchoPath::default(),
        Stages {
            auto_gain: false,
            ..Stages::ALL
        },
    );
    cancels_and_keeps_the_room(&r);
}

#[test]
fn the_whole_chain_cancels_and_keeps_the_room() {
    // Automatic gain moves the level (a few dB up here); the room's speech is still what
    // comes out.
    cancels_and_keeps_the_room(&run(EchoPath::default(), Stages::ALL));
}

/// The goals: 25 dB of ERLE within 2 s and after double talk, the room kept.
fn cancels_and_keeps_the_room(r: &Run) {
    assert!(r.erle_first >= 25.0, "{r:?}");
    assert!(r.converged_25.is_some_and(|t| t <= 2.0), "{r:?}");
    assert!(r.erle_second_settled >= 25.0, "{r:?}");
    assert!(r.double_talk_gain_db >= -8.0, "{r:?}");
    assert!(r.near_only_correlation >= 0.9, "{r:?}");
}

#[test]
fn with_every_stage_off_the_microphone_passes_bit_exact() {
    let mut chain = RoomProcessor::new(Stages::NONE);
    let original: [i16; AUDIO_FRAME] = std::array::from_fn(|i| (i as i16).wrapping_mul(37));
    let mut frame = original;
    chain.far_end(&[1000; AUDIO_FRAME]);
    chain.near_end(&mut frame);
    assert_eq!(frame, original);
    assert_eq!(chain.echo_stats(), EchoStats::default());
    assert_eq!(Stages::NONE.label(), "none");
    assert_eq!(
        Stages::ALL.label(),
        "high-pass, echo cancellation, noise suppression, automatic gain"
    );
}

#[test]
fn the_speaker_never_waits_for_the_microphone() {
    let (tap, far) = far_end_queue();
    // The capture thread stalls: the playout thread's taps drop instead of blocking.
    for _ in 0..FAR_QUEUE_FRAMES * 3 {
        tap.played(&[100; AUDIO_FRAME], std::time::Instant::now());
    }
    let mut chain = RoomProcessor::new(AEC_ONLY);
    let mut frame = [0; AUDIO_FRAME];
    chain.process(&far, &mut frame, std::time::Instant::now());
    // Everything queued was fed to the canceller.
    assert!(far.0.try_recv().is_err());
    // A settings change rebuilds the chain; the same stages do not.
    chain.set_stages(Stages::ALL);
    assert_eq!(chain.stages(), Stages::ALL);
}
