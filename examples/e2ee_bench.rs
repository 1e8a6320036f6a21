//! What frame encryption (docs/protocol.md, "Frame encryption") costs the box at 720p30: the
//! box's moving test pattern, with noise so it fills its bitrate, encoded by openh264 at
//! 2.5 Mbit/s, then each access unit sealed (what the box does once per frame, for every viewer
//! at once) and opened (what it does for each frame a person sends it), side by side with
//! encoding the same frame; Opus packets of 20 ms at 48 kbit/s (120 bytes) sealed and opened
//! the same way, 50 for every 30 video frames. Unpaced: CPU time per frame.
//!
//! Run with: `cargo run --release --example e2ee_bench [-- FRAMES]` (default 300 frames after
//! the first)
//!
//! With `ROOMBOX_INSN_MARKERS=1` it prints no timing: each region of [`REGIONS`] runs in a
//! non-inlined function of its own (callgrind's `--toggle-collect`) between marker syscalls
//! (bench/audio's qemu plugin), and it prints how many times each ran and the bytes it sealed
//! (bench/e2ee/run.sh; default 120 frames after the first, one IDR period).
//!
//! Either way the first line says which of the CPU features AES-GCM's backends look for the
//! program sees (the `aes` and `polyval` crates choose their backend at run time).

use std::time::{Duration, Instant};

use roombox::capture::testsrc::TestPattern;
use roombox::capture::VideoSource;
use roombox::encode::h264::H264Encoder;
use roombox::encode::openh264::{OpenH264Config, OpenH264Encoder};
use roombox::media::frame::VideoFrame;
use roombox_seal::frame::{nal_units, FrameCipher, KeyRing, SenderKey};

#[path = "common/timing.rs"]
mod timing;
use timing::stats;

const OPUS_BYTES: usize = 120;

/// The regions, in the order the counting run reports them: (marker side, region function).
/// The side is what the qemu plugin (bench/audio/qemu/insn_region.c) reports each region under;
/// the function is what callgrind toggles on and names.
const REGIONS: [(u64, &str); 6] = [
    (0, "encode_720p"),
    (1, "seal_720p"),
    (2, "open_720p"),
    (3, "seal_opus"),
    (4, "open_opus"),
    (5, "encode_720p_first"),
];
const ENCODE: u64 = 0;
const SEAL: u64 = 1;
const OPEN: u64 = 2;
const SEAL_OPUS: u64 = 3;
const OPEN_OPUS: u64 = 4;
const ENCODE_FIRST: u64 = 5;

/// The test pattern with fresh noise in its luma every frame, so that the encoder spends its
/// whole bitrate (the bare pattern barely moves: its P frames are a few hundred bytes, and
/// what encryption costs grows with the bytes).
fn pictures(frames: usize) -> Result<Vec<VideoFrame>, Box<dyn std::error::Error>> {
    let mut pattern = TestPattern::new(1280, 720, 30)?.unpaced();
    let mut x = 0x2545_f491_u32;
    Ok((0..frames)
        .map(|_| {
            let mut f = pattern.next_frame().expect("pattern");
            let luma = (f.width * f.height) as usize;
            for p in &mut f.data[..luma] {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *p = p.saturating_add((x & 0x1f) as u8);
            }
            f
        })
        .collect())
}

fn encoder() -> Result<OpenH264Encoder, Box<dyn std::error::Error>> {
    Ok(OpenH264Encoder::new(OpenH264Config {
        bitrate_bps: 2_500_000,
        skip_frames: false,
        hold_unchanged: false,
        ..Default::default()
    })?)
}

// The only code the instruction counters count (callgrind: `--toggle-collect` on each). The
// sealing regions include the random IV, as the box draws it (src/calls/web_client.rs).

/// The first frame: an IDR with the parameter sets, and the encoder's start; not steady state.
#[inline(never)]
fn encode_720p_first(enc: &mut OpenH264Encoder, f: &VideoFrame) -> Option<Vec<u8>> {
    enc.encode(f, true).expect("encodes").map(|au| au.data)
}

/// Every later frame: P frames and the periodic IDR (every 120 frames).
#[inline(never)]
fn encode_720p(enc: &mut OpenH264Encoder, f: &VideoFrame) -> Option<Vec<u8>> {
    enc.encode(f, false).expect("encodes").map(|au| au.data)
}

