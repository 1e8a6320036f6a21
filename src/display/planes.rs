//! Which KMS plane can carry the call's video, worked out from what the driver says of its
//! planes (no I/O here: [`super::video_plane`] reads the planes and does the showing).
//!
//! The picture goes on an overlay plane that takes YUV420 (the decoder's I420, three planes)
//! and is stacked *under* the primary plane; the primary then carries everything else as
//! ARGB8888 with a transparent hole where the picture is, so names and the speaker's outline
//! sit over the video and the display hardware does the scaling and the colour conversion.
//! That needs the atomic API, a primary plane with ARGB8888, and `zpos` properties that allow
//! the overlay below the primary (vc4 on a Pi has all three; bochs and virtio-gpu have no
//! overlay plane at all).

use std::fmt;

/// DRM_FORMAT_YUV420 ('YU12'): Y, then U, then V planes, chroma halved both ways.
pub const YUV420: u32 = u32::from_le_bytes(*b"YU12");
/// DRM_FORMAT_ARGB8888 ('AR24').
pub const ARGB8888: u32 = u32::from_le_bytes(*b"AR24");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaneKind {
    Primary,
    Overlay,
    Cursor,
}

impl PlaneKind {
    /// From the value of a plane's `type` property (DRM_PLANE_TYPE_*).
    pub fn from_property(value: u64) -> Option<Self> {
        match value {
            0 => Some(PlaneKind::Overlay),
            1 => Some(PlaneKind::Primary),
            2 => Some(PlaneKind::Cursor),
            _ => None,
        }
    }
}

/// A plane's `zpos` property: its range, its value now, and whether we may change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zpos {
    pub min: u64,
    pub max: u64,
    pub value: u64,
    pub mutable: bool,
}

impl Zpos {
    /// The lowest and highest value this plane can take.
    fn lowest(&self) -> u64 {
        if self.mutable {
            self.min
        } else {
            self.value
        }
    }
    fn highest(&self) -> u64 {
        if self.mutable {
            self.max
        } else {
            self.value
        }
    }
}

/// One plane as the choice sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaneDesc {
    pub kind: PlaneKind,
    /// DRM fourcc codes.
    pub formats: Vec<u32>,
    /// The plane can be used on the CRTC driving our display.
    pub on_our_crtc: bool,
    pub zpos: Option<Zpos>,
}

/// The planes to use, by index into the list given, and the `zpos` values to set (none where
/// the plane has no `zpos` property or may not change it: an atomic commit that sets an
/// immutable property is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoPlaneChoice {
    pub video: usize,
    pub primary: usize,
    pub video_zpos: Option<u64>,
    pub primary_zpos: Option<u64>,
}

/// Why the call is composed by the CPU on this display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoVideoPlane {
    /// The driver does not take atomic commits.
    NoAtomic,
    /// No primary plane on our CRTC takes ARGB8888.
    NoArgbPrimary,
    /// No overlay plane on our CRTC takes YUV420.
    NoYuvOverlay,
    /// A YUV420 overlay exists but cannot be stacked under the primary plane.
    NotUnderPrimary,
    /// The driver refused the plane when tried (a test-only commit, or a commit that failed).
    Refused(String),
}

impl fmt::Display for NoVideoPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoVideoPlane::NoAtomic => write!(f, "the driver has no atomic modesetting"),
            NoVideoPlane::NoArgbPrimary => write!(f, "its primary plane has no ARGB8888"),
            NoVideoPlane::NoYuvOverlay => write!(f, "no overlay plane takes YUV420"),
            NoVideoPlane::NotUnderPrimary => {
                write!(
                    f,
                    "its YUV420 overlay cannot go under the primary plane (zpos)"
                )
            }
            NoVideoPlane::Refused(e) => write!(f, "the driver refused the video plane: {e}"),
        }
    }
}

