//! The HDMI output through DRM/KMS: a dumb buffer (XRGB8888) on the first connected connector,
//! in its preferred mode.
//!
//! We hold DRM master only while showing something: when no display is connected we set no mode
//! and leave the console as it is. Connector state is read without forcing a probe (the kernel
//! follows hotplug itself and polls connectors without HPD), so a rescan every 2 s is cheap.
//!
//! Frames are drawn into one of two dumb buffers while the other is scanned out, and swapped
//! with a page flip on vblank, so a picture never tears; a driver that refuses page flips gets
//! a copy into the buffer scanned out (logged once).
//!
//! Where the driver has an overlay plane for YUV420 that can go under the primary
//! ([`super::video_plane`]), one picture filling its place (a screen share, a lone camera) is
//! shown on it, scaled by the display hardware, and the primary carries the names over it as
//! ARGB; grids, and drivers without such a plane, get the call composed in XRGB by the CPU.
//!
//! Not run on a Pi yet: the KMS calls run in the test VM against qemu's `bochs-drm` (the
//! ignored tests `kms_*`, tests/vm/cases/50-kms-display.sh), a display unplugged and plugged
//! back through the connector's sysfs `status`.

use super::framebuffer::MemoryFramebuffer;
use super::planes::NoVideoPlane;
use super::video_plane::VideoPlane;
use super::DisplayError;
use crate::remote_video::picture::LayoutKey;
use crate::remote_video::CallPicture;
use drm::buffer::DrmFourcc;
use drm::control::{connector, crtc, dumbbuffer::DumbBuffer, framebuffer, Device as _, Mode};
use drm::control::{ClipRect, Event, ModeTypeFlags, PageFlipFlags};
use drm::Device as _;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Modes taller than this are skipped in favour of a smaller one: a 4K buffer costs a Pi
/// 33 MB of CMA memory and a long copy, for text that reads the same at 1080p.
const MAX_HEIGHT: u16 = 1080;
/// How long to wait for the previous page flip before drawing into its old buffer: a frame at
/// 24 Hz is 42 ms; a driver whose flips never complete is not waited on forever.
const FLIP_WAIT: Duration = Duration::from_millis(100);

/// One connector as the selection sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorInfo {
    pub connected: bool,
    pub modes: Vec<ModeInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeInfo {
    pub width: u16,
    pub height: u16,
    pub preferred: bool,
}

/// Picks (connector index, mode index): the first connected connector that has modes, in its
/// preferred mode, or the first mode (the kernel lists the best first) not taller than 1080.
pub fn choose_output(connectors: &[ConnectorInfo]) -> Option<(usize, usize)> {
    connectors.iter().enumerate().find_map(|(ci, c)| {
        if !c.connected {
            return None;
        }
        let fits = |m: &ModeInfo| m.height <= MAX_HEIGHT;
        let mode = c
            .modes
            .iter()
            .position(|m| m.preferred && fits(m))
            .or_else(|| c.modes.iter().position(fits))
            .or(if c.modes.is_empty() { None } else { Some(0) })?;
        Some((ci, mode))
    })
}

/// Where we would show the screen: compared between scans to notice a change of display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsTarget {
    card: usize,
    connector: connector::Handle,
    name: String,
    mode: Mode,
}

impl fmt::Display for KmsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.mode.size();
        write!(f, "{} {}x{}@{}", self.name, w, h, self.mode.vrefresh())
    }
}

pub(super) struct Card(File);

