//! ALSA capture and playback of 48 kHz mono S16 in 20 ms frames. Both block in the device
//! call, so the device clock paces them; run each on its own thread.

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::frame::{AUDIO_FRAME, AUDIO_RATE};
use super::sink::{AudioSink, SinkError};
use super::source::{AudioSource, SourceError};

/// Playback period: 10 ms, so the device wakes us twice per frame we write.
const PLAYBACK_PERIOD: i64 = AUDIO_FRAME as i64 / 2;
/// Playback buffer: three frames (60 ms) absorb the scheduling jitter of the mixing thread.
const PLAYBACK_BUFFER: i64 = AUDIO_FRAME as i64 * 3;
/// Playback starts once two frames are queued, which leaves 20 ms of cushion from the start.
const PLAYBACK_START: i64 = AUDIO_FRAME as i64 * 2;
/// Capture buffer: four frames, so a late reader loses nothing for 60 ms.
const CAPTURE_BUFFER: i64 = AUDIO_FRAME as i64 * 4;

/// Opens `device` and sets 48 kHz mono S16 interleaved with the given period and buffer.
fn open_pcm(
    device: &str,
    dir: Direction,
    period: i64,
    buffer: i64,
) -> Result<PCM, (String, Option<alsa::Error>)> {
    let fail = |what: &str, e: alsa::Error| (what.to_owned(), Some(e));
    let pcm = PCM::new(device, dir, false).map_err(|e| fail("cannot open", e))?;
    {
        let hw = HwParams::any(&pcm).map_err(|e| fail("cannot read hardware parameters", e))?;
        hw.set_access(Access::RWInterleaved)
            .map_err(|e| fail("no interleaved access", e))?;
        hw.set_format(Format::s16())
            .map_err(|e| fail("no S16 sample format", e))?;
        hw.set_channels(1)
            .map_err(|e| fail("no mono (use a plug: device)", e))?;
        hw.set_rate(AUDIO_RATE, ValueOr::Nearest)
            .map_err(|e| fail("cannot set the rate", e))?;
        hw.set_period_size_near(period, ValueOr::Nearest)
            .map_err(|e| fail("cannot set the period size", e))?;
        hw.set_buffer_size_near(buffer)
            .map_err(|e| fail("cannot set the buffer size", e))?;
        pcm.hw_params(&hw)
            .map_err(|e| fail("rejected the hardware parameters", e))?;
    }
    let rate = pcm
        .hw_params_current()
        .and_then(|hw| hw.get_rate())
        .map_err(|e| fail("cannot read back the rate", e))?;
    if rate != AUDIO_RATE {
        return Err((
            format!("runs at {rate} Hz, not {AUDIO_RATE} Hz (use a plug: device)"),
            None,
        ));
    }
    Ok(pcm)
}

/// Room audio from an ALSA capture device.
pub struct AlsaCapture {
    device: String,
    pcm: PCM,
    overruns: u64,
}

impl AlsaCapture {
    /// Opens `device` (an ALSA name such as `default`, `hw:1,0` or `plughw:CARD=Device`).
    pub fn open(device: &str) -> Result<Self, SourceError> {
        let pcm = open_pcm(
            device,
            Direction::Capture,
            AUDIO_FRAME as i64,
            CAPTURE_BUFFER,
        )
        .map_err(|(reason, e)| match e {
            Some(source) if reason == "cannot open" => SourceError::Alsa {
                device: device.to_owned(),
                source,
            },
            Some(source) => SourceError::AlsaConfig {
                device: device.to_owned(),
                reason: format!("{reason}: {source}"),
            },
            None => SourceError::AlsaConfig {
                device: device.to_owned(),
                reason,
            },
        })?;
        Ok(Self {
            device: device.to_owned(),
            pcm,
            overruns: 0,
        })
    }

    /// Times the device overran (we read too late and samples were lost).
    pub fn overruns(&self) -> u64 {
        self.overruns
    }
}

