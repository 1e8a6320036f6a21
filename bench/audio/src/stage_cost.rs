//! stage-cost: what each stage of the box's own microphone chain costs, with the box's own code
//! (`roombox::audio::processing::RoomProcessor`, so the sonora Config is the box's, not a copy).
//!
//!   stage-cost [--passes N]            µs per 10 ms, every configuration interleaved, Markdown
//!   stage-cost --count KEY [--seconds S]   only KEY's chain, for instruction counters:
//!       callgrind counts `far_region` / `near_region` (--toggle-collect), and under qemu-user
//!       the insn plugin (bench/audio/qemu/insn_region.c) counts between the marker syscalls.
//!
//! The box hands the chain 20 ms frames (960 samples; `far_end` for what the speaker played,
//! `near_end` for the microphone, each two 10 ms blocks inside), so that is what is timed; the
//! figures are per 10 ms, i.e. a frame's time halved.

mod cli;
use roombox::audio::processing::{RoomProcessor, Stages};
use roombox::media::AUDIO_FRAME;
use roombox_roomsim::scenario::to_i16;
use roombox_roomsim::{EchoPath, Scenario};
use std::time::Instant;

const fn stages(
    echo_cancellation: bool,
    noise_suppression: bool,
    auto_gain: bool,
    high_pass: bool,
) -> Stages {
    Stages {
        echo_cancellation,
        noise_suppression,
        auto_gain,
        high_pass,
    }
}

/// The configurations measured: each stage alone, then the box's full chain.
const CONFIGS: [(&str, &str, Stages); 5] = [
    ("hp", "high-pass only", stages(false, false, false, true)),
    // Without high_pass the box also turns AEC3's enforced high-pass off ("off means off").
    (
        "aec",
        "echo cancellation only",
        stages(true, false, false, false),
    ),
    (
        "ns",
        "noise suppression only",
        stages(false, true, false, false),
    ),
    (
        "agc",
        "automatic gain only",
        stages(false, false, true, false),
    ),
    ("all", "all four", Stages::ALL),
];

fn config(key: &str) -> Stages {
    CONFIGS
        .iter()
        .find(|c| c.0 == key)
        .unwrap_or_else(|| panic!("unknown configuration {key}"))
        .2
}

/// The input: roomsim's default conversation (80 ms, rt60 0.25 s, 100 ppm; far end alone, double
/// talk, room alone, far end alone; 25 s), as the i16 frames the devices deliver.
fn frames() -> (Vec<[i16; AUDIO_FRAME]>, Vec<[i16; AUDIO_FRAME]>) {
    let s = Scenario::conversation(EchoPath::default());
    let cut = |x: &[f32]| -> Vec<[i16; AUDIO_FRAME]> {
        to_i16(x)
            .chunks_exact(AUDIO_FRAME)
            .map(|c| c.try_into().expect("a frame"))
            .collect()
    };
    (cut(&s.far), cut(&s.mic))
}

// The only code the instruction counters count. Not inlined, so callgrind can toggle on them.
#[inline(never)]
fn far_region(p: &mut RoomProcessor, frame: &[i16; AUDIO_FRAME]) {
    p.far_end(frame);
}

#[inline(never)]
fn near_region(p: &mut RoomProcessor, frame: &mut [i16; AUDIO_FRAME]) {
    p.near_end(frame);
}

/// Tells the qemu plugin where a region starts and stops: prctl with an option no kernel has
/// (it fails with EINVAL, natively or under qemu; the plugin sees the call first). `side`: 0
/// far_end, 1 near_end; `on`: 1 start, 0 stop. Outside the regions, so callgrind ignores it.
#[inline(never)]
fn marker(side: u64, on: u64) {
    const ROOM: libc::c_int = 0x524f_4f4d; // "ROOM"
                                           // SAFETY: prctl with an unknown option reads no memory; it only returns EINVAL.
    unsafe {
        libc::prctl(ROOM, side, on, 0u64, 0u64);
    }
}

fn count(key: &str, seconds: f32) {
    let (far, mut mic) = frames();
    let n = ((seconds * 50.0) as usize).min(far.len());
    let mut p = RoomProcessor::new(config(key));
    for i in 0..n {
        marker(0, 1);
        far_region(&mut p, &far[i]);
        marker(0, 0);
        marker(1, 1);
        near_region(&mut p, &mut mic[i]);
        marker(1, 0);
    }
    // Keeps the output alive (and shows it was processed).
    let peak = mic[..n]
        .iter()
        .flatten()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0);
    println!(
        "{key}: {n} frames of 20 ms ({} blocks of 10 ms), output peak {peak}",
        2 * n
    );
}

/// Per 10 ms, from per-frame µs: median and 99th percentile.
fn stats(frame_us: &[f64]) -> (f64, f64) {
    let mut v = frame_us.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] / 2.0;
    (q(0.5), q(0.99))
}

fn timing(passes: usize) {
    let (far, mic) = frames();
    let k = CONFIGS.len();
    // Per configuration: each frame's far_end and near_end µs.
    let mut far_us = vec![Vec::new(); k];
    let mut near_us = vec![Vec::new(); k];
    let mut frame = [0i16; AUDIO_FRAME];
    for pass in 0..passes {
        // A fresh chain per pass, as for a new call: carrying one over would hand AEC3 a jump
        // in the echo path where the conversation starts again.
        let mut procs: Vec<RoomProcessor> =
            CONFIGS.iter().map(|c| RoomProcessor::new(c.2)).collect();
        for (i, (f, m)) in far.iter().zip(&mic).enumerate() {
            for j in 0..k {
                // Rotate who goes first, so caches and clock changes fall on all alike.
                let c = (i + j + pass) % k;
                let t = Instant::now();
                procs[c].far_end(f);
                let t_far = t.elapsed();
                frame.copy_from_slice(m);
                let t = Instant::now();
                procs[c].near_end(&mut frame);
                let t_near = t.elapsed();
                far_us[c].push(t_far.as_secs_f64() * 1e6);
                near_us[c].push(t_near.as_secs_f64() * 1e6);
            }
        }
    }
    let frames_timed = far_us[0].len();
    println!(
        "{frames_timed} frames of 20 ms per configuration ({passes} passes over the 25 s conversation, \
         the processors carrying on from pass to pass), all configurations interleaved frame by frame\n"
    );
    println!("| configuration | far_end median | far_end p99 | near_end median | near_end p99 | both median | both p99 | × all four (median) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let both: Vec<Vec<f64>> = (0..k)
        .map(|c| {
            far_us[c]
                .iter()
                .zip(&near_us[c])
                .map(|(a, b)| a + b)
                .collect()
        })
        .collect();
    let all = stats(&both[k - 1]).0;
    for (c, (_, name, _)) in CONFIGS.iter().enumerate() {
        let (fm, fp) = stats(&far_us[c]);
        let (nm, np) = stats(&near_us[c]);
        let (bm, bp) = stats(&both[c]);
        println!(
            "| {name} | {fm:.1} | {fp:.1} | {nm:.1} | {np:.1} | {bm:.1} | {bp:.1} | {:.2} |",
            bm / all
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| cli::arg(&args, name);
    if let Some(key) = arg("--count") {
        let seconds = arg("--seconds").map_or(25.0, |s| s.parse().expect("--seconds"));
        count(&key, seconds);
    } else {
        let passes = arg("--passes").map_or(4, |s| s.parse().expect("--passes"));
        timing(passes);
    }
}