impl AsFd for Card {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl drm::Device for Card {}
impl drm::control::Device for Card {}

/// What we created to show frames; destroyed on release. Two buffers: `front` is scanned out,
/// the other is drawn into and flipped to on vblank.
struct Lit {
    card: usize,
    crtc: crtc::Handle,
    buffers: Vec<(DumbBuffer, framebuffer::Handle)>,
    front: usize,
    /// A flip was asked for and its event not read yet.
    flip_pending: bool,
    /// The driver refused a page flip (or a second buffer): frames are copied into the front.
    copy_only: bool,
    /// The plane for one picture, or why there is none.
    video: Result<VideoPlane, NoVideoPlane>,
    /// ARGB8888 framebuffers over the two buffers, for the overlay over the video plane.
    argb: Vec<Option<framebuffer::Handle>>,
    /// What the primary carries while the video plane shows: the layout it was drawn for.
    overlay: Option<LayoutKey>,
    /// Where the overlay is drawn before it is copied to a buffer.
    overlay_frame: Option<MemoryFramebuffer>,
}

/// The KMS side of the screen.
pub struct Kms {
    dir: PathBuf,
    cards: Vec<Card>,
    lit: Option<Lit>,
}

impl Kms {
    /// Looks for cards in `dir` (normally `/dev/dri`); opens nothing yet.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Kms {
            dir: dir.into(),
            cards: Vec::new(),
            lit: None,
        }
    }

    /// The connected display to use, or `None`; `NoDevice` when there is no KMS card.
    pub fn scan(&mut self) -> Result<Option<KmsTarget>, DisplayError> {
        if self.cards.is_empty() {
            self.cards = open_cards(&self.dir);
        }
        if self.cards.is_empty() {
            return Err(DisplayError::NoDevice);
        }
        for (ci, card) in self.cards.iter().enumerate() {
            let res = match card.resource_handles() {
                Ok(res) => res,
                Err(e) => {
                    // The card went away (a driver unbound, a USB display pulled): what we
                    // opened is dead for good, so the next scan opens what is there then.
                    self.release();
                    self.cards.clear();
                    return Err(DisplayError::drm("resources")(e));
                }
            };
            let infos: Vec<connector::Info> = res
                .connectors()
                .iter()
                .filter_map(|&h| card.get_connector(h, false).ok())
                .collect();
            let pure: Vec<ConnectorInfo> = infos.iter().map(connector_info).collect();
            if let Some((i, m)) = choose_output(&pure) {
                let info = &infos[i];
                return Ok(Some(KmsTarget {
                    card: ci,
                    connector: info.handle(),
                    name: format!("{}", info),
                    mode: info.modes()[m],
                }));
            }
        }
        Ok(None)
    }

    /// Takes DRM master, sets the mode with a fresh dumb buffer; returns its size.
    pub fn light(&mut self, t: &KmsTarget) -> Result<(u32, u32), DisplayError> {
        self.release();
        let card = &self.cards[t.card];
        card.acquire_master_lock().map_err(|_| DisplayError::Busy)?;
        let result = set_mode(card, t);
        match result {
            Ok(mut lit) => {
                lit.video = VideoPlane::find(card, lit.crtc);
                match &lit.video {
                    Ok(_) => tracing::info!(
                        "display: a video plane (YUV420, scaled by the display) shows a lone \
                         picture; grids are composed by the CPU"
                    ),
                    Err(why) => tracing::info!(
                        "display: no video plane ({why}): the call is composed by the CPU"
                    ),
                }
                let size = lit.db_size();
                self.lit = Some(lit);
                Ok(size)
            }
            Err(e) => {
                let _ = card.release_master_lock();
                Err(e)
            }
        }
    }

    /// Shows a frame: drawn into the back buffer and flipped to on the next vblank (after the
    /// previous flip completed), or copied into the front one where flips are refused.
    pub fn present(&mut self, frame: &MemoryFramebuffer) -> Result<(), DisplayError> {
        let Some(lit) = self.lit.as_mut() else {
            return Ok(());
        };
        let card = &self.cards[lit.card];
        if lit.copy_only {
            return copy_into(card, &mut lit.buffers[lit.front], frame);
        }
        if std::mem::take(&mut lit.flip_pending) && !wait_for_flip(card, FLIP_WAIT)? {
            tracing::debug!("no page flip event within {FLIP_WAIT:?}");
        }
        let back = 1 - lit.front;
        let buffer = &mut lit.buffers[back];
        copy_into(card, buffer, frame)?;
        lit.overlay = None;
        if let Some(video) = lit.video.as_mut().ok().filter(|v| v.active) {
            // Off the video plane: the picture and the primary change in one commit.
            video.hide(card, buffer.1)?;
            lit.front = back;
            lit.flip_pending = true;
            return Ok(());
        }
        match card.page_flip(lit.crtc, buffer.1, PageFlipFlags::EVENT, None) {
            Ok(()) => {
                lit.front = back;
                lit.flip_pending = true;
            }
            // The last flip has not completed (its event came late): this frame is skipped,
            // the next goes.
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {}
            Err(e) => {
                tracing::warn!(
                    "the display driver refused a page flip ({e}): copying frames into the \
                     buffer it shows, which may tear"
                );
                lit.copy_only = true;
                copy_into(card, &mut lit.buffers[lit.front], frame)?;
            }
        }
        Ok(())
    }

    /// Shows the call with its one picture on the video plane; false (nothing done) when
    /// there is no video plane, or the call is a grid: [`Kms::present`] shows it composed.
    /// A driver that refuses the plane is not asked again until the display is lit anew.
    pub fn present_call(&mut self, call: &CallPicture) -> Result<bool, DisplayError> {
        let Some(lit) = self.lit.as_mut() else {
            return Ok(false);
        };
        let (w, h) = lit.db_size();
        let Ok(video) = lit.video.as_mut() else {
            return Ok(false);
        };
        if lit.copy_only {
            return Ok(false);
        }
        let Some((frame, at)) = call.lone_picture(w, h) else {
            return Ok(false);
        };
        // YUV420 halves the chroma both ways: odd sizes are left to the CPU.
        if frame.width % 2 == 1 || frame.height % 2 == 1 {
            return Ok(false);
        }
        let card = &self.cards[lit.card];
        if std::mem::take(&mut lit.flip_pending) && !wait_for_flip(card, FLIP_WAIT)? {
            tracing::debug!("no page flip event within {FLIP_WAIT:?}");
        }
        let key = call.layout_key();
        let mut primary = None;
        if lit.overlay.as_ref() != Some(&key) {
            let overlay = lit
                .overlay_frame
                .get_or_insert_with(|| MemoryFramebuffer::new(w, h));
            call.draw_overlay(overlay);
            let back = 1 - lit.front;
            copy_into(card, &mut lit.buffers[back], overlay)?;
            if lit.argb[back].is_none() {
                let db = &lit.buffers[back].0;
                let fb = card
                    .add_framebuffer(db, 32, 32)
                    .map_err(DisplayError::drm("add an ARGB framebuffer"))?;
                lit.argb[back] = Some(fb);
            }
            primary = lit.argb[back];
        }
        match video.show(card, frame, at, primary) {
            Ok(()) => {
                if primary.is_some() {
                    lit.front = 1 - lit.front;
                }
                lit.overlay = Some(key);
                lit.flip_pending = true;
                Ok(true)
            }
            Err(e) => {
                tracing::warn!("display: {e}; the call is composed by the CPU from now on");
                video.destroy(card);
                lit.video = Err(NoVideoPlane::Refused(e.to_string()));
                lit.overlay = None;
                Ok(false)
            }
        }
    }

    /// Why the call is composed by the CPU on the lit display (`None`: it has a video plane,
    /// or nothing is lit).
    #[cfg_attr(not(test), allow(dead_code))] // read by the VM tests
    pub fn no_video_plane(&self) -> Option<&NoVideoPlane> {
        self.lit.as_ref().and_then(|l| l.video.as_ref().err())
    }

    /// Removes our framebuffer (the kernel turns off a CRTC still showing it) and drops master.
    pub fn release(&mut self) {
        if let Some(mut lit) = self.lit.take() {
            let card = &self.cards[lit.card];
            if lit.flip_pending {
                // Its event would otherwise wait in the file for the next owner of the mode.
                let _ = wait_for_flip(card, FLIP_WAIT);
            }
            if let Ok(video) = lit.video.as_mut() {
                video.destroy(card);
            }
            for fb in lit.argb.iter().flatten() {
                let _ = card.destroy_framebuffer(*fb);
            }
            for (db, fb) in lit.buffers {
                let _ = card.destroy_framebuffer(fb);
                let _ = card.destroy_dumb_buffer(db);
            }
            let _ = card.release_master_lock();
        }
    }
}

