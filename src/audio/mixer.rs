//! Mixing the remote voices: every peer's Opus goes through its own jitter buffer and decoder,
//! then the 20 ms frames are summed with a soft clip. Pure: time is passed in.

use std::collections::HashMap;
use std::time::Instant;

use super::jitter::{JitterBuffer, JitterStats, Playout};
use super::opus::{OpusDecoder, OpusError};
use crate::media::frame::AUDIO_FRAME;

/// Above this level (about -2.5 dBFS) the sum is compressed instead of hard-clipped.
const KNEE: f32 = 24_576.0;
const FULL: f32 = 32_767.0;

/// Sums `inputs` into `out` with a soft clip: linear up to the knee, then a tanh curve that
/// approaches full scale without ever wrapping.
pub fn mix(inputs: &[&[i16; AUDIO_FRAME]], out: &mut [i16; AUDIO_FRAME]) {
    match inputs {
        [] => out.fill(0),
        [one] => out.copy_from_slice(&one[..]),
        _ => {
            for (i, o) in out.iter_mut().enumerate() {
                let sum: i32 = inputs.iter().map(|f| i32::from(f[i])).sum();
                *o = soft_clip(sum);
            }
        }
    }
}

fn soft_clip(sum: i32) -> i16 {
    let x = sum as f32;
    if x.abs() <= KNEE {
        return sum as i16;
    }
    let room = FULL - KNEE;
    let y = KNEE + room * ((x.abs() - KNEE) / room).tanh();
    (y.copysign(x)).round() as i16
}

struct Peer {
    jitter: JitterBuffer,
    decoder: OpusDecoder,
    pcm: [i16; AUDIO_FRAME],
}

/// Remote participants' audio, mixed for the room speaker.
#[derive(Default)]
pub struct RemoteAudio {
    peers: HashMap<String, Peer>,
    /// Peers that produced a frame this tick (reused each tick).
    active: Vec<String>,
}

impl RemoteAudio {
    pub fn new() -> Self {
        Self::default()
    }

    /// An RTP packet of `peer`'s Opus stream arrived at `now`. A new peer gets a decoder.
    pub fn push_packet(
        &mut self,
        peer: &str,
        seq: u16,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), OpusError> {
        if !self.peers.contains_key(peer) {
            let p = Peer {
                jitter: JitterBuffer::new(),
                decoder: OpusDecoder::new()?,
                pcm: [0; AUDIO_FRAME],
            };
            self.peers.insert(peer.to_owned(), p);
        }
        if let Some(p) = self.peers.get_mut(peer) {
            p.jitter.push(seq, payload, now);
        }
        Ok(())
    }

    /// Forgets a peer that left.
    pub fn remove_peer(&mut self, peer: &str) {
        self.peers.remove(peer);
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Jitter statistics of one peer.
    pub fn stats(&self, peer: &str) -> Option<JitterStats> {
        self.peers.get(peer).map(|p| p.jitter.stats())
    }

    /// The next 20 ms of the mix, for the tick at `now`. A peer whose packet cannot be decoded
    /// is concealed for this tick rather than failing the whole mix.
    pub fn pull_mixed(&mut self, now: Instant, out: &mut [i16; AUDIO_FRAME]) {
        self.active.clear();
        for (id, p) in &mut self.peers {
            let decoded = match p.jitter.pop(now) {
                Playout::Empty => continue,
                Playout::Packet(packet) => p.decoder.decode(packet, &mut p.pcm),
                Playout::Lost { next: Some(next) } => p.decoder.decode_fec(next, &mut p.pcm),
                Playout::Lost { next: None } => p.decoder.conceal(&mut p.pcm),
            };
            if let Err(e) = decoded {
                tracing::debug!(peer = %id, error = %e, "undecodable audio, concealing");
                if p.decoder.conceal(&mut p.pcm).is_err() {
                    continue;
                }
            }
            self.active.push(id.clone());
        }
        // At most a handful of peers: a small array of references avoids a per-tick allocation.
        let mut frames: [&[i16; AUDIO_FRAME]; 8] = [&SILENCE; 8];
        let mut n = 0;
        for id in &self.active {
            if let Some(p) = self.peers.get(id) {
                if n == frames.len() {
                    break;
                }
                frames[n] = &p.pcm;
                n += 1;
            }
        }
        mix(&frames[..n], out);
    }
}

static SILENCE: [i16; AUDIO_FRAME] = [0; AUDIO_FRAME];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::opus::OpusEncoder;
    use crate::audio::tone::Tone;
    use std::time::Duration;

