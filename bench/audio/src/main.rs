//! aec-candidates: the echo-cancellation candidates on the same simulated rooms, side by side,
//! block by block, in one process; prints Markdown tables (bench/audio/RESULTS.md is made of
//! them).
//!
//!   aec-candidates [--far-wav F --near-wav N]   quality and CPU tables
//!   aec-candidates --callgrind KEY --seconds S  only KEY's processing (for callgrind), S seconds
//!   AEC_WINDOWS=1 aec-candidates ...            also each output's ERLE per 0.5 s, on stderr
//!   aec-candidates --chromium-wavs DIR          the headline room's far.wav and mic.wav for
//!                                               Chromium (chromium/run.sh)
//!   aec-candidates --chromium-score DIR         scores DIR/chromium-*.wav (what Chromium's
//!                                               processing made of mic.wav) beside the others
//!
//! CPU: every block goes through every candidate of a run, in an order that rotates block by
//! block, each call timed on its own; a candidate's figure is the median over the run's blocks.
//! Machine noise (the other core, frequency changes) so lands on all of them alike.

mod candidates;
mod chromium;
mod cli;

use candidates::{Canceller, DelayHint, Mode, Sonora, Speex, WebRtc03};
use roombox_roomsim::measure::{
    aligned, convergence_s, erle_db, erle_over_time, latency, near_kept,
};
use roombox_roomsim::{EchoPath, Scenario, Talk, BLOCK, RATE};
use std::time::Instant;

/// speexdsp's filter length in the main runs: covers rt60 0.3 s rooms' audible tail once the
/// hint has taken the delay out (the sweep table tries 100 and 300 ms).
const SPEEX_TAIL_MS: u32 = 200;
/// The lag searched for the near end in the output: the cancellers' own latency.
const MAX_LAG: usize = 2 * BLOCK;

fn path(delay_ms: f32, rt60_s: f32, drift_ppm: f64) -> EchoPath {
    EchoPath {
        delay_ms,
        rt60_s,
        gain_db: -6.0,
        drift_ppm,
        seed: 7,
    }
}

fn label(p: &EchoPath) -> String {
    format!(
        "{} ms, rt60 {} s, {} ppm",
        p.delay_ms, p.rt60_s, p.drift_ppm
    )
}

/// The six processors of a main run: each candidate AEC+NS and AEC-only.
fn the_six(hint: DelayHint) -> Vec<Box<dyn Canceller>> {
    let mut v: Vec<Box<dyn Canceller>> = Vec::new();
    for mode in [Mode::AecNs, Mode::AecOnly] {
        v.push(Box::new(Sonora::new(mode, hint)));
        v.push(Box::new(Speex::new(mode, hint, SPEEX_TAIL_MS)));
        v.push(Box::new(WebRtc03::new(mode, hint)));
    }
    v
}

/// One candidate's numbers on one scenario.
struct Row {
    name: String,
    erle_far1: f32,
    erle_far2: f32,
    conv25: Option<f32>,
    conv20: Option<f32>,
    dt_gain: f32,
    dt_corr: f32,
    near_gain: f32,
    latency_ms: f32,
    us_median: f64,
}