#[cfg(test)]
impl Kms {
    /// The pixel at (x, y) of the framebuffer the CRTC scans out now, if it is one of ours
    /// (after the pending flip, if any, completed); and whether frames are flipped.
    pub(crate) fn scanned_out_pixel(&mut self, x: usize, y: usize) -> Option<(u32, bool)> {
        let lit = self.lit.as_mut()?;
        let card = &self.cards[lit.card];
        if std::mem::take(&mut lit.flip_pending) {
            wait_for_flip(card, Duration::from_secs(1)).ok()?;
        }
        let shown = card.get_crtc(lit.crtc).ok()?.framebuffer()?;
        let (db, _) = lit.buffers.iter_mut().find(|(_, fb)| *fb == shown)?;
        let pitch = drm::buffer::Buffer::pitch(db) as usize;
        let map = card.map_dumb_buffer(db).ok()?;
        let at = y * pitch + x * 4;
        let px = u32::from_le_bytes(map[at..at + 4].try_into().ok()?);
        Some((px, !lit.copy_only))
    }
}

impl Drop for Kms {
    fn drop(&mut self) {
        self.release();
    }
}

impl Lit {
    fn db_size(&self) -> (u32, u32) {
        drm::buffer::Buffer::size(&self.buffers[0].0)
    }
}