/// The first YUV420 overlay on our CRTC that can sit under an ARGB8888 primary.
pub fn choose_video_plane(planes: &[PlaneDesc]) -> Result<VideoPlaneChoice, NoVideoPlane> {
    let usable = |kind: PlaneKind, format: u32| {
        move |(_, p): &(usize, &PlaneDesc)| {
            p.kind == kind && p.on_our_crtc && p.formats.contains(&format)
        }
    };
    let mut overlays = planes
        .iter()
        .enumerate()
        .filter(usable(PlaneKind::Overlay, YUV420))
        .peekable();
    if overlays.peek().is_none() {
        return Err(NoVideoPlane::NoYuvOverlay);
    }
    let (primary, p) = planes
        .iter()
        .enumerate()
        .find(usable(PlaneKind::Primary, ARGB8888))
        .ok_or(NoVideoPlane::NoArgbPrimary)?;
    // Without zpos the kernel stacks planes by type: overlays over the primary.
    let pz = p.zpos.ok_or(NoVideoPlane::NotUnderPrimary)?;
    overlays
        .find_map(|(video, o)| {
            let oz = o.zpos?;
            (oz.lowest() < pz.highest()).then_some(VideoPlaneChoice {
                video,
                primary,
                video_zpos: oz.mutable.then_some(oz.min),
                primary_zpos: pz.mutable.then_some(pz.max),
            })
        })
        .ok_or(NoVideoPlane::NotUnderPrimary)
}

/// Where the three planes of a `w` x `h` YUV420 picture go in one buffer of `pitch` bytes a
/// luma row: (offsets, pitches, rows of `pitch` bytes the buffer needs). Chroma rows are half
/// the pitch. `None` for odd sizes or pitches, which the plane path leaves to the CPU.
pub fn yuv420_layout(w: u32, h: u32, pitch: u32) -> Option<([u32; 3], [u32; 3], u32)> {
    if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 || pitch % 2 == 1 || pitch < w {
        return None;
    }
    let luma = pitch.checked_mul(h)?;
    let chroma = (pitch / 2) * (h / 2);
    Some((
        [0, luma, luma + chroma],
        [pitch, pitch / 2, pitch / 2],
        h + h / 2,
    ))
}