/// Runs `cands` over `s` block by block, interleaved, and measures each output.
fn run(s: &Scenario, mut cands: Vec<Box<dyn Canceller>>) -> Vec<Row> {
    let n = cands.len();
    let blocks = s.mic.len() / BLOCK;
    let mut outs = vec![vec![0f32; blocks * BLOCK]; n];
    let mut times = vec![Vec::with_capacity(blocks); n];
    for b in 0..blocks {
        let r = b * BLOCK..(b + 1) * BLOCK;
        for k in 0..n {
            // Rotate who goes first: caches and the clock treat the first and last alike.
            let i = (b + k) % n;
            let t = Instant::now();
            cands[i].process(
                &s.far[r.clone()],
                &s.mic[r.clone()],
                &mut outs[i][r.clone()],
            );
            times[i].push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    cands
        .iter()
        .zip(outs)
        .zip(times)
        .map(|((c, out), mut t)| {
            t.sort_by(f64::total_cmp);
            measure(c.name(), s, &out, t[t.len() / 2])
        })
        .collect()
}

fn measure(name: String, s: &Scenario, out: &[f32], us_median: f64) -> Row {
    let len = out.len();
    let (mic, echo) = (&s.mic[..len], &s.echo[..len]);
    let far1 = s.phases[0];
    let far2 = *s
        .phases_of(Talk::FarOnly)
        .nth(1)
        .expect("a second far-only phase");
    let dt = *s.phases_of(Talk::DoubleTalk).next().expect("double talk");
    let near_only = *s.phases_of(Talk::NearOnly).next().expect("near only");
    // The chain's own delay (speexdsp's preprocessor overlaps frames), found on the room talking
    // alone: ERLE compares the output with the microphone block by block, so line them up.
    let lag = latency(out, &s.near, near_only.start, near_only.end, MAX_LAG);
    let out = &aligned(out, lag)[..];
    let windows = erle_over_time(mic, out, echo, &far1, 0.5);
    // AEC_WINDOWS=1: each candidate's ERLE over time in both far-only phases, on stderr.
    if std::env::var_os("AEC_WINDOWS").is_some() {
        let w2 = erle_over_time(mic, out, echo, &far2, 0.5);
        let f = |w: &[(f32, f32)]| {
            w.iter()
                .map(|x| format!("{}:{:.0}", x.0, x.1))
                .collect::<Vec<_>>()
                .join(" ")
        };
        eprintln!("{name}\n  far1: {}\n  far2: {}", f(&windows), f(&w2));
    }
    let dt_kept = near_kept(out, &s.near, dt.start, dt.end, MAX_LAG);
    Row {
        name,
        erle_far1: erle_db(mic, out, echo, far1.start + 2 * RATE as usize, far1.end),
        erle_far2: erle_db(mic, out, echo, far2.start, far2.end.min(len)),
        conv25: convergence_s(mic, out, echo, &far1, &windows, 25.0),
        conv20: convergence_s(mic, out, echo, &far1, &windows, 20.0),
        dt_gain: dt_kept.gain_db,
        dt_corr: dt_kept.correlation,
        near_gain: near_kept(out, &s.near, near_only.start, near_only.end, MAX_LAG).gain_db,
        latency_ms: lag as f32 * 1000.0 / RATE as f32,
        us_median,
    }
}

fn secs(x: Option<f32>) -> String {
    x.map_or("never".into(), |v| format!("{v:.1}"))
}

fn table(title: &str, s: &Scenario, rows: &[Row]) {
    println!("\n#### {title}\n");
    println!("| candidate | ERLE far-only 2-10 s (dB) | ERLE far-only 19-25 s (dB) | to 25 dB (s) | to 20 dB (s) | double talk: near kept (dB) | double talk: correlation | near only: kept (dB) | latency (ms) | CPU median (µs/10 ms) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // The unprocessed microphone first: what no canceller scores (0 dB ERLE; in double talk the
    // near end fully kept but its correlation spoiled by the echo).
    let raw = measure("(microphone, unprocessed)".into(), s, &s.mic, f64::NAN);
    for r in std::iter::once(&raw).chain(rows) {
        println!(
            "| {} | {:.1} | {:.1} | {} | {} | {:.1} | {:.2} | {:.1} | {:.1} | {} |",
            r.name,
            r.erle_far1,
            r.erle_far2,
            secs(r.conv25),
            secs(r.conv20),
            r.dt_gain,
            r.dt_corr,
            r.near_gain,
            r.latency_ms,
            if r.us_median.is_nan() {
                "-".into()
            } else {
                format!("{:.0}", r.us_median)
            }
        );
    }
}

/// A mono WAV at any rate the run script made (sox resamples espeak's 22050 Hz to 48 kHz).
fn read_wav(path: &str) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let spec = r.spec();
    assert_eq!(spec.sample_rate, RATE, "{path}: resample to 48 kHz first");
    assert_eq!(spec.channels, 1, "{path}: mono");
    let mut x: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => r
            .samples::<i32>()
            .map(|s| s.expect("sample") as f32 / (1u32 << (spec.bits_per_sample - 1)) as f32)
            .collect(),
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.expect("sample")).collect(),
    };
    roombox_roomsim::talker::set_active_level(&mut x, -20.0);
    x
}

