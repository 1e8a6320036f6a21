//! Room audio from an ALSA capture device, as 20 ms frames of 48 kHz mono whatever the device
//! runs at. Overruns are recovered; a device that vanishes is replaced by silence until it
//! can be opened again, so the box keeps sending audio (and the service keeps running).

use alsa::Direction;

use super::convert::{downmix, to_i16, RateConverter};
use super::device::{self, classify, Device, Timing, Trouble};
use super::watch::{StreamStats, Watch};
use crate::audio::AudioSource;
use crate::media::frame::{AUDIO_FRAME, AUDIO_RATE};
use crate::media::SourceError;

/// Capture period 10 ms: data reaches us at most 10 ms after it was sampled, and each 20 ms
/// frame is two periods. The buffer (200 ms) costs no latency on capture (we read as soon as
/// a period is in, and a late reader drains the backlog at once) and lets the reader be late
/// by nine more frames before an overrun.
pub const CAPTURE_TIMING: Timing = Timing {
    period_ms: 10,
    buffer_ms: 200,
};

/// One open capture device and the conversion from its format.
struct CaptureStream {
    device: Device,
    /// Interleaved samples as read, at the device's rate and channels.
    raw: Vec<i16>,
    /// Mono samples at 48 kHz when the device runs at 48 kHz with several channels.
    mono: Vec<f32>,
    /// From the device's rate to 48 kHz (None when it runs at 48 kHz).
    converter: Option<RateConverter>,
    frame: Vec<f32>,
}

impl CaptureStream {
    fn open(name: &str) -> Result<Self, String> {
        let device =
            device::open(name, Direction::Capture, CAPTURE_TIMING).map_err(|e| e.to_string())?;
        let converter = match device.rate {
            AUDIO_RATE => None,
            rate => Some(RateConverter::new(rate, AUDIO_RATE).map_err(|e| e.to_string())?),
        };
        Ok(Self {
            raw: Vec::with_capacity(device.rate as usize / 50 * device.channels),
            mono: Vec::with_capacity(AUDIO_FRAME),
            frame: vec![0.0; AUDIO_FRAME],
            device,
            converter,
        })
    }

    /// The frame just read (20 ms) plus what the device has captured since and not yet given
    /// (ALSA's delay); the rate converter's own few ms are left out.
    fn first_sample_age(&self) -> std::time::Duration {
        let queued = self.device.pcm.delay().unwrap_or(0).max(0) as f64;
        std::time::Duration::from_secs_f64(
            AUDIO_FRAME as f64 / f64::from(AUDIO_RATE) + queued / f64::from(self.device.rate),
        )
    }

    fn describe(&self) -> String {
        match self.converter {
            Some(_) => format!("{}, resampled to 48000 Hz", self.device.describe()),
            None => self.device.describe(),
        }
    }

    /// Reads one 48 kHz mono frame; Err(why) when the device is gone.
    fn read_frame(
        &mut self,
        out: &mut [i16; AUDIO_FRAME],
        watch: &mut Watch,
    ) -> Result<(), String> {
        let channels = self.device.channels;
        match &mut self.converter {
            None if channels == 1 => {
                read_exact(&self.device, &mut out[..], watch)?;
            }
            None => {
                self.raw.resize(AUDIO_FRAME * channels, 0);
                read_exact(&self.device, &mut self.raw, watch)?;
                self.mono.clear();
                downmix(&self.raw, channels, &mut self.mono);
                for (o, &m) in out.iter_mut().zip(&self.mono) {
                    *o = to_i16(m);
                }
            }
            Some(conv) => {
                while conv.available() < AUDIO_FRAME {
                    self.raw.resize(conv.input_chunk() * channels, 0);
                    read_exact(&self.device, &mut self.raw, watch)?;
                    downmix(&self.raw, channels, conv.pending_mut());
                    conv.convert();
                }
                conv.pop(&mut self.frame);
                for (o, &m) in out.iter_mut().zip(&self.frame) {
                    *o = to_i16(m);
                }
            }
        }
        Ok(())
    }
}