/// Copies a tightly packed I420 frame (`src`, strides `w` and `w / 2`) into a buffer laid out
/// by [`yuv420_layout`].
pub fn copy_i420(src: &[u8], w: u32, h: u32, dst: &mut [u8], offsets: [u32; 3], pitches: [u32; 3]) {
    let (w, h) = (w as usize, h as usize);
    let planes = [(w, h), (w / 2, h / 2), (w / 2, h / 2)];
    let mut from = 0;
    for ((pw, ph), (offset, pitch)) in planes.into_iter().zip(offsets.into_iter().zip(pitches)) {
        let (offset, pitch) = (offset as usize, pitch as usize);
        for row in 0..ph {
            let at = offset + row * pitch;
            dst[at..at + pw].copy_from_slice(&src[from..from + pw]);
            from += pw;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
    const NV12: u32 = u32::from_le_bytes(*b"NV12");

    fn plane(kind: PlaneKind, formats: &[u32], zpos: Option<(u64, u64, u64, bool)>) -> PlaneDesc {
        PlaneDesc {
            kind,
            formats: formats.to_vec(),
            on_our_crtc: true,
            zpos: zpos.map(|(min, max, value, mutable)| Zpos {
                min,
                max,
                value,
                mutable,
            }),
        }
    }

    /// What vc4 on a Pi 4 reports (every plane takes every format, zpos 0..127 everywhere).
    fn vc4_like() -> Vec<PlaneDesc> {
        let all = [XRGB8888, ARGB8888, YUV420, NV12];
        vec![
            plane(PlaneKind::Primary, &all, Some((0, 127, 0, true))),
            plane(PlaneKind::Cursor, &[ARGB8888], Some((0, 127, 127, true))),
            plane(PlaneKind::Overlay, &all, Some((0, 127, 1, true))),
            plane(PlaneKind::Overlay, &all, Some((0, 127, 2, true))),
        ]
    }

    #[test]
    fn a_yuv_overlay_goes_under_an_argb_primary() {
        assert_eq!(
            choose_video_plane(&vc4_like()),
            Ok(VideoPlaneChoice {
                video: 2,
                primary: 0,
                video_zpos: Some(0),
                primary_zpos: Some(127),
            })
        );
    }

    #[test]
    fn bochs_and_virtio_gpu_have_no_video_plane() {
        // bochs-drm: one primary plane, XRGB8888 and friends; virtio-gpu adds a cursor.
        let bochs = [plane(PlaneKind::Primary, &[XRGB8888], None)];
        assert_eq!(choose_video_plane(&bochs), Err(NoVideoPlane::NoYuvOverlay));
        let virtio = [
            plane(PlaneKind::Primary, &[XRGB8888, ARGB8888], None),
            plane(PlaneKind::Cursor, &[ARGB8888], None),
        ];
        assert_eq!(choose_video_plane(&virtio), Err(NoVideoPlane::NoYuvOverlay));
    }

    #[test]
    fn overlays_that_stay_above_the_primary_are_not_used() {
        // No zpos: stacked by type, overlay over primary.
        let mut planes = vc4_like();
        for p in &mut planes {
            p.zpos = None;
        }
        assert_eq!(
            choose_video_plane(&planes),
            Err(NoVideoPlane::NotUnderPrimary)
        );
        // Immutable zpos, primary at the bottom.
        let planes = [
            plane(PlaneKind::Primary, &[ARGB8888], Some((0, 0, 0, false))),
            plane(PlaneKind::Overlay, &[YUV420], Some((1, 1, 1, false))),
        ];
        assert_eq!(
            choose_video_plane(&planes),
            Err(NoVideoPlane::NotUnderPrimary)
        );
        // A fixed primary at 2 and an overlay that can go to 0: used, primary left as it is
        // (setting an immutable zpos would make the driver refuse the commit).
        let planes = [
            plane(PlaneKind::Primary, &[ARGB8888], Some((2, 2, 2, false))),
            plane(PlaneKind::Overlay, &[YUV420], Some((0, 5, 3, true))),
        ];
        let c = choose_video_plane(&planes).unwrap();
        assert_eq!((c.video_zpos, c.primary_zpos), (Some(0), None));
        // And the other way round: a fixed overlay at 0 under a primary raised to its top.
        let planes = [
            plane(PlaneKind::Primary, &[ARGB8888], Some((0, 5, 0, true))),
            plane(PlaneKind::Overlay, &[YUV420], Some((0, 0, 0, false))),
        ];
        let c = choose_video_plane(&planes).unwrap();
        assert_eq!((c.video_zpos, c.primary_zpos), (None, Some(5)));
    }

    #[test]
    fn an_xrgb_only_primary_cannot_carry_the_names_over_the_video() {
        let mut planes = vc4_like();
        planes[0].formats = vec![XRGB8888, YUV420];
        assert_eq!(
            choose_video_plane(&planes),
            Err(NoVideoPlane::NoArgbPrimary)
        );
    }

    #[test]
    fn planes_of_another_crtc_or_without_yuv420_are_skipped() {
        let mut planes = vc4_like();
        planes[2].on_our_crtc = false;
        planes[3].formats = vec![XRGB8888, NV12];
        assert_eq!(choose_video_plane(&planes), Err(NoVideoPlane::NoYuvOverlay));
        planes[3].formats.push(YUV420);
        assert_eq!(choose_video_plane(&planes).unwrap().video, 3);
    }

    #[test]
    fn yuv420_layout_in_one_buffer() {
        // 1280x720 in a buffer with 1344-byte rows (a driver's 64-byte alignment).
        let (offsets, pitches, rows) = yuv420_layout(1280, 720, 1344).unwrap();
        assert_eq!(offsets, [0, 1344 * 720, 1344 * 720 + 672 * 360]);
        assert_eq!(pitches, [1344, 672, 672]);
        assert_eq!(rows, 1080);
        // The whole frame fits in rows * pitch.
        assert_eq!(offsets[2] + 672 * 360, rows * 1344);
        assert_eq!(yuv420_layout(33, 16, 64), None);
        assert_eq!(yuv420_layout(32, 17, 64), None);
        assert_eq!(yuv420_layout(64, 16, 32), None);
    }

    #[test]
    fn copy_i420_keeps_every_plane_in_place() {
        let (w, h, pitch) = (6u32, 4u32, 10u32);
        let src: Vec<u8> = (0..roombox_scale::i420_len(w, h) as u32)
            .map(|i| i as u8)
            .collect();
        let (offsets, pitches, rows) = yuv420_layout(w, h, pitch).unwrap();
        let mut dst = vec![0xee; (rows * pitch) as usize];
        copy_i420(&src, w, h, &mut dst, offsets, pitches);
        // Y row 1, U row 1, V row 0, and the padding untouched.
        assert_eq!(&dst[10..16], &src[6..12]);
        assert_eq!(dst[16], 0xee);
        assert_eq!(&dst[40 + 5..40 + 8], &src[24 + 3..24 + 6]);
        assert_eq!(&dst[50..53], &src[30..33]);
        assert_eq!(dst[53], 0xee);
    }
}