/// Copies `frame` into a dumb buffer and tells drivers that upload on demand (USB, virtual)
/// which part changed; others answer that with an error we can ignore.
fn copy_into(
    card: &Card,
    (db, fb): &mut (DumbBuffer, framebuffer::Handle),
    frame: &MemoryFramebuffer,
) -> Result<(), DisplayError> {
    let pitch = drm::buffer::Buffer::pitch(db) as usize;
    let mut map = card.map_dumb_buffer(db).map_err(DisplayError::drm("map"))?;
    frame.copy_to(map.as_mut(), pitch);
    drop(map);
    let (w, h) = (frame.width() as u16, frame.height() as u16);
    let _ = card.dirty_framebuffer(*fb, &[ClipRect::new(0, 0, w, h)]);
    Ok(())
}

/// Reads the card's events until a page flip completes; false if none did within `timeout`.
fn wait_for_flip(card: &Card, timeout: Duration) -> Result<bool, DisplayError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(card.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(ms))
            .map_err(|e| DisplayError::drm("wait for a page flip")(e.into()))?;
        if ready == 0 {
            return Ok(false);
        }
        let events = card
            .receive_events()
            .map_err(DisplayError::drm("read events"))?;
        if events.into_iter().any(|e| matches!(e, Event::PageFlip(_))) {
            return Ok(true);
        }
    }
}

/// Every `card*` in `dir` that answers KMS resource queries with at least one connector
/// (a render-only GPU such as the Pi 5's v3d has none).
fn open_cards(dir: &Path) -> Vec<Card> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("card"))
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| OpenOptions::new().read(true).write(true).open(p).ok())
        .map(Card)
        .filter(|c| {
            c.resource_handles()
                .is_ok_and(|r| !r.connectors().is_empty())
        })
        // The first opener may become master implicitly; give it back until we show.
        .inspect(|c| {
            let _ = c.release_master_lock();
        })
        .collect()
}

fn connector_info(info: &connector::Info) -> ConnectorInfo {
    ConnectorInfo {
        connected: info.state() == connector::State::Connected,
        modes: info
            .modes()
            .iter()
            .map(|m| ModeInfo {
                width: m.size().0,
                height: m.size().1,
                preferred: m.mode_type().contains(ModeTypeFlags::PREFERRED),
            })
            .collect(),
    }
}