/// Fills `buf` (interleaved) from the device, recovering overruns on the way.
fn read_exact(device: &Device, buf: &mut [i16], watch: &mut Watch) -> Result<(), String> {
    let io = device.pcm.io_i16().map_err(|e| e.to_string())?;
    let mut filled = 0;
    while filled < buf.len() {
        match io.readi(&mut buf[filled..]) {
            Ok(0) => return Err("the device returned no data".into()),
            Ok(frames) => filled += frames * device.channels,
            Err(e) if classify(&e) == Trouble::Xrun => {
                watch.xrun();
                device.pcm.try_recover(e, true).map_err(|e| e.to_string())?;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// Room audio from an ALSA device by name (`default`, `hw:1,0`, `plughw:CARD=Device,DEV=0`).
/// Never fails: an absent device gives silence and is retried about once a second.
pub struct AlsaCapture {
    name: String,
    stream: Option<CaptureStream>,
    watch: Watch,
    /// See `AudioSource::first_sample_age`: measured at each read.
    age: std::time::Duration,
}

impl AlsaCapture {
    /// Opens `name`, or starts without it (logged) when it cannot be opened now.
    pub fn open(name: &str) -> Self {
        let mut watch = Watch::new(format!("audio input alsa:{name}"), "overrun");
        let stream = match CaptureStream::open(name) {
            Ok(s) => {
                tracing::info!("{}: {}", watch.what(), s.describe());
                Some(s)
            }
            Err(why) => {
                watch.lost(&why);
                None
            }
        };
        Self {
            name: name.to_owned(),
            stream,
            watch,
            age: std::time::Duration::ZERO,
        }
    }

    /// Opens `name` once, failing with the reason (for checks that want an answer now).
    pub fn probe(name: &str) -> Result<String, SourceError> {
        CaptureStream::open(name)
            .map(|s| s.describe())
            .map_err(|reason| SourceError::AlsaConfig {
                device: name.to_owned(),
                reason,
            })
    }

    pub fn stats(&self) -> StreamStats {
        self.watch.stats
    }

    pub fn is_present(&self) -> bool {
        self.stream.is_some()
    }
}

impl AudioSource for AlsaCapture {
    fn read_frame(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<(), SourceError> {
        if let Some(stream) = &mut self.stream {
            match stream.read_frame(out, &mut self.watch) {
                Ok(()) => {
                    self.age = stream.first_sample_age();
                    return Ok(());
                }
                Err(why) => {
                    // Closing lets the kernel finish removing the card (it waits for us).
                    self.stream = None;
                    self.watch.lost(&why);
                }
            }
        }
        out.fill(0);
        if self.watch.absent_tick() {
            if let Ok(stream) = CaptureStream::open(&self.name) {
                self.watch.back(&stream.describe());
                self.stream = Some(stream);
            }
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        Some(format!("{}: {}", self.watch.what(), self.watch.summary()))
    }

    fn first_sample_age(&self) -> std::time::Duration {
        self.age
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn probe_names_the_device_and_the_step() {
        let err = AlsaCapture::probe("no_such_roombox_device").expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("no_such_roombox_device"), "{text}");
        assert!(text.contains("cannot open"), "{text}");
    }

    /// alsa-lib's `null` plugin needs no sound card, so this runs the real parameter setup.
    #[test]
    fn null_device_captures_at_48k() {
        let describe = AlsaCapture::probe("null").expect("null capture opens");
        assert!(describe.starts_with("48000 Hz, 1 ch"), "{describe}");
        let mut input = AlsaCapture::open("null");
        let mut buf = [7i16; AUDIO_FRAME];
        input.read_frame(&mut buf).expect("read");
        assert!(input.is_present());
        assert_eq!(input.stats().losses, 0);
        // The frame's first sample is at least its 20 ms old, at most the buffer's 200 more.
        let age = input.first_sample_age();
        assert!(
            age >= Duration::from_millis(20) && age <= Duration::from_millis(220),
            "{age:?}"
        );
    }

    /// A device that is not there gives paced silence instead of an error, and is counted.
    #[test]
    fn absent_device_gives_paced_silence() {
        let mut input = AlsaCapture::open("no_such_roombox_device");
        assert!(!input.is_present());
        let start = Instant::now();
        let mut buf = [7i16; AUDIO_FRAME];
        for _ in 0..5 {
            input.read_frame(&mut buf).expect("silence, not an error");
            assert!(buf.iter().all(|&s| s == 0));
        }
        // Frames 0..4 are due at 0..80 ms: the stand-in keeps real time.
        assert!(start.elapsed() >= Duration::from_millis(79));
        let stats = input.stats();
        assert_eq!((stats.losses, stats.absent_frames), (1, 5));
        let summary = input.summary().expect("summary");
        assert!(summary.contains("no_such_roombox_device"), "{summary}");
        assert!(summary.contains("unavailable 1 time"), "{summary}");
    }
}