impl AudioSource for AlsaCapture {
    fn read_frame(&mut self, out: &mut [i16; AUDIO_FRAME]) -> Result<(), SourceError> {
        let err = |device: &str, source| SourceError::Alsa {
            device: device.to_owned(),
            source,
        };
        let io = self.pcm.io_i16().map_err(|e| err(&self.device, e))?;
        let mut filled = 0;
        while filled < AUDIO_FRAME {
            match io.readi(&mut out[filled..]) {
                Ok(n) => filled += n,
                Err(e) => {
                    // Overrun (EPIPE) or suspend (ESTRPIPE): prepare and carry on.
                    self.overruns += 1;
                    self.pcm
                        .try_recover(e, true)
                        .map_err(|e| err(&self.device, e))?;
                }
            }
        }
        Ok(())
    }
}

/// The room speaker: an ALSA playback device with a small buffer.
pub struct AlsaPlayback {
    device: String,
    pcm: PCM,
    underruns: u64,
}

impl AlsaPlayback {
    /// Opens `device` for 48 kHz mono playback with about 40-60 ms of buffering.
    pub fn open(device: &str) -> Result<Self, SinkError> {
        let pcm = open_pcm(
            device,
            Direction::Playback,
            PLAYBACK_PERIOD,
            PLAYBACK_BUFFER,
        )
        .map_err(|(reason, e)| SinkError::Alsa {
            device: device.to_owned(),
            reason: match e {
                Some(source) => format!("{reason}: {source}"),
                None => reason,
            },
        })?;
        let sw_fail = |e: alsa::Error| SinkError::Alsa {
            device: device.to_owned(),
            reason: format!("cannot set the start threshold: {e}"),
        };
        {
            let sw = pcm.sw_params_current().map_err(sw_fail)?;
            sw.set_start_threshold(PLAYBACK_START).map_err(sw_fail)?;
            pcm.sw_params(&sw).map_err(sw_fail)?;
        }
        Ok(Self {
            device: device.to_owned(),
            pcm,
            underruns: 0,
        })
    }

    /// Times the device ran dry (we wrote too late) and was restarted.
    pub fn underruns(&self) -> u64 {
        self.underruns
    }
}

impl AudioSink for AlsaPlayback {
    fn write(&mut self, frame: &[i16; AUDIO_FRAME]) -> Result<(), SinkError> {
        let err = |device: &str, e: alsa::Error| SinkError::Alsa {
            device: device.to_owned(),
            reason: e.to_string(),
        };
        let io = self.pcm.io_i16().map_err(|e| err(&self.device, e))?;
        let mut written = 0;
        while written < AUDIO_FRAME {
            match io.writei(&frame[written..]) {
                Ok(n) => written += n,
                Err(e) => {
                    // Underrun (EPIPE): snd_pcm_recover prepares the device; we refill it.
                    if e.errno() == EPIPE {
                        self.underruns += 1;
                    }
                    self.pcm
                        .try_recover(e, true)
                        .map_err(|e| err(&self.device, e))?;
                }
            }
        }
        Ok(())
    }
}

/// The errno ALSA reports for an xrun (the same on every Linux architecture).
const EPIPE: i32 = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_names_itself() {
        let err = AlsaCapture::open("no_such_roombox_device")
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("no_such_roombox_device"), "{err}");
        let err = AlsaPlayback::open("no_such_roombox_device")
            .err()
            .expect("must fail");
        assert!(err.to_string().contains("no_such_roombox_device"), "{err}");
    }

    /// alsa-lib's `null` plugin needs no sound card, so this runs the real parameter setup.
    #[test]
    fn null_device_plays_and_captures() {
        let mut out = AlsaPlayback::open("null").expect("null playback opens");
        let frame = [1000i16; AUDIO_FRAME];
        for _ in 0..5 {
            out.write(&frame).expect("write");
        }
        let mut input = AlsaCapture::open("null").expect("null capture opens");
        let mut buf = [7i16; AUDIO_FRAME];
        input.read_frame(&mut buf).expect("read");
    }
}