fn set_mode(card: &Card, t: &KmsTarget) -> Result<Lit, DisplayError> {
    let crtc = find_crtc(card, t.connector)?;
    let (w, h) = t.mode.size();
    let first = scanout_buffer(card, w, h)?;
    let set = card.set_crtc(crtc, Some(first.1), (0, 0), &[t.connector], Some(t.mode));
    if let Err(e) = set {
        let _ = card.destroy_framebuffer(first.1);
        let _ = card.destroy_dumb_buffer(first.0);
        return Err(DisplayError::drm("set crtc")(e));
    }
    let mut buffers = vec![first];
    // The second buffer to draw into while the first is shown; without one (out of video
    // memory), frames are copied into the first.
    match scanout_buffer(card, w, h) {
        Ok(second) => buffers.push(second),
        Err(e) => tracing::warn!("a second display buffer: {e}; frames may tear"),
    }
    Ok(Lit {
        card: t.card,
        crtc,
        copy_only: buffers.len() < 2,
        argb: vec![None; buffers.len()],
        buffers,
        front: 0,
        flip_pending: false,
        video: Err(NoVideoPlane::NoAtomic),
        overlay: None,
        overlay_frame: None,
    })
}

/// A black XRGB8888 dumb buffer of the mode's size with its framebuffer.
fn scanout_buffer(
    card: &Card,
    w: u16,
    h: u16,
) -> Result<(DumbBuffer, framebuffer::Handle), DisplayError> {
    let mut db = card
        .create_dumb_buffer((w.into(), h.into()), DrmFourcc::Xrgb8888, 32)
        .map_err(DisplayError::drm("create dumb buffer"))?;
    if let Ok(mut map) = card.map_dumb_buffer(&mut db) {
        map.as_mut().fill(0);
    }
    match card.add_framebuffer(&db, 24, 32) {
        Ok(fb) => Ok((db, fb)),
        Err(e) => {
            let _ = card.destroy_dumb_buffer(db);
            Err(DisplayError::drm("add framebuffer")(e))
        }
    }
}

