//! The call's picture on a KMS overlay plane (see [`super::planes`] for which plane and why):
//! each decoded I420 frame is copied into one of two YUV420 dumb buffers and shown with one
//! atomic commit (on vblank, with a page-flip event), scaled and converted by the display
//! hardware. The primary plane's ARGB overlay rides in the same commit when it changed, so
//! names and pictures never show out of step.
//!
//! Not run here: no driver in the test VM has a YUV overlay plane (bochs-drm and virtio-gpu
//! have none); there the search runs against the real driver and says why the CPU composes.
//! Written for vc4 (Raspberry Pi 4), which takes YUV420 with zpos on every plane.

use super::drm::Card;
use super::planes::{
    choose_video_plane, copy_i420, yuv420_layout, NoVideoPlane, PlaneDesc, PlaneKind, Zpos,
};
use super::DisplayError;
use crate::media::VideoFrame;
use crate::remote_video::compose::Rect;
use drm::buffer::{DrmFourcc, DrmModifier, PlanarBuffer};
use drm::control::atomic::AtomicModeReq;
use drm::control::dumbbuffer::DumbBuffer;
use drm::control::property::{self, ValueType};
use drm::control::{crtc, framebuffer, plane, AtomicCommitFlags, Device as _, FbCmd2Flags};
use drm::{ClientCapability, Device as _};
use std::collections::HashMap;

/// The plane properties a commit sets, by name.
const VIDEO_PROPS: [&str; 10] = [
    "FB_ID", "CRTC_ID", "SRC_X", "SRC_Y", "SRC_W", "SRC_H", "CRTC_X", "CRTC_Y", "CRTC_W", "CRTC_H",
];

/// A YUV420 dumb buffer with its framebuffer.
struct YuvBuffer {
    db: DumbBuffer,
    fb: framebuffer::Handle,
    size: (u32, u32),
    offsets: [u32; 3],
    pitches: [u32; 3],
}

/// The dumb buffer seen as three planes, for ADDFB2.
struct Planar<'a>(&'a DumbBuffer, (u32, u32), [u32; 3], [u32; 3]);

impl PlanarBuffer for Planar<'_> {
    fn size(&self) -> (u32, u32) {
        self.1
    }
    fn format(&self) -> DrmFourcc {
        DrmFourcc::Yuv420
    }
    fn modifier(&self) -> Option<DrmModifier> {
        None
    }
    fn pitches(&self) -> [u32; 4] {
        [self.3[0], self.3[1], self.3[2], 0]
    }
    fn handles(&self) -> [Option<drm::buffer::Handle>; 4] {
        let h = drm::buffer::Buffer::handle(self.0);
        [Some(h), Some(h), Some(h), None]
    }
    fn offsets(&self) -> [u32; 4] {
        [self.2[0], self.2[1], self.2[2], 0]
    }
}

/// The plane found for our CRTC, its buffers and what it shows.
pub(super) struct VideoPlane {
    crtc: crtc::Handle,
    plane: plane::Handle,
    primary: plane::Handle,
    props: HashMap<&'static str, property::Handle>,
    primary_fb_prop: property::Handle,
    /// (property, value) pairs set in every commit: zpos of both planes, colour encoding.
    fixed: Vec<(plane::Handle, property::Handle, u64)>,
    buffers: Vec<YuvBuffer>,
    next: usize,
    /// The plane shows a picture now.
    pub(super) active: bool,
}

impl VideoPlane {
    /// Looks for a plane that can show the call under the primary on `crtc`; the reason when
    /// there is none. Turns on atomic modesetting for this file when there is one.
    pub(super) fn find(card: &Card, crtc: crtc::Handle) -> Result<VideoPlane, NoVideoPlane> {
        card.set_client_capability(ClientCapability::UniversalPlanes, true)
            .map_err(|_| NoVideoPlane::NoAtomic)?;
        if card
            .set_client_capability(ClientCapability::Atomic, true)
            .is_err()
        {
            return Err(NoVideoPlane::NoAtomic);
        }
        let found = Self::search(card, crtc);
        if found.is_err() {
            // Nothing will use atomic commits: the CPU path's legacy calls run as before.
            let _ = card.set_client_capability(ClientCapability::Atomic, false);
        }
        found
    }

