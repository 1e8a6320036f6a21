//! Chromium's own processing of the same signal: the inputs for chromium/run.sh, and its
//! recordings lined up with the conversation so that the same measures score them.

use roombox_roomsim::scenario::{from_i16, to_i16};
use roombox_roomsim::{Scenario, Talk, RATE};

/// Silence before the conversation in mic.wav: Chromium's fake capture starts the file when
/// getUserMedia opens it, before the page records or plays anything; the page starts the far
/// end about this far into the file, so that its echo in the file comes after it is played.
pub const LEAD_S: f32 = 1.5;

fn write(path: &str, x: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap_or_else(|e| panic!("{path}: {e}"));
    for s in to_i16(x) {
        w.write_sample(s).expect("write");
    }
    w.finalize().expect("finalize");
}

pub fn write_inputs(dir: &str, s: &Scenario) {
    let lead = vec![0f32; (LEAD_S * RATE as f32) as usize];
    write(&format!("{dir}/far.wav"), &s.far);
    write(&format!("{dir}/mic.wav"), &[&lead[..], &s.mic[..]].concat());
    println!("{dir}/far.wav, {dir}/mic.wav ({LEAD_S} s of silence first)");
}

/// Every DIR/chromium-NAME.wav, moved so that it lines up with the conversation to within a
/// few ms (`measure` finds the rest, as for the other candidates' own latency).
pub fn recordings(dir: &str, s: &Scenario) -> Vec<(String, Vec<f32>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("chromium-") && n.ends_with(".wav"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let mut r = hound::WavReader::open(format!("{dir}/{f}")).expect("a WAV");
            let x: Vec<i16> = r.samples::<i16>().map(|v| v.expect("sample")).collect();
            let x = from_i16(&x);
            let lag = coarse_lag(&x, s);
            // A little early, so that the fine search (which looks only forward) finds the rest.
            let start = lag.saturating_sub(RATE as usize / 200);
            let mut out = x[start.min(x.len())..].to_vec();
            out.resize(s.mic.len(), 0.0);
            let name = format!(
                "Chromium {}, {} (started {:.3} s into the recording)",
                chromium_version(dir),
                f.trim_start_matches("chromium-").trim_end_matches(".wav"),
                start as f32 / RATE as f32
            );
            (name, out)
        })
        .collect()
}

/// Where the conversation starts in a recording: the lag with the highest correlation between
/// the recording and the room talker alone, both decimated 8× (block means) to keep the search
/// over seconds of lag cheap.
fn coarse_lag(rec: &[f32], s: &Scenario) -> usize {
    const D: usize = 8;
    let dec = |x: &[f32]| -> Vec<f32> {
        x.chunks(D)
            .map(|c| c.iter().sum::<f32>() / D as f32)
            .collect()
    };
    let near_only = *s.phases_of(Talk::NearOnly).next().expect("near only");
    let reference = dec(&s.near[near_only.start..near_only.end]);
    let rec = dec(rec);
    let first = near_only.start / D;
    let max_lag = ((LEAD_S + 1.0) * RATE as f32) as usize / D;
    let mut best = (0, f32::MIN);
    for lag in 0..max_lag {
        let Some(seg) = rec.get(first + lag..first + lag + reference.len()) else {
            break;
        };
        let (mut xy, mut yy) = (0f32, 0f32);
        for (a, b) in seg.iter().zip(&reference) {
            xy += a * b;
            yy += a * a;
        }
        let c = xy / yy.sqrt().max(1e-9);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best.0 * D
}

fn chromium_version(dir: &str) -> String {
    std::fs::read_to_string(format!("{dir}/chromium-version.txt"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}