/// The CRTC already driving the connector, else the first one its encoders can use.
fn find_crtc(card: &Card, con: connector::Handle) -> Result<crtc::Handle, DisplayError> {
    let info = card
        .get_connector(con, false)
        .map_err(DisplayError::drm("connector"))?;
    let current = info
        .current_encoder()
        .and_then(|e| card.get_encoder(e).ok())
        .and_then(|e| e.crtc());
    if let Some(c) = current {
        return Ok(c);
    }
    let res = card
        .resource_handles()
        .map_err(DisplayError::drm("resources"))?;
    info.encoders()
        .iter()
        .filter_map(|&e| card.get_encoder(e).ok())
        .flat_map(|e| res.filter_crtcs(e.possible_crtcs()))
        .next()
        .ok_or(DisplayError::Drm {
            op: "find crtc",
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(width: u16, height: u16, preferred: bool) -> ModeInfo {
        ModeInfo {
            width,
            height,
            preferred,
        }
    }

    fn con(connected: bool, modes: Vec<ModeInfo>) -> ConnectorInfo {
        ConnectorInfo { connected, modes }
    }

    #[test]
    fn first_connected_connector_in_its_preferred_mode() {
        let cons = [
            con(false, vec![mode(1920, 1080, true)]),
            con(true, vec![mode(1920, 1080, false), mode(1280, 720, true)]),
            con(true, vec![mode(800, 480, true)]),
        ];
        assert_eq!(choose_output(&cons), Some((1, 1)));
    }

    #[test]
    fn nothing_connected_means_nothing_chosen() {
        assert_eq!(choose_output(&[]), None);
        let cons = [con(false, vec![mode(1280, 720, true)]), con(true, vec![])];
        assert_eq!(choose_output(&cons), None);
    }

    #[test]
    fn a_4k_preference_falls_back_to_1080p() {
        let cons = [con(
            true,
            vec![
                mode(3840, 2160, true),
                mode(1920, 1080, false),
                mode(1280, 720, false),
            ],
        )];
        assert_eq!(choose_output(&cons), Some((0, 1)));
        // Without a preferred mode, the kernel's first (best) one that fits.
        let cons = [con(
            true,
            vec![mode(1280, 720, false), mode(800, 600, false)],
        )];
        assert_eq!(choose_output(&cons), Some((0, 0)));
        // Only too-tall modes: still show something.
        let cons = [con(true, vec![mode(3840, 2160, false)])];
        assert_eq!(choose_output(&cons), Some((0, 0)));
    }

    /// Against a real KMS device, e.g. `vkms` in a VM:
    /// `ROOMBOX_DRM_DIR=/dev/dri cargo test -- --ignored kms_on_a_real_card`.
    #[test]
    #[ignore = "needs a DRM device with a connected connector"]
    fn kms_on_a_real_card() {
        let dir = std::env::var("ROOMBOX_DRM_DIR").unwrap_or_else(|_| "/dev/dri".into());
        let mut kms = Kms::new(dir);
        let target = kms
            .scan()
            .expect("a KMS card")
            .expect("a connected display");
        let (w, h) = kms.light(&target).expect("mode set");
        let mut frame = MemoryFramebuffer::new(w, h);
        let model = crate::display::render_tests::sample(3);
        let Ok(_) = crate::display::render::render(&model, &mut frame);
        kms.present(&frame).expect("present");

        // The frame is what the CRTC scans out, flipped to (bochs takes page flips).
        let at = |f: &MemoryFramebuffer, x: u32, y: u32| {
            let i = y as usize * f.stride() + x as usize * 4;
            u32::from_le_bytes(f.data()[i..i + 4].try_into().unwrap()) & 0xff_ffff
        };
        let points = [(0, 0), (w / 2, h / 2), (w - 1, h - 1), (w / 3, h / 5)];
        for &(x, y) in &points {
            let (px, flipped) = kms.scanned_out_pixel(x as usize, y as usize).expect("ours");
            assert!(flipped, "page flips refused");
            assert_eq!(px & 0xff_ffff, at(&frame, x, y), "({x}, {y})");
        }
        // A second, different frame: the other buffer is flipped to.
        let mut second = MemoryFramebuffer::new(w, h);
        let Ok(_) =
            crate::display::render::render(&crate::display::render_tests::sample(1), &mut second);
        kms.present(&second).expect("present again");
        for &(x, y) in &points {
            let (px, _) = kms.scanned_out_pixel(x as usize, y as usize).expect("ours");
            assert_eq!(
                px & 0xff_ffff,
                at(&second, x, y),
                "({x}, {y}) after the flip"
            );
        }
        eprintln!("kms: showed {target} ({w}x{h}), flipped between two buffers");
        // The plane search ran against the driver's real planes: bochs-drm has a primary
        // plane and nothing else, so the call is composed by the CPU there.
        let why = kms.no_video_plane().cloned();
        eprintln!("kms: video plane: {why:?}");
        if let Ok(expected) = std::env::var("ROOMBOX_EXPECT_NO_VIDEO_PLANE") {
            assert_eq!(why.map(|w| w.to_string()), Some(expected));
        }
        // Time for a screenshot of the virtual display (qemu `screendump`).
        if let Some(secs) = std::env::var("ROOMBOX_DRM_HOLD")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            std::thread::sleep(std::time::Duration::from_secs(secs));
        }
        kms.release();
        assert!(kms.lit.is_none());
        assert_eq!(
            kms.scan().expect("rescan"),
            Some(target),
            "still there after release"
        );
    }

    #[test]
    fn no_device_is_an_error_value() {
        let dir = std::env::temp_dir().join(format!("roombox-dri-{}", std::process::id()));
        let mut kms = Kms::new(dir.join("missing"));
        assert!(matches!(kms.scan(), Err(DisplayError::NoDevice)));
        // A `card0` that is not a DRM node (ioctls fail) is skipped, not a panic.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("card0"), b"not a device").unwrap();
        let mut kms = Kms::new(&dir);
        assert!(matches!(kms.scan(), Err(DisplayError::NoDevice)));
        kms.present(&MemoryFramebuffer::new(4, 4)).unwrap();
        kms.release();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
