//! Choosing what to capture. HDMI receivers: the timings the receiver locked onto are applied
//! (`QUERY_DV_TIMINGS` then `S_DV_TIMINGS`) and the size comes from the format that follows.
//! Cameras and USB dongles: the configured size and rate if a format offers them, cheapest
//! format first (planar, then packed 4:2:2, then MJPEG).

use super::convert::{PixelLayout, SourceFormat};
use super::device::{list_formats, CaptureError, Device, QUEUE};
use super::signal::NoPicture;
use super::timings::DvTimings;
use std::os::fd::AsRawFd;
use v4l2r::bindings;
use v4l2r::ioctl::{self, FrmIvalTypes, FrmSizeTypes};
use v4l2r::{Format, PixelFormat};

/// What the caller would like (the configured video size and rate).
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// A format to use when the device offers it, ahead of the usual order (tests, installers
    /// checking a dongle's formats).
    pub layout: Option<PixelLayout>,
}

/// What the device was set to.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated {
    pub format: SourceFormat,
    /// The HDMI timings, for inputs that have them.
    pub timings: Option<DvTimings>,
}

/// Sets up the device's current input for capture. Errors carrying a [`NoPicture`] mean "try
/// again later" (no signal, no lock); others mean the device cannot deliver what the box reads.
pub fn negotiate(dev: &Device, want: Wanted) -> Result<Negotiated, CaptureError> {
    let path = dev.path.as_str();
    let offered = list_formats(&dev.file);
    let usable: Vec<PixelLayout> = want
        .layout
        .into_iter()
        .chain(PixelLayout::PREFERRED)
        .filter(|l| offered.contains(&PixelFormat::from(&l.fourcc())))
        .collect();
    if usable.is_empty() {
        let names: Vec<String> = offered
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        return Err(CaptureError::Unsupported {
            path: path.to_owned(),
            reason: format!(
                "offers {}, none of YU12, NV12, YUYV, UYVY or MJPG",
                if names.is_empty() {
                    "no formats".into()
                } else {
                    names.join(" ")
                }
            ),
        });
    }

    if dev.input.dv_timings {
        let timings = dev.query_dv_timings()?;
        ioctl::s_dv_timings::<_, bindings::v4l2_dv_timings>(&dev.file, timings.raw)
            .map_err(|e| CaptureError::ioctl(path, "VIDIOC_S_DV_TIMINGS", e.into()))?;
        let format = set_format(dev, usable[0], timings.width, timings.height)?;
        if (format.width, format.height) != (timings.width, timings.height) {
            // Some bridges cannot scale: anything else would be a cropped or garbled picture.
            return Err(CaptureError::Unsupported {
                path: path.to_owned(),
                reason: format!(
                    "format is {}x{} after applying timings {}",
                    format.width,
                    format.height,
                    timings.name()
                ),
            });
        }
        return Ok(Negotiated {
            format,
            timings: Some(timings),
        });
    }

    if let Some(reason) = NoPicture::from_input_status(dev.input_status()?) {
        return Err(CaptureError::NoPicture(reason));
    }
    let layout = usable
        .iter()
        .copied()
        .find(|&l| offers(dev, l, want))
        .unwrap_or(usable[0]);
    let format = set_format(dev, layout, want.width, want.height)?;
    set_frame_rate(dev, want.fps);
    Ok(Negotiated {
        format,
        timings: None,
    })
}

/// `VIDIOC_S_FMT` with `layout` at `width x height`; the driver may adjust the size.
fn set_format(
    dev: &Device,
    layout: PixelLayout,
    width: u32,
    height: u32,
) -> Result<SourceFormat, CaptureError> {
    let path = dev.path.as_str();
    let request = Format::from((&layout.fourcc(), (width as usize, height as usize)));
    let got: Format = ioctl::s_fmt(&mut dev.file.as_raw_fd(), (QUEUE, &request))
        .map_err(|e| CaptureError::ioctl(path, "VIDIOC_S_FMT", e.into()))?;
    let got_layout = PixelLayout::from_fourcc(got.pixelformat.to_fourcc()).ok_or_else(|| {
        CaptureError::Unsupported {
            path: path.to_owned(),
            reason: format!("asked for {layout:?}, the driver set {}", got.pixelformat),
        }
    })?;
    if got.width < 2 || got.height < 2 {
        return Err(CaptureError::Unsupported {
            path: path.to_owned(),
            reason: format!("the driver set a {}x{} picture", got.width, got.height),
        });
    }
    Ok(SourceFormat {
        layout: got_layout,
        width: got.width,
        height: got.height,
        bytesperline: got.plane_fmt.first().map_or(0, |p| p.bytesperline),
    })
}

/// Whether `layout` comes at the wanted size and at least the wanted rate. Drivers that do not
/// enumerate sizes or intervals are taken at their word later, by `S_FMT`.
fn offers(dev: &Device, layout: PixelLayout, want: Wanted) -> bool {
    let fourcc = PixelFormat::from(&layout.fourcc());
    let sizes: Vec<bindings::v4l2_frmsizeenum> = (0..256)
        .map_while(|i| ioctl::enum_frame_sizes(&dev.file, i, fourcc).ok())
        .collect();
    let size_ok = sizes.is_empty()
        || sizes.iter().any(|s| match s.size() {
            Some(FrmSizeTypes::Discrete(d)) => (d.width, d.height) == (want.width, want.height),
            Some(FrmSizeTypes::StepWise(s)) => {
                (s.min_width..=s.max_width).contains(&want.width)
                    && (s.min_height..=s.max_height).contains(&want.height)
            }
            None => false,
        });
    if !size_ok {
        return false;
    }
    let intervals: Vec<bindings::v4l2_frmivalenum> = (0..256)
        .map_while(|i| {
            ioctl::enum_frame_intervals(&dev.file, i, fourcc, want.width, want.height).ok()
        })
        .collect();
    // An interval of n/d seconds is d/n frames a second.
    let fast_enough =
        |num: u32, den: u32| num > 0 && u64::from(den) >= u64::from(want.fps) * u64::from(num);
    intervals.is_empty()
        || intervals.iter().any(|i| match i.intervals() {
            Some(FrmIvalTypes::Discrete(f)) => fast_enough(f.numerator, f.denominator),
            Some(FrmIvalTypes::StepWise(s)) => fast_enough(s.min.numerator, s.min.denominator),
            None => false,
        })
}

/// Asks for `fps` (`VIDIOC_S_PARM`); drivers without frame-rate control keep their own.
fn set_frame_rate(dev: &Device, fps: u32) {
    let mut parm = bindings::v4l2_streamparm {
        type_: QUEUE as u32,
        ..Default::default()
    };
    // `capture` is the union member for capture queues.
    parm.parm.capture.timeperframe = bindings::v4l2_fract {
        numerator: 1,
        denominator: fps,
    };
    if let Err(e) = ioctl::s_parm::<_, bindings::v4l2_streamparm>(&dev.file, parm) {
        tracing::debug!(
            "{}: cannot set {fps} fps ({e}); the driver keeps its rate",
            dev.path
        );
    }
}