    fn search(card: &Card, crtc: crtc::Handle) -> Result<VideoPlane, NoVideoPlane> {
        let refused = |what: &str, e: std::io::Error| NoVideoPlane::Refused(format!("{what}: {e}"));
        let res = card
            .resource_handles()
            .map_err(|e| refused("resources", e))?;
        let handles = card.plane_handles().map_err(|e| refused("planes", e))?;
        let mut descs = Vec::new();
        let mut props = Vec::new();
        for &h in &handles {
            let info = card.get_plane(h).map_err(|e| refused("plane", e))?;
            let named = card
                .get_properties(h)
                .and_then(|set| named_props(card, &set))
                .map_err(|e| refused("plane properties", e))?;
            let Some(kind) = named
                .get("type")
                .and_then(|(_, v)| PlaneKind::from_property(*v))
            else {
                continue;
            };
            descs.push(PlaneDesc {
                kind,
                formats: info.formats().to_vec(),
                on_our_crtc: res.filter_crtcs(info.possible_crtcs()).contains(&crtc),
                zpos: named.get("zpos").and_then(|(i, v)| match i.value_type() {
                    ValueType::UnsignedRange(min, max) => Some(Zpos {
                        min: *min,
                        max: *max,
                        value: *v,
                        mutable: i.mutable(),
                    }),
                    _ => None,
                }),
            });
            props.push((h, named));
        }
        let choice = choose_video_plane(&descs)?;
        let (plane, video) = &props[choice.video];
        let (primary, prim) = &props[choice.primary];
        let handle = |set: &Named, name: &str| {
            set.get(name)
                .map(|(i, _)| i.handle())
                .ok_or_else(|| NoVideoPlane::Refused(format!("the plane has no {name} property")))
        };
        let mut wanted = HashMap::new();
        for name in VIDEO_PROPS {
            wanted.insert(name, handle(video, name)?);
        }
        let mut fixed = Vec::new();
        for (obj, set, z) in [
            (*plane, video, choice.video_zpos),
            (*primary, prim, choice.primary_zpos),
        ] {
            if let (Some(z), Ok(p)) = (z, handle(set, "zpos")) {
                fixed.push((obj, p, z));
            }
        }
        // Decoded frames are BT.601, limited range (what the CPU path converts from too).
        for (prop, value) in [
            ("COLOR_ENCODING", "ITU-R BT.601 YCbCr"),
            ("COLOR_RANGE", "YCbCr limited range"),
        ] {
            if let Some((p, v)) = video
                .get(prop)
                .and_then(|(i, _)| Some((i.handle(), enum_value(i, value)?)))
            {
                fixed.push((*plane, p, v));
            }
        }
        Ok(VideoPlane {
            crtc,
            plane: *plane,
            primary: *primary,
            props: wanted,
            primary_fb_prop: handle(prim, "FB_ID")?,
            fixed,
            buffers: Vec::new(),
            next: 0,
            active: false,
        })
    }

    /// Shows `frame` scaled into `at`, and switches the primary plane to `primary_fb` when
    /// given, in one commit on the next vblank with a page-flip event. The first commit of a
    /// size is tried first (TEST_ONLY), so a driver that cannot scale it refuses before
    /// anything changes on screen.
    pub(super) fn show(
        &mut self,
        card: &Card,
        frame: &VideoFrame,
        at: Rect,
        primary_fb: Option<framebuffer::Handle>,
    ) -> Result<(), DisplayError> {
        let size = (frame.width, frame.height);
        let new_size = self.buffers.first().is_none_or(|b| b.size != size);
        if new_size {
            self.destroy(card);
            for _ in 0..2 {
                let b = yuv_buffer(card, size)?;
                self.buffers.push(b);
            }
        }
        let buffer = &mut self.buffers[self.next];
        {
            let mut map = card
                .map_dumb_buffer(&mut buffer.db)
                .map_err(DisplayError::drm("map a video buffer"))?;
            copy_i420(
                &frame.data,
                size.0,
                size.1,
                map.as_mut(),
                buffer.offsets,
                buffer.pitches,
            );
        }
        let fb = buffer.fb;
        let mut req = AtomicModeReq::new();
        let p = |name: &str| self.props[name];
        let values: [(&str, u64); 10] = [
            ("FB_ID", u32::from(fb).into()),
            ("CRTC_ID", u32::from(self.crtc).into()),
            ("SRC_X", 0),
            ("SRC_Y", 0),
            // 16.16 fixed point.
            ("SRC_W", u64::from(size.0) << 16),
            ("SRC_H", u64::from(size.1) << 16),
            ("CRTC_X", at.x.into()),
            ("CRTC_Y", at.y.into()),
            ("CRTC_W", at.w.into()),
            ("CRTC_H", at.h.into()),
        ];
        for (name, v) in values {
            req.add_raw_property(self.plane.into(), p(name), v);
        }
        for &(obj, prop, v) in &self.fixed {
            req.add_raw_property(obj.into(), prop, v);
        }
        if let Some(fb) = primary_fb {
            req.add_raw_property(
                self.primary.into(),
                self.primary_fb_prop,
                u32::from(fb).into(),
            );
        }
        if new_size {
            card.atomic_commit(AtomicCommitFlags::TEST_ONLY, req.clone())
                .map_err(DisplayError::drm("test the video plane"))?;
        }
        card.atomic_commit(
            AtomicCommitFlags::NONBLOCK | AtomicCommitFlags::PAGE_FLIP_EVENT,
            req,
        )
        .map_err(DisplayError::drm("show on the video plane"))?;
        self.next = 1 - self.next;
        self.active = true;
        Ok(())
    }

