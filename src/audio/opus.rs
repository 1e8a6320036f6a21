//! Opus for room audio (RFC 6716, RTP payload RFC 7587): a 48 kHz mono VOIP encoder with
//! in-band FEC, and a mono decoder that also takes stereo streams (libopus downmixes), conceals
//! lost packets and recovers them from the next packet's FEC data.

use opus::{Application, Bitrate, Channels};

use crate::media::frame::{AUDIO_FRAME, AUDIO_RATE};

/// Largest packet we produce (RFC 6716 allows 1275 bytes a frame).
const MAX_PACKET: usize = 1500;
/// Samples in the longest Opus packet (120 ms); decoding goes through a scratch this large.
const MAX_DECODED: usize = AUDIO_RATE as usize / 1000 * 120;

/// Why Opus failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpusError {
    #[error("Opus encoder: {0}")]
    Encoder(#[source] opus::Error),
    #[error("Opus decoder: {0}")]
    Decoder(#[source] opus::Error),
}

/// Encodes 20 ms mono frames.
pub struct OpusEncoder {
    inner: opus::Encoder,
    scratch: Box<[u8; MAX_PACKET]>,
}

impl OpusEncoder {
    /// A VOIP encoder at `bitrate_bps` (32-64 kbps suits speech) with in-band FEC on.
    pub fn new(bitrate_bps: u32) -> Result<Self, OpusError> {
        let mut inner = opus::Encoder::new(AUDIO_RATE, Channels::Mono, Application::Voip)
            .map_err(OpusError::Encoder)?;
        inner
            .set_bitrate(Bitrate::Bits(
                i32::try_from(bitrate_bps).unwrap_or(i32::MAX),
            ))
            .map_err(OpusError::Encoder)?;
        inner.set_inband_fec(true).map_err(OpusError::Encoder)?;
        // FEC is only emitted when the encoder expects loss; 10 % is the usual WebRTC prior.
        inner.set_packet_loss_perc(10).map_err(OpusError::Encoder)?;
        Ok(Self {
            inner,
            scratch: Box::new([0; MAX_PACKET]),
        })
    }

    /// Encodes one frame into a new exact-size packet (handed on to the peers).
    pub fn encode(&mut self, pcm: &[i16; AUDIO_FRAME]) -> Result<Vec<u8>, OpusError> {
        let n = self
            .inner
            .encode(pcm, &mut self.scratch[..])
            .map_err(OpusError::Encoder)?;
        Ok(self.scratch[..n].to_vec())
    }

    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), OpusError> {
        self.inner
            .set_bitrate(Bitrate::Bits(
                i32::try_from(bitrate_bps).unwrap_or(i32::MAX),
            ))
            .map_err(OpusError::Encoder)
    }

    /// Samples of delay the encoder adds (a decoder skips this many at the start).
    pub fn lookahead(&mut self) -> Result<u16, OpusError> {
        let n = self.inner.get_lookahead().map_err(OpusError::Encoder)?;
        Ok(u16::try_from(n).unwrap_or(0))
    }
}

/// Decodes one peer's stream into 20 ms mono frames.
///
/// Packets are expected to be 20 ms (what browsers send); a shorter one fills the start of the
/// frame and the rest is silence, a longer one is cut to 20 ms.
pub struct OpusDecoder {
    inner: opus::Decoder,
    scratch: Box<[i16; MAX_DECODED]>,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, OpusError> {
        Ok(Self {
            inner: opus::Decoder::new(AUDIO_RATE, Channels::Mono).map_err(OpusError::Decoder)?,
            scratch: Box::new([0; MAX_DECODED]),
        })
    }

