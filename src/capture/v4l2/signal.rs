//! Why there is no picture: the reasons the slate names, and how kernel errors map onto them.

use std::fmt;
use v4l2r::nix::errno::Errno;

/// Why the capture shows the slate instead of the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoPicture {
    /// Nothing plugged in, or the source is off (`ENOLINK`, `V4L2_IN_ST_NO_SIGNAL`).
    NoSignal,
    /// A signal the receiver cannot lock onto (`ENOLCK`, sync-lock status bits).
    NoLock,
    /// Locked, but timings the receiver cannot capture (`ERANGE`).
    OutOfRange,
    /// The device node is gone or broken (unplugged USB dongle, driver unbound).
    DeviceMissing,
}

impl NoPicture {
    /// The kernel's answer to `QUERY_DV_TIMINGS`, opening the node or dequeuing a buffer, as a
    /// reason; `None` for errors that are not about the signal or the device being there.
    pub fn from_errno(errno: Errno) -> Option<Self> {
        match errno {
            Errno::ENOLINK => Some(Self::NoSignal),
            Errno::ENOLCK => Some(Self::NoLock),
            Errno::ERANGE => Some(Self::OutOfRange),
            // ENODEV: unplugged while open; ENOENT: no such node; ENXIO: node without a driver;
            // EIO: the driver gave up on the hardware.
            Errno::ENODEV | Errno::ENOENT | Errno::ENXIO | Errno::EIO => Some(Self::DeviceMissing),
            _ => None,
        }
    }

    /// For the inputs without DV timings (cameras, analog): the input status flags.
    pub fn from_input_status(status: u32) -> Option<Self> {
        use v4l2r::bindings as b;
        if status & (b::V4L2_IN_ST_NO_POWER | b::V4L2_IN_ST_NO_SIGNAL) != 0 {
            Some(Self::NoSignal)
        } else if status
            & (b::V4L2_IN_ST_NO_H_LOCK
                | b::V4L2_IN_ST_NO_V_LOCK
                | b::V4L2_IN_ST_NO_STD_LOCK
                | b::V4L2_IN_ST_NO_SYNC)
            != 0
        {
            Some(Self::NoLock)
        } else {
            None
        }
    }

    /// The words on the slate and in the log.
    pub fn text(self) -> &'static str {
        match self {
            Self::NoSignal => "no HDMI signal",
            Self::NoLock => "no lock on the HDMI signal",
            Self::OutOfRange => "HDMI signal out of range",
            Self::DeviceMissing => "capture device missing",
        }
    }

    /// The short form `roombox devices` shows as an input's signal state.
    pub fn state(self) -> &'static str {
        match self {
            Self::NoSignal => "no signal",
            Self::NoLock => "no lock",
            Self::OutOfRange => "out of range",
            Self::DeviceMissing => "device missing",
        }
    }
}

impl fmt::Display for NoPicture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use v4l2r::bindings as b;

    #[test]
    fn errno_maps_to_reasons() {
        assert_eq!(
            NoPicture::from_errno(Errno::ENOLINK),
            Some(NoPicture::NoSignal)
        );
        assert_eq!(
            NoPicture::from_errno(Errno::ENOLCK),
            Some(NoPicture::NoLock)
        );
        assert_eq!(
            NoPicture::from_errno(Errno::ERANGE),
            Some(NoPicture::OutOfRange)
        );
        for e in [Errno::ENODEV, Errno::ENOENT, Errno::ENXIO, Errno::EIO] {
            assert_eq!(
                NoPicture::from_errno(e),
                Some(NoPicture::DeviceMissing),
                "{e}"
            );
        }
        for e in [Errno::EINVAL, Errno::EBUSY, Errno::EACCES, Errno::ENOTTY] {
            assert_eq!(NoPicture::from_errno(e), None, "{e}");
        }
    }

    #[test]
    fn input_status_maps_to_reasons() {
        assert_eq!(NoPicture::from_input_status(0), None);
        assert_eq!(
            NoPicture::from_input_status(b::V4L2_IN_ST_NO_SIGNAL),
            Some(NoPicture::NoSignal)
        );
        assert_eq!(
            NoPicture::from_input_status(b::V4L2_IN_ST_NO_POWER | b::V4L2_IN_ST_NO_H_LOCK),
            Some(NoPicture::NoSignal)
        );
        assert_eq!(
            NoPicture::from_input_status(b::V4L2_IN_ST_NO_H_LOCK),
            Some(NoPicture::NoLock)
        );
        // Flip flags say nothing about the signal.
        assert_eq!(NoPicture::from_input_status(b::V4L2_IN_ST_HFLIP), None);
    }

    #[test]
    fn texts_name_the_problem() {
        assert_eq!(NoPicture::NoSignal.to_string(), "no HDMI signal");
        assert_eq!(NoPicture::DeviceMissing.state(), "device missing");
    }
}