/// The processors callgrind counts, by key.
fn one(key: &str) -> Box<dyn Canceller> {
    let hint = Some(80.0);
    match key {
        "sonora-ns" => Box::new(Sonora::new(Mode::AecNs, hint)),
        "sonora-aec" => Box::new(Sonora::new(Mode::AecOnly, hint)),
        "speex-ns" => Box::new(Speex::new(Mode::AecNs, hint, SPEEX_TAIL_MS)),
        "speex-aec" => Box::new(Speex::new(Mode::AecOnly, hint, SPEEX_TAIL_MS)),
        "webrtc-ns" => Box::new(WebRtc03::new(Mode::AecNs, hint)),
        "webrtc-aec" => Box::new(WebRtc03::new(Mode::AecOnly, hint)),
        _ => panic!("unknown candidate {key}"),
    }
}

/// The only code callgrind counts (`--toggle-collect=*callgrind_region*`): the blocks' processing.
#[inline(never)]
fn callgrind_region(c: &mut dyn Canceller, s: &Scenario, blocks: usize, out: &mut [f32]) {
    for b in 0..blocks {
        let r = b * BLOCK..(b + 1) * BLOCK;
        c.process(&s.far[r.clone()], &s.mic[r.clone()], &mut out[r]);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| cli::arg(&args, name);

    if let Some(key) = arg("--callgrind") {
        let seconds: f32 = arg("--seconds").map_or(2.0, |s| s.parse().expect("--seconds"));
        let s = Scenario::conversation(path(80.0, 0.3, 100.0));
        let mut c = one(&key);
        let blocks = (seconds * 100.0) as usize;
        let mut out = vec![0f32; blocks * BLOCK];
        callgrind_region(c.as_mut(), &s, blocks, &mut out);
        println!("{key}: {blocks} blocks");
        return;
    }

    if let Some(dir) = arg("--chromium-wavs") {
        chromium::write_inputs(&dir, &Scenario::conversation(path(80.0, 0.3, 100.0)));
        return;
    }
    if let Some(dir) = arg("--chromium-score") {
        let s = Scenario::conversation(path(80.0, 0.3, 100.0));
        let mut rows = run(
            &s,
            vec![
                Box::new(Sonora::new(Mode::AecNs, None)),
                Box::new(Speex::new(Mode::AecNs, Some(80.0), SPEEX_TAIL_MS)),
                Box::new(WebRtc03::new(Mode::AecNs, Some(80.0))),
            ],
        );
        let recs = chromium::recordings(&dir, &s);
        for (name, out) in &recs {
            rows.push(measure(name.clone(), &s, out, f64::NAN));
        }
        table(
            "Chromium's own processing, 80 ms, rt60 0.3 s, 100 ppm (sonora without the hint)",
            &s,
            &rows,
        );
        // The plain evidence of whether the canceller had a reference: the output's level where
        // only the far end talks (its echo is all there is), against the microphone's.
        let far: Vec<_> = s.phases_of(Talk::FarOnly).copied().collect();
        let lvl =
            |x: &[f32], p: &roombox_roomsim::Phase| roombox_roomsim::rms_dbfs(&x[p.start..p.end]);
        println!("\n| signal | level far-only 0-10 s (dBFS) | level far-only 19-25 s (dBFS) |");
        println!("|---|---:|---:|");
        println!(
            "| microphone (mic.wav) | {:.1} | {:.1} |",
            lvl(&s.mic, &far[0]),
            lvl(&s.mic, &far[1])
        );
        for (name, out) in &recs {
            println!(
                "| {name} | {:.1} | {:.1} |",
                lvl(out, &far[0]),
                lvl(out, &far[1])
            );
        }
        return;
    }

    let paths = [
        path(20.0, 0.1, 0.0),
        path(80.0, 0.1, 0.0),
        path(80.0, 0.3, 100.0),
        path(200.0, 0.3, 0.0),
        path(200.0, 0.3, 100.0),
    ];
    // Every candidate's CPU median in every run, for the summary.
    let mut cpu: Vec<(String, Vec<f64>)> = Vec::new();
    let mut keep = |rows: &[Row]| {
        for r in rows {
            match cpu.iter_mut().find(|c| c.0 == r.name) {
                Some(c) => c.1.push(r.us_median),
                None => cpu.push((r.name.clone(), vec![r.us_median])),
            }
        }
    };

    println!("### Synthetic talkers (roomsim's conversation), the true delay as the hint");
    for p in &paths {
        let s = Scenario::conversation(*p);
        let rows = run(&s, the_six(Some(p.delay_ms)));
        table(&label(p), &s, &rows);
        keep(&rows);
    }

    let default = path(80.0, 0.3, 100.0);
    if let (Some(far), Some(near)) = (arg("--far-wav"), arg("--near-wav")) {
        println!("\n### Recorded speech (espeak-ng, two voices), the true delay as the hint");
        let s = Scenario::from_talkers(&read_wav(&far), &read_wav(&near), default);
        let rows = run(&s, the_six(Some(default.delay_ms)));
        table(
            &format!("espeak-ng talkers, {}", label(&default)),
            &s,
            &rows,
        );
        keep(&rows);
    }

    // How much of a difference between candidates is the room and talkers of one seed: the
    // adaptive filters' trajectories are sensitive to small input changes (dither-level ones
    // moved sonora's far-only ERLE by 7 dB), so the same room is run with five seeds.
    println!("\n### The 80 ms / rt60 0.3 s / 100 ppm room with five seeds (talkers, reflections, noise), AEC+NS\n");
    println!("| candidate | ERLE far-only 2-10 s (dB), seeds 1..5 | ERLE far-only 19-25 s (dB) | double talk: near kept (dB) | double talk: correlation |");
    println!("|---|---|---|---|---|");
    let per_seed: Vec<Vec<Row>> = (1..=5)
        .map(|seed| {
            let p = EchoPath { seed, ..default };
            run(
                &Scenario::conversation(p),
                vec![
                    Box::new(Sonora::new(Mode::AecNs, Some(p.delay_ms))),
                    Box::new(Speex::new(Mode::AecNs, Some(p.delay_ms), SPEEX_TAIL_MS)),
                    Box::new(WebRtc03::new(Mode::AecNs, Some(p.delay_ms))),
                ],
            )
        })
        .collect();
    for i in 0..per_seed[0].len() {
        let col = |f: &dyn Fn(&Row) -> String| {
            per_seed
                .iter()
                .map(|rows| f(&rows[i]))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            per_seed[0][i].name,
            col(&|r| format!("{:.0}", r.erle_far1)),
            col(&|r| format!("{:.0}", r.erle_far2)),
            col(&|r| format!("{:.1}", r.dt_gain)),
            col(&|r| format!("{:.2}", r.dt_corr)),
        );
    }

    println!("\n### No delay hint (each finds the delay itself, or cannot)");
    let s = Scenario::conversation(default);
    let rows = run(
        &s,
        vec![
            Box::new(Sonora::new(Mode::AecNs, None)),
            Box::new(Speex::new(Mode::AecNs, None, 300)),
            Box::new(WebRtc03::new(Mode::AecNs, None)),
        ],
    );
    table(&label(&default), &s, &rows);
    keep(&rows);

    println!("\n### speexdsp's filter length (with the hint)");
    let rows = run(
        &s,
        vec![
            Box::new(Sonora::new(Mode::AecNs, Some(80.0))),
            Box::new(Speex::new(Mode::AecNs, Some(80.0), 100)),
            Box::new(Speex::new(Mode::AecNs, Some(80.0), 200)),
            Box::new(Speex::new(Mode::AecNs, Some(80.0), 300)),
        ],
    );
    table(&label(&default), &s, &rows);
    keep(&rows);

    println!("\n### CPU, median µs per 10 ms block (one core), over the runs above\n");
    let reference = cpu
        .iter()
        .find(|c| c.0.starts_with("sonora") && c.0.ends_with("AEC+NS"))
        .map(|c| median(&c.1))
        .expect("sonora ran");
    println!("| candidate | runs | median of run medians (µs) | min..max (µs) | × sonora AEC+NS |");
    println!("|---|---:|---:|---|---:|");
    for (name, v) in &cpu {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let m = median(v);
        println!(
            "| {name} | {} | {m:.0} | {lo:.0}..{hi:.0} | {:.2} |",
            v.len(),
            m / reference
        );
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