    #[test]
    fn sums_and_soft_clips() {
        let a = [1000i16; AUDIO_FRAME];
        let b = [-300i16; AUDIO_FRAME];
        let loud = [30_000i16; AUDIO_FRAME];
        let quiet_neg = [-30_000i16; AUDIO_FRAME];
        let mut out = [0i16; AUDIO_FRAME];
        mix(&[&a, &b], &mut out);
        assert!(out.iter().all(|&s| s == 700));
        mix(&[&loud, &loud, &loud], &mut out);
        assert!(out.iter().all(|&s| s > 30_000), "{}", out[0]);
        mix(&[&quiet_neg, &quiet_neg], &mut out);
        assert!(out.iter().all(|&s| s < -30_000), "{}", out[0]);
        mix(&[], &mut out);
        assert!(out.iter().all(|&s| s == 0));
        // Monotonic through the knee: louder input never gives quieter output.
        let mut last = 0;
        for x in (0..100_000).step_by(97) {
            let y = soft_clip(x);
            assert!(y >= last);
            last = y;
        }
    }

    #[test]
    fn mixes_two_peers_and_removes_one() {
        let mut remote = RemoteAudio::new();
        let mut enc_a = OpusEncoder::new(48_000).expect("encoder");
        let mut enc_b = OpusEncoder::new(48_000).expect("encoder");
        let mut tone = Tone::unpaced();
        let mut pcm = [0i16; AUDIO_FRAME];
        let silence = [0i16; AUDIO_FRAME];
        let mut now = Instant::now();
        let mut out = [0i16; AUDIO_FRAME];
        let rms = |s: &[i16]| {
            (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
        };
        let mut levels = vec![];
        for i in 0..100u16 {
            tone.fill(&mut pcm);
            remote
                .push_packet("a", i, &enc_a.encode(&pcm).expect("encode"), now)
                .expect("push");
            if i < 50 {
                remote
                    .push_packet("b", 1000 + i, &enc_b.encode(&silence).expect("encode"), now)
                    .expect("push");
            }
            if i == 60 {
                remote.remove_peer("b");
            }
            remote.pull_mixed(now, &mut out);
            levels.push(rms(&out));
            now += Duration::from_millis(20);
        }
        assert_eq!(remote.peer_count(), 1);
        // The tone comes through once the jitter buffer has started.
        assert!(levels[80] > 3000.0, "{levels:?}");
        assert!(remote.stats("a").expect("peer a").played > 90);
        assert!(remote.stats("b").is_none());
    }

    #[test]
    fn garbage_packets_do_not_break_the_mix() {
        // A peer that sends garbage next to one that sends a tone: the garbage peer is
        // concealed (silence) and kept, the tone still comes through, every tick fills `out`.
        let mut remote = RemoteAudio::new();
        let mut enc = OpusEncoder::new(48_000).expect("encoder");
        let mut tone = Tone::unpaced();
        let mut pcm = [0i16; AUDIO_FRAME];
        let mut now = Instant::now();
        let mut out = [1i16; AUDIO_FRAME];
        let rms = |s: &[i16]| {
            (s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
        };
        // Garbage alone: concealment of a peer that never decoded is silence, not the old
        // contents of `out`.
        remote.push_packet("x", 0, &[0xff; 3], now).expect("push");
        remote.pull_mixed(now + Duration::from_millis(100), &mut out);
        assert!(out.iter().all(|&s| s.abs() < 100), "{:?}", &out[..8]);

        let mut levels = vec![];
        for i in 1..100u16 {
            now += Duration::from_millis(20);
            tone.fill(&mut pcm);
            let good = enc.encode(&pcm).expect("encode");
            remote.push_packet("tone", i, &good, now).expect("push");
            remote
                .push_packet("x", i, &[0xff, 0x00, 0x13][..(i % 3 + 1) as usize], now)
                .expect("push");
            remote.pull_mixed(now, &mut out);
            levels.push(rms(&out));
        }
        assert_eq!(
            remote.peer_count(),
            2,
            "the garbage peer is kept, not dropped"
        );
        assert!(
            levels[80..].iter().all(|&l| l > 3000.0),
            "{:?}",
            &levels[80..]
        );
        assert!(remote.stats("tone").expect("tone peer").played > 90);
    }
}