    /// Decodes `packet` into `out`.
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16; AUDIO_FRAME]) -> Result<(), OpusError> {
        let n = self
            .inner
            .decode(packet, &mut self.scratch[..], false)
            .map_err(OpusError::Decoder)?;
        self.copy_out(n, out);
        Ok(())
    }

    /// Rebuilds a lost frame from the FEC data in the packet that followed it; plain
    /// concealment when that packet carries none.
    pub fn decode_fec(
        &mut self,
        next_packet: &[u8],
        out: &mut [i16; AUDIO_FRAME],
    ) -> Result<(), OpusError> {
        // With FEC the decoder needs the exact duration of the lost frame in the output size.
        let n = self
            .inner
            .decode(next_packet, &mut self.scratch[..AUDIO_FRAME], true)
            .map_err(OpusError::Decoder)?;
        self.copy_out(n, out);
        Ok(())
    }

    /// Conceals a lost frame (packet loss concealment from the decoder's state).
    pub fn conceal(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<(), OpusError> {
        let n = self
            .inner
            .decode(&[], &mut self.scratch[..AUDIO_FRAME], false)
            .map_err(OpusError::Decoder)?;
        self.copy_out(n, out);
        Ok(())
    }

    fn copy_out(&self, n: usize, out: &mut [i16; AUDIO_FRAME]) {
        let n = n.min(AUDIO_FRAME);
        out[..n].copy_from_slice(&self.scratch[..n]);
        out[n..].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::{Tone, TONE_HZ};

    /// Normalised correlation of `s` with a sine at `hz` (best over phase), 0..1.
    fn tone_strength(s: &[i16], hz: f64) -> f64 {
        let (mut c, mut q, mut e) = (0.0, 0.0, 0.0);
        for (i, &x) in s.iter().enumerate() {
            let w = std::f64::consts::TAU * hz * i as f64 / f64::from(AUDIO_RATE);
            c += f64::from(x) * w.cos();
            q += f64::from(x) * w.sin();
            e += f64::from(x).powi(2);
        }
        (2.0 * (c * c + q * q) / (e * s.len() as f64)).sqrt()
    }

    #[test]
    fn tone_round_trips() {
        let mut tone = Tone::unpaced();
        let mut enc = OpusEncoder::new(48_000).expect("encoder");
        let mut dec = OpusDecoder::new().expect("decoder");
        let mut pcm = [0i16; AUDIO_FRAME];
        let mut decoded = vec![];
        for _ in 0..50 {
            tone.fill(&mut pcm);
            let packet = enc.encode(&pcm).expect("encode");
            assert!(packet.len() < 400, "{} bytes", packet.len());
            let mut out = [0i16; AUDIO_FRAME];
            dec.decode(&packet, &mut out).expect("decode");
            decoded.extend_from_slice(&out);
        }
        // Skip the first second's beep and the codec's start-up; then it is the plain tone.
        let steady = &decoded[AUDIO_FRAME * 10..AUDIO_FRAME * 50];
        assert!(
            tone_strength(steady, TONE_HZ) > 0.9,
            "440 Hz: {}",
            tone_strength(steady, TONE_HZ)
        );
        assert!(tone_strength(steady, 1000.0) < 0.1);
        let rms = (steady.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / steady.len() as f64)
            .sqrt();
        assert!((4000.0..7000.0).contains(&rms), "rms {rms}");
    }

    #[test]
    fn conceals_and_recovers_with_fec() {
        let mut tone = Tone::unpaced();
        let mut enc = OpusEncoder::new(48_000).expect("encoder");
        let mut dec = OpusDecoder::new().expect("decoder");
        let mut pcm = [0i16; AUDIO_FRAME];
        let packets: Vec<Vec<u8>> = (0..60)
            .map(|_| {
                tone.fill(&mut pcm);
                enc.encode(&pcm).expect("encode")
            })
            .collect();
        let mut out = [0i16; AUDIO_FRAME];
        for (i, p) in packets.iter().enumerate() {
            match i {
                40 => dec.conceal(&mut out).expect("plc"),
                50 => dec.decode_fec(&packets[51], &mut out).expect("fec"),
                _ => dec.decode(p, &mut out).expect("decode"),
            }
            if i == 40 || i == 50 {
                // Either way the gap still sounds like the tone, not silence.
                assert!(
                    tone_strength(&out, TONE_HZ) > 0.5,
                    "frame {i}: {}",
                    tone_strength(&out, TONE_HZ)
                );
            }
        }
    }

    #[test]
    fn stereo_stream_decodes_to_mono() {
        let mut enc = opus::Encoder::new(AUDIO_RATE, Channels::Stereo, Application::Audio)
            .expect("stereo encoder");
        let mut dec = OpusDecoder::new().expect("decoder");
        let mut tone = Tone::unpaced();
        let mut mono = [0i16; AUDIO_FRAME];
        let mut stereo = vec![0i16; AUDIO_FRAME * 2];
        let mut packet = [0u8; MAX_PACKET];
        let mut out = [0i16; AUDIO_FRAME];
        let mut last = vec![];
        for _ in 0..30 {
            tone.fill(&mut mono);
            for (pair, &s) in stereo.chunks_exact_mut(2).zip(&mono) {
                pair.fill(s);
            }
            let n = enc.encode(&stereo, &mut packet).expect("encode");
            dec.decode(&packet[..n], &mut out).expect("decode");
            last.extend_from_slice(&out);
        }
        assert!(tone_strength(&last[AUDIO_FRAME * 10..], TONE_HZ) > 0.9);
    }
}