    /// Takes the picture off the plane and puts `primary_fb` on the primary, in one commit
    /// with a page-flip event.
    pub(super) fn hide(
        &mut self,
        card: &Card,
        primary_fb: framebuffer::Handle,
    ) -> Result<(), DisplayError> {
        let mut req = AtomicModeReq::new();
        req.add_raw_property(self.plane.into(), self.props["FB_ID"], 0);
        req.add_raw_property(self.plane.into(), self.props["CRTC_ID"], 0);
        req.add_raw_property(
            self.primary.into(),
            self.primary_fb_prop,
            u32::from(primary_fb).into(),
        );
        card.atomic_commit(
            AtomicCommitFlags::NONBLOCK | AtomicCommitFlags::PAGE_FLIP_EVENT,
            req,
        )
        .map_err(DisplayError::drm("hide the video plane"))?;
        self.active = false;
        Ok(())
    }

    /// Frees the buffers (removing a framebuffer the plane shows turns the plane off).
    pub(super) fn destroy(&mut self, card: &Card) {
        for b in self.buffers.drain(..) {
            let _ = card.destroy_framebuffer(b.fb);
            let _ = card.destroy_dumb_buffer(b.db);
        }
        self.next = 0;
        self.active = false;
    }
}

/// A plane's properties by name: (info, current value).
type Named = HashMap<String, (property::Info, u64)>;

fn named_props(card: &Card, set: &drm::control::PropertyValueSet) -> std::io::Result<Named> {
    let mut out = HashMap::new();
    for (&h, &v) in set {
        let info = card.get_property(h)?;
        let name = info.name().to_string_lossy().into_owned();
        out.insert(name, (info, v));
    }
    Ok(out)
}

/// The raw value of an enum property's entry called `name`.
fn enum_value(info: &property::Info, name: &str) -> Option<u64> {
    let ValueType::Enum(values) = info.value_type() else {
        return None;
    };
    let (_, entries) = values.values();
    entries
        .iter()
        .find(|e| e.name().to_bytes() == name.as_bytes())
        .map(property::EnumValue::value)
}

/// A YUV420 buffer for `size` frames: one dumb buffer of 8-bit rows, the chroma planes after
/// the luma at half its pitch.
fn yuv_buffer(card: &Card, size: (u32, u32)) -> Result<YuvBuffer, DisplayError> {
    let (w, h) = size;
    let odd = || DisplayError::Drm {
        op: "lay out a video buffer",
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    };
    // The pitch is known only once the buffer exists: ask for the rows at the frame's width.
    let (_, _, rows) = yuv420_layout(w, h, w).ok_or_else(odd)?;
    let db = card
        .create_dumb_buffer((w, rows), DrmFourcc::Yuv420, 8)
        .map_err(DisplayError::drm("create a video buffer"))?;
    let pitch = drm::buffer::Buffer::pitch(&db);
    let Some((offsets, pitches, _)) = yuv420_layout(w, h, pitch) else {
        let _ = card.destroy_dumb_buffer(db);
        return Err(odd());
    };
    match card.add_planar_framebuffer(&Planar(&db, size, offsets, pitches), FbCmd2Flags::empty()) {
        Ok(fb) => Ok(YuvBuffer {
            db,
            fb,
            size,
            offsets,
            pitches,
        }),
        Err(e) => {
            let _ = card.destroy_dumb_buffer(db);
            Err(DisplayError::drm("add a YUV420 framebuffer")(e))
        }
    }
}
