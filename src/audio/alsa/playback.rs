//! The room speaker: an ALSA playback device fed 20 ms frames of 48 kHz mono, converted to
//! whatever the device runs at. Underruns are recovered; a device that vanishes is retried
//! about once a second while the frames meant for it are paced and dropped.

use alsa::Direction;

use super::convert::{to_i16, upmix, RateConverter};
use super::device::{self, classify, Device, Timing, Trouble};
use super::watch::{StreamStats, Watch};
use crate::audio::sink::{AudioSink, SinkError};
use crate::media::frame::{AUDIO_FRAME, AUDIO_RATE};

/// Playback period 10 ms (the device wakes the writer twice per frame) and a 60 ms buffer:
/// the mixer writes whole 20 ms frames, so the fill swings between 40 and 60 ms and the
/// mixing thread may run up to 40 ms late before an underrun. Less buffer means less delay
/// but more underruns on a busy 2-core box; 60 ms is the delay a room does not notice.
pub const PLAYBACK_TIMING: Timing = Timing {
    period_ms: 10,
    buffer_ms: 60,
};
/// Playback starts once 40 ms are queued (two frames), so it begins with that cushion.
const START_MS: u32 = 40;

struct PlaybackStream {
    device: Device,
    /// Interleaved samples for the device.
    raw: Vec<i16>,
    /// Mono samples at the device's rate.
    mono: Vec<f32>,
    /// From 48 kHz to the device's rate (None when it runs at 48 kHz).
    converter: Option<RateConverter>,
}

impl PlaybackStream {
    fn open(name: &str) -> Result<Self, String> {
        let device =
            device::open(name, Direction::Playback, PLAYBACK_TIMING).map_err(|e| e.to_string())?;
        {
            let start = i64::from(device.rate * START_MS / 1000);
            let start = start.min((device.buffer - device.period) as i64);
            let sw_fail = |e: alsa::Error| format!("cannot set the start threshold: {e}");
            let sw = device.pcm.sw_params_current().map_err(sw_fail)?;
            sw.set_start_threshold(start).map_err(sw_fail)?;
            device.pcm.sw_params(&sw).map_err(sw_fail)?;
        }
        let converter = match device.rate {
            AUDIO_RATE => None,
            rate => Some(RateConverter::new(AUDIO_RATE, rate).map_err(|e| e.to_string())?),
        };
        Ok(Self {
            raw: Vec::with_capacity(AUDIO_FRAME * 2 * device.channels),
            mono: Vec::with_capacity(AUDIO_FRAME * 2),
            device,
            converter,
        })
    }

    fn describe(&self) -> String {
        match self.converter {
            Some(_) => format!("{}, resampled from 48000 Hz", self.device.describe()),
            None => self.device.describe(),
        }
    }

    fn write_frame(&mut self, frame: &[i16; AUDIO_FRAME], watch: &mut Watch) -> Result<(), String> {
        let channels = self.device.channels;
        if self.converter.is_none() && channels == 1 {
            return write_all(&self.device, frame, watch);
        }
        self.mono.clear();
        match &mut self.converter {
            None => self.mono.extend(frame.iter().map(|&s| f32::from(s))),
            Some(conv) => {
                conv.pending_mut()
                    .extend(frame.iter().map(|&s| f32::from(s)));
                conv.convert();
                conv.pop_all(&mut self.mono);
            }
        }
        self.raw.clear();
        if channels == 1 {
            self.raw.extend(self.mono.iter().map(|&s| to_i16(s)));
        } else {
            upmix(&self.mono, channels, &mut self.raw);
        }
        write_all(&self.device, &self.raw, watch)
    }
}

/// Writes all of `buf` (interleaved), recovering underruns on the way.
fn write_all(device: &Device, buf: &[i16], watch: &mut Watch) -> Result<(), String> {
    let io = device.pcm.io_i16().map_err(|e| e.to_string())?;
    let mut written = 0;
    while written < buf.len() {
        match io.writei(&buf[written..]) {
            Ok(0) => return Err("the device took no data".into()),
            Ok(frames) => written += frames * device.channels,
            Err(e) if classify(&e) == Trouble::Xrun => {
                // snd_pcm_recover prepares the device; the next writes refill it and the
                // start threshold starts it again with its cushion.
                watch.xrun();
                device.pcm.try_recover(e, true).map_err(|e| e.to_string())?;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// The room speaker by ALSA name. Never fails: while the device is absent, frames are paced
/// in real time and dropped, and the device is retried about once a second.
pub struct AlsaPlayback {
    name: String,
    stream: Option<PlaybackStream>,
    watch: Watch,
}

impl AlsaPlayback {
    /// Opens `name`, or starts without it (logged) when it cannot be opened now.
    pub fn open(name: &str) -> Self {
        let mut watch = Watch::new(format!("audio output alsa:{name}"), "underrun");
        let stream = match PlaybackStream::open(name) {
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
        }
    }

    /// Opens `name` once, failing with the reason (for checks that want an answer now).
    pub fn probe(name: &str) -> Result<String, SinkError> {
        PlaybackStream::open(name)
            .map(|s| s.describe())
            .map_err(|reason| SinkError::Alsa {
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

impl AudioSink for AlsaPlayback {
    fn write(&mut self, frame: &[i16; AUDIO_FRAME]) -> Result<(), SinkError> {
        if let Some(stream) = &mut self.stream {
            match stream.write_frame(frame, &mut self.watch) {
                Ok(()) => return Ok(()),
                Err(why) => {
                    self.stream = None;
                    self.watch.lost(&why);
                }
            }
        }
        if self.watch.absent_tick() {
            if let Ok(stream) = PlaybackStream::open(&self.name) {
                self.watch.back(&stream.describe());
                self.stream = Some(stream);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_the_device() {
        let err = AlsaPlayback::probe("no_such_roombox_device").expect_err("must fail");
        assert!(err.to_string().contains("no_such_roombox_device"), "{err}");
    }

    #[test]
    fn null_device_plays() {
        let mut out = AlsaPlayback::open("null");
        assert!(out.is_present());
        let frame = [1000i16; AUDIO_FRAME];
        for _ in 0..5 {
            out.write(&frame).expect("write");
        }
        assert_eq!(out.stats().losses, 0);
    }

    #[test]
    fn absent_device_is_paced_not_fatal() {
        let mut out = AlsaPlayback::open("no_such_roombox_device");
        assert!(!out.is_present());
        for _ in 0..3 {
            out.write(&[0; AUDIO_FRAME]).expect("dropped, not an error");
        }
        assert_eq!(out.stats().absent_frames, 3);
    }
}