#[inline(never)]
fn seal_720p(cipher: &FrameCipher, au: &[u8]) -> Vec<u8> {
    cipher.seal_h264(au, rand::random)
}

#[inline(never)]
fn open_720p(ring: &mut KeyRing, sealed: &[u8]) -> Vec<u8> {
    ring.open_h264(sealed).expect("opens")
}

#[inline(never)]
fn seal_opus(cipher: &FrameCipher, packet: &[u8]) -> Vec<u8> {
    cipher.seal_opus(packet, rand::random())
}

#[inline(never)]
fn open_opus(ring: &mut KeyRing, sealed: &[u8]) -> Vec<u8> {
    ring.open_opus(sealed).expect("opens")
}

/// Tells the qemu plugin where a region starts and stops: prctl with an option no kernel has
/// (it fails with EINVAL, natively or under qemu; the plugin sees the call first), as
/// examples/display_bench.rs does. `on`: 1 start, 0 stop. Outside the region functions, so
/// callgrind does not count it.
#[inline(never)]
fn marker(side: u64, on: u64) {
    /// "ROOM"
    const ROOM: nix::libc::c_int = 0x524f_4f4d;
    // SAFETY: prctl with an unknown option reads no memory; it only returns EINVAL.
    unsafe {
        nix::libc::prctl(ROOM, side, on, 0u64, 0u64);
    }
}

/// Runs regions, with the markers around them when counting, and keeps how many ran and how
/// long each took (the clock outside the markers).
struct Regions {
    markers: bool,
    runs: [usize; REGIONS.len()],
    times: [Vec<Duration>; REGIONS.len()],
}

impl Regions {
    fn run<T>(&mut self, side: u64, f: impl FnOnce() -> T) -> T {
        let t0 = Instant::now();
        if self.markers {
            marker(side, 1);
        }
        let out = f();
        if self.markers {
            marker(side, 0);
        }
        self.times[side as usize].push(t0.elapsed());
        self.runs[side as usize] += 1;
        out
    }

    /// Mean and median, in milliseconds.
    fn ms(&mut self, side: u64) -> (f64, f64) {
        let (mean, p50, _) = stats(&mut self.times[side as usize]);
        (mean, p50)
    }
}

