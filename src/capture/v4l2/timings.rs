//! DV timings (what an HDMI receiver locked onto) as plain numbers, and their short name for
//! people, e.g. "1920x1080p60" or "1280x720p59.94".

use v4l2r::bindings;

/// The parts of `v4l2_bt_timings` the box uses: the picture size and enough of the blanking to
/// know the frame rate. The raw timings are kept to hand back to `VIDIOC_S_DV_TIMINGS` unchanged.
#[derive(Clone, Copy)]
pub struct DvTimings {
    pub width: u32,
    pub height: u32,
    pub interlaced: bool,
    pub pixelclock: u64,
    /// Total pixels per line (active + front porch + sync + back porch).
    pub htotal: u32,
    /// Total lines per frame (both fields when interlaced).
    pub vtotal: u32,
    /// 1000/1001 rate (59.94 instead of 60).
    pub reduced_fps: bool,
    pub raw: bindings::v4l2_dv_timings,
}

impl std::fmt::Debug for DvTimings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl PartialEq for DvTimings {
    fn eq(&self, other: &Self) -> bool {
        (
            self.width,
            self.height,
            self.interlaced,
            self.pixelclock,
            self.htotal,
            self.vtotal,
            self.reduced_fps,
        ) == (
            other.width,
            other.height,
            other.interlaced,
            other.pixelclock,
            other.htotal,
            other.vtotal,
            other.reduced_fps,
        )
    }
}

impl From<bindings::v4l2_dv_timings> for DvTimings {
    fn from(raw: bindings::v4l2_dv_timings) -> Self {
        // SAFETY: BT.656/1120 is the only timings type the kernel defines; `bt` is its member.
        // The struct is packed, so fields are copied out, never borrowed.
        let bt = unsafe { raw.__bindgen_anon_1.bt };
        let interlaced = bt.interlaced == bindings::V4L2_DV_INTERLACED;
        let mut vtotal = bt.height + bt.vfrontporch + bt.vsync + bt.vbackporch;
        if interlaced {
            vtotal += bt.il_vfrontporch + bt.il_vsync + bt.il_vbackporch;
        }
        let flags = bt.flags;
        Self {
            width: bt.width,
            height: bt.height,
            interlaced,
            pixelclock: bt.pixelclock,
            htotal: bt.width + bt.hfrontporch + bt.hsync + bt.hbackporch,
            vtotal,
            reduced_fps: flags & bindings::V4L2_DV_FL_CAN_REDUCE_FPS != 0
                && flags & bindings::V4L2_DV_FL_REDUCED_FPS != 0,
            raw,
        }
    }
}

impl DvTimings {
    /// Frames per second (fields per second when interlaced, as HDMI names them).
    pub fn rate(&self) -> f64 {
        let total = u64::from(self.htotal) * u64::from(self.vtotal);
        if total == 0 {
            return 0.0;
        }
        let mut rate = self.pixelclock as f64 / total as f64;
        if self.interlaced {
            rate *= 2.0;
        }
        if self.reduced_fps {
            rate = rate * 1000.0 / 1001.0;
        }
        rate
    }

    /// "1920x1080p60", "1280x720p59.94", "1920x1080i50".
    pub fn name(&self) -> String {
        let scan = if self.interlaced { 'i' } else { 'p' };
        format!(
            "{}x{}{scan}{}",
            self.width,
            self.height,
            format_rate(self.rate())
        )
    }
}

/// A rate with at most two decimals and no trailing zeros: 60, 59.94, 29.97, 23.98.
pub fn format_rate(rate: f64) -> String {
    let s = format!("{rate:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
pub(crate) fn bt_timings(
    width: u32,
    height: u32,
    interlaced: bool,
    pixelclock: u64,
    (hfp, hs, hbp): (u32, u32, u32),
    (vfp, vs, vbp): (u32, u32, u32),
    flags: u32,
) -> bindings::v4l2_dv_timings {
    let mut raw = bindings::v4l2_dv_timings {
        type_: bindings::V4L2_DV_BT_656_1120,
        ..Default::default()
    };
    raw.__bindgen_anon_1.bt = bindings::v4l2_bt_timings {
        width,
        height,
        interlaced: u32::from(interlaced),
        pixelclock,
        hfrontporch: hfp,
        hsync: hs,
        hbackporch: hbp,
        vfrontporch: vfp,
        vsync: vs,
        vbackporch: vbp,
        il_vfrontporch: if interlaced { vfp + 1 } else { 0 },
        il_vsync: if interlaced { vs } else { 0 },
        il_vbackporch: if interlaced { vbp } else { 0 },
        flags,
        ..Default::default()
    };
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cea_modes() {
        // CEA-861 1080p60: 148.5 MHz, 2200 x 1125 total.
        let t: DvTimings =
            bt_timings(1920, 1080, false, 148_500_000, (88, 44, 148), (4, 5, 36), 0).into();
        assert_eq!((t.htotal, t.vtotal), (2200, 1125));
        assert_eq!(t.name(), "1920x1080p60");

        // 720p59.94: the same timings with the 1000/1001 flag pair.
        let flags = bindings::V4L2_DV_FL_CAN_REDUCE_FPS | bindings::V4L2_DV_FL_REDUCED_FPS;
        let t: DvTimings = bt_timings(
            1280,
            720,
            false,
            74_250_000,
            (110, 40, 220),
            (5, 5, 20),
            flags,
        )
        .into();
        assert_eq!(t.name(), "1280x720p59.94");

        // Only "can reduce" (the source did not ask for it): full rate.
        let t: DvTimings = bt_timings(
            1280,
            720,
            false,
            74_250_000,
            (110, 40, 220),
            (5, 5, 20),
            bindings::V4L2_DV_FL_CAN_REDUCE_FPS,
        )
        .into();
        assert_eq!(t.name(), "1280x720p60");

        // 1080i50: 74.25 MHz, 2640 wide, 562 + 563 lines: 50 fields a second.
        let t: DvTimings =
            bt_timings(1920, 1080, true, 74_250_000, (528, 44, 148), (2, 5, 15), 0).into();
        assert_eq!(t.vtotal, 1125);
        assert_eq!(t.name(), "1920x1080i50");
    }

    #[test]
    fn rates_print_short() {
        assert_eq!(format_rate(60.0), "60");
        assert_eq!(format_rate(59.940_059), "59.94");
        assert_eq!(format_rate(23.976), "23.98");
        assert_eq!(format_rate(30.5), "30.5");
        assert_eq!(format_rate(0.0), "0");
    }

    #[test]
    fn empty_timings_do_not_divide_by_zero() {
        let t: DvTimings = bindings::v4l2_dv_timings::default().into();
        assert_eq!(t.rate(), 0.0);
        assert_eq!(t.name(), "0x0p0");
    }
}
