//! Opening an ALSA PCM as close to the box's format (48 kHz mono S16) as the device allows:
//! 48 kHz when it can, else its nearest native rate (resampled by the caller); mono when it
//! can, else its fewest channels (mixed down or duplicated by the caller).

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use crate::media::frame::AUDIO_RATE;

/// Lowest and highest device rates we accept (telephone band to studio rates).
const RATE_RANGE: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// The period and buffer the caller wants, in milliseconds of audio (rate-independent).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub period_ms: u32,
    pub buffer_ms: u32,
}

/// An open, configured PCM and what the device agreed to.
pub struct Device {
    pub pcm: PCM,
    pub rate: u32,
    pub channels: usize,
    pub period: usize,
    pub buffer: usize,
}

impl Device {
    /// "44100 Hz, 2 ch, period 441, buffer 3528" for logs.
    pub fn describe(&self) -> String {
        format!(
            "{} Hz, {} ch, period {} frames, buffer {} frames",
            self.rate, self.channels, self.period, self.buffer
        )
    }
}

/// Why a device could not be opened or configured; the text names the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {detail}")]
pub struct OpenError {
    pub step: &'static str,
    pub detail: String,
}

fn fail(step: &'static str) -> impl Fn(alsa::Error) -> OpenError {
    move |e| OpenError {
        step,
        detail: e.to_string(),
    }
}

/// Opens `name` in blocking mode and applies interleaved S16 at the best rate and channel
/// count, with period and buffer near `timing`.
pub fn open(name: &str, dir: Direction, timing: Timing) -> Result<Device, OpenError> {
    let pcm = PCM::new(name, dir, false).map_err(fail("cannot open"))?;
    {
        let hw = HwParams::any(&pcm).map_err(fail("cannot read hardware parameters"))?;
        hw.set_access(Access::RWInterleaved)
            .map_err(fail("no interleaved access"))?;
        hw.set_format(Format::s16())
            .map_err(fail("no S16 sample format (use a plughw: device)"))?;
        let channels = if hw.test_channels(1).is_ok() {
            1
        } else {
            hw.get_channels_min()
                .map_err(fail("cannot read the channel counts"))?
        };
        hw.set_channels(channels)
            .map_err(fail("cannot set the channel count"))?;
        // 48 kHz when the device has it; otherwise the nearest rate it has (44.1 kHz USB).
        let rate = hw
            .set_rate_near(AUDIO_RATE, ValueOr::Nearest)
            .map_err(fail("cannot set a sample rate"))?;
        let frames = |ms: u32| i64::from(rate) * i64::from(ms) / 1000;
        hw.set_period_size_near(frames(timing.period_ms), ValueOr::Nearest)
            .map_err(fail("cannot set the period size"))?;
        hw.set_buffer_size_near(frames(timing.buffer_ms))
            .map_err(fail("cannot set the buffer size"))?;
        pcm.hw_params(&hw)
            .map_err(fail("rejected the hardware parameters"))?;
    }
    let hw = pcm
        .hw_params_current()
        .map_err(fail("cannot read back the parameters"))?;
    let read_back = fail("cannot read back the parameters");
    let rate = hw.get_rate().map_err(&read_back)?;
    let channels = hw.get_channels().map_err(&read_back)? as usize;
    let period = hw.get_period_size().map_err(&read_back)? as usize;
    let buffer = hw.get_buffer_size().map_err(&read_back)? as usize;
    drop(hw);
    if !RATE_RANGE.contains(&rate) || channels == 0 || period == 0 {
        return Err(OpenError {
            step: "unusable parameters",
            detail: format!("{rate} Hz, {channels} channels, period {period}"),
        });
    }
    Ok(Device {
        pcm,
        rate,
        channels,
        period,
        buffer,
    })
}

/// What an I/O error means for a running stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// Overrun or underrun (EPIPE) or a suspend (ESTRPIPE): recover and go on.
    Xrun,
    /// The device went away (unplugged, driver unbound or unloaded): close and reopen later.
    Gone,
}

/// Sorts an I/O error. Anything that is not an xrun is treated as the device being gone, so
/// the caller closes it and reopens: that is also the cure for any state we do not know.
pub fn classify(e: &alsa::Error) -> Trouble {
    match e.errno() {
        EPIPE | ESTRPIPE => Trouble::Xrun,
        _ => Trouble::Gone,
    }
}

/// The errnos ALSA reports for an xrun and a suspend (the same on every Linux architecture).
const EPIPE: i32 = 32;
const ESTRPIPE: i32 = 86;