/// The CPU features the `aes` and `polyval` crates' backends are chosen by, as this program
/// sees them.
fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        format!(
            "x86_64 aes={} pclmulqdq={} avx={} vaes={} avx512f={}",
            std::arch::is_x86_feature_detected!("aes"),
            std::arch::is_x86_feature_detected!("pclmulqdq"),
            std::arch::is_x86_feature_detected!("avx"),
            std::arch::is_x86_feature_detected!("vaes"),
            std::arch::is_x86_feature_detected!("avx512f"),
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        // AT_HWCAP as the crates' detection (cpufeatures) reads it: AES needs both bits.
        // SAFETY: getauxval reads the process's auxiliary vector; any type is a valid argument.
        let hwcap = unsafe { nix::libc::getauxval(nix::libc::AT_HWCAP) };
        format!(
            "aarch64 aes={} pmull={} hwcap_aes={} hwcap_pmull={}",
            std::arch::is_aarch64_feature_detected!("aes"),
            std::arch::is_aarch64_feature_detected!("pmull"),
            hwcap & nix::libc::HWCAP_AES != 0,
            hwcap & nix::libc::HWCAP_PMULL != 0,
        )
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        String::from("other")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let markers = std::env::var_os("ROOMBOX_INSN_MARKERS").is_some_and(|v| v == "1");
    let frames: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(if markers { 120 } else { 300 });
    if frames == 0 {
        return Err("FRAMES: at least one frame after the first".into());
    }
    println!("cpu: {}", cpu_features());
    let key = SenderKey::generate(1);
    let cipher = key.cipher();
    let mut ring = KeyRing::default();
    ring.insert(key);
    let pics = pictures(frames + 1)?;
    let mut enc = encoder()?;
    let mut r = Regions {
        markers,
        runs: [0; REGIONS.len()],
        times: Default::default(),
    };
    let (mut plain_bytes, mut sealed_bytes, mut slices) = (0usize, 0usize, 0usize);
    for (i, f) in pics.iter().enumerate() {
        let au = if i == 0 {
            r.run(ENCODE_FIRST, || encode_720p_first(&mut enc, f))
        } else {
            r.run(ENCODE, || encode_720p(&mut enc, f))
        };
        // The first frame (an IDR with the parameter sets) is not a steady-state frame.
        let (Some(au), true) = (au, i > 0) else {
            continue;
        };
        let sealed = r.run(SEAL, || seal_720p(&cipher, &au));
        let opened = r.run(OPEN, || open_720p(&mut ring, &sealed));
        assert_eq!(opened, au);
        plain_bytes += au.len();
        sealed_bytes += sealed.len();
        slices += nal_units(&au)
            .iter()
            .filter(|(_, n)| n.first().is_some_and(|h| matches!(h & 0x1f, 1 | 5)))
            .count();
    }
    let packet: Vec<u8> = (0..OPUS_BYTES).map(|i| (i * 7) as u8).collect();
    let packets = frames * 5 / 3;
    let mut opus_sealed = 0;
    for _ in 0..packets {
        let sealed = r.run(SEAL_OPUS, || seal_opus(&cipher, &packet));
        let opened = r.run(OPEN_OPUS, || open_opus(&mut ring, &sealed));
        assert_eq!(opened, packet);
        opus_sealed = sealed.len();
    }
    let n = r.runs[SEAL as usize];
    if n == 0 {
        return Err("the encoder gave no frame after the first".into());
    }
    if markers {
        let runs: Vec<String> = REGIONS
            .iter()
            .map(|&(side, name)| format!("{side}:{name}:{}", r.runs[side as usize]))
            .collect();
        println!("regions: {}", runs.join(" "));
        println!(
            "bytes: video_frames={n} video_plain={plain_bytes} video_sealed={sealed_bytes} \
             slices={slices} opus_packets={packets} opus_plain={OPUS_BYTES} \
             opus_sealed={opus_sealed}"
        );
        return Ok(());
    }
    let ((enc_ms, enc_p50), (seal_ms, seal_p50), (open_ms, open_p50)) =
        (r.ms(ENCODE), r.ms(SEAL), r.ms(OPEN));
    let ((oseal_ms, oseal_p50), (oopen_ms, oopen_p50)) = (r.ms(SEAL_OPUS), r.ms(OPEN_OPUS));
    println!(
        "e2ee: 720p30 at 2.5 Mbit/s, {n} frames after the first, mean bytes {} -> {} sealed \
         ({:.2} slices a frame)",
        plain_bytes / n,
        sealed_bytes / n,
        slices as f64 / n as f64
    );
    println!(
        "e2ee: per video frame, mean (median): encode {enc_ms:.3} ({enc_p50:.3}) ms, seal \
         {seal_ms:.4} ({seal_p50:.4}) ms = {:.2}% of encode, open {open_ms:.4} ({open_p50:.4}) ms",
        100.0 * seal_ms / enc_ms
    );
    println!(
        "e2ee: per Opus packet ({OPUS_BYTES} B -> {opus_sealed} B), mean (median): seal {:.2} \
         ({:.2}) us, open {:.2} ({:.2}) us",
        oseal_ms * 1000.0,
        oseal_p50 * 1000.0,
        oopen_ms * 1000.0,
        oopen_p50 * 1000.0
    );
    let send = seal_ms * 30.0 + oseal_ms * 50.0;
    let recv = open_ms * 30.0 + oopen_ms * 50.0;
    println!(
        "e2ee: a core's share at 720p30 + 50 Opus packets/s: sealing {:.3}% (the same for 1 or \
         5 viewers: sealed once), opening one sender's {:.3}%; encoding alone {:.1}%",
        send / 10.0,
        recv / 10.0,
        enc_ms * 30.0 / 10.0
    );
    println!(
        "e2ee: bytes added: {:.2}% of the video ({:.1} a frame: {} a slice, the rest escaping)",
        100.0 * (sealed_bytes - plain_bytes) as f64 / plain_bytes as f64,
        (sealed_bytes - plain_bytes) as f64 / n as f64,
        roombox_seal::frame::OVERHEAD
    );
    Ok(())
}
