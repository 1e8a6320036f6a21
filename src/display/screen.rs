//! The status screen's loop: rescan outputs, light a newly connected display, redraw when the
//! model changed, let go when the display is unplugged.
//!
//! [`Screen`] is the logic over a [`Backend`] (KMS in the product, a fake in tests); each
//! [`Screen::tick`] makes one pass. [`StatusScreen::start`] runs ticks on a thread: on every
//! model change, and every [`RESCAN`] so a display plugged in or out later is noticed.

use super::drm::Kms;
use super::framebuffer::MemoryFramebuffer;
use super::model::StatusModel;
use super::render::render;
use super::DisplayError;
use crate::remote_video::CallPicture;
use std::fmt::Display;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often connectors are re-read when nothing else happens.
pub const RESCAN: Duration = Duration::from_secs(2);
/// At most this many redraws a second: bitrate updates must not keep a Pi busy copying frames.
const MIN_REDRAW_GAP: Duration = Duration::from_millis(250);

/// An output the screen can show frames on.
pub trait Backend {
    type Target: Clone + PartialEq + Display;
    /// The display to use now; `Ok(None)` when none is connected.
    fn scan(&mut self) -> Result<Option<Self::Target>, DisplayError>;
    /// Sets the mode; returns the frame size.
    fn light(&mut self, target: &Self::Target) -> Result<(u32, u32), DisplayError>;
    fn present(&mut self, frame: &MemoryFramebuffer) -> Result<(), DisplayError>;
    /// Shows the call without composing it on the CPU (a video plane), where the output can;
    /// false when it cannot, and the screen composes it and presents that.
    fn present_call(&mut self, _call: &CallPicture) -> Result<bool, DisplayError> {
        Ok(false)
    }
    /// Stops showing and gives the display back.
    fn release(&mut self);
}

impl Backend for Kms {
    type Target = super::drm::KmsTarget;
    fn scan(&mut self) -> Result<Option<Self::Target>, DisplayError> {
        Kms::scan(self)
    }
    fn light(&mut self, target: &Self::Target) -> Result<(u32, u32), DisplayError> {
        Kms::light(self, target)
    }
    fn present(&mut self, frame: &MemoryFramebuffer) -> Result<(), DisplayError> {
        Kms::present(self, frame)
    }
    fn present_call(&mut self, call: &CallPicture) -> Result<bool, DisplayError> {
        Kms::present_call(self, call)
    }
    fn release(&mut self) {
        Kms::release(self);
    }
}

/// What the screen is doing, as logged (once per change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Showing(String),
    NoDisplay,
    Failed(String),
}

pub struct Screen<B: Backend> {
    backend: B,
    lit: Option<(B::Target, MemoryFramebuffer)>,
    drawn: Option<Drawn>,
    status: Option<Status>,
    /// When the outputs were last read: a call's pictures come 30 times a second, and reading
    /// the connectors for each would cost the Pi more than the hotplug it notices.
    scanned_at: Option<Instant>,
}

/// What is on the display: the status, or a picture of the call.
#[derive(Clone, Debug, PartialEq)]
enum Drawn {
    Status(Box<StatusModel>),
    Call(u64),
}

impl<B: Backend> Screen<B> {
    pub fn new(backend: B) -> Self {
        Screen {
            backend,
            lit: None,
            drawn: None,
            status: None,
            scanned_at: None,
        }
    }

    /// One pass; returns true when a frame was presented. The call's picture when somebody
    /// sends video, else the status.
    pub fn tick(&mut self, model: &StatusModel, call: &CallPicture) -> bool {
        let (status, presented) = match self.step(model, call) {
            Ok(Some((name, presented))) => (Status::Showing(name), presented),
            Ok(None) => (Status::NoDisplay, false),
            Err(e) => {
                self.release();
                (Status::Failed(e.to_string()), false)
            }
        };
        self.note(status);
        presented
    }

    #[cfg_attr(not(test), allow(dead_code))] // read by tests
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// A display is lit (showing the status or the call).
    pub fn is_lit(&self) -> bool {
        self.lit.is_some()
    }

    pub fn release(&mut self) {
        if self.lit.take().is_some() {
            self.backend.release();
        }
        self.drawn = None;
    }

    fn step(
        &mut self,
        model: &StatusModel,
        call: &CallPicture,
    ) -> Result<Option<(String, bool)>, DisplayError> {
        let now = Instant::now();
        let lit_recently = self.lit.is_some()
            && self
                .scanned_at
                .is_some_and(|t| now.duration_since(t) < RESCAN);
        let target = match &self.lit {
            Some((t, _)) if !call.is_empty() && lit_recently => t.clone(),
            _ => {
                self.scanned_at = Some(now);
                let Some(target) = self.backend.scan()? else {
                    self.release();
                    return Ok(None);
                };
                target
            }
        };
        if self.lit.as_ref().map(|(t, _)| t) != Some(&target) {
            self.release();
            let (w, h) = self.backend.light(&target)?;
            self.lit = Some((target.clone(), MemoryFramebuffer::new(w, h)));
        }
        let (_, frame) = self.lit.as_mut().expect("lit just above");
        let wanted = if call.is_empty() {
            Drawn::Status(Box::new(model.clone()))
        } else {
            Drawn::Call(call.generation)
        };
        let stale = self.drawn.as_ref() != Some(&wanted);
        if stale {
            match &wanted {
                Drawn::Status(model) => {
                    let Ok(_) = render(model, frame);
                    self.backend.present(frame)?;
                }
                Drawn::Call(_) => {
                    if !self.backend.present_call(call)? {
                        call.draw(frame);
                        self.backend.present(frame)?;
                    }
                }
            }
            self.drawn = Some(wanted);
        }
        Ok(Some((target.to_string(), stale)))
    }

    fn note(&mut self, status: Status) {
        if self.status.as_ref() == Some(&status) {
            return;
        }
        match &status {
            Status::Showing(t) => tracing::info!("status screen on {t}"),
            Status::NoDisplay => tracing::info!("status screen: no display connected"),
            Status::Failed(e) => tracing::warn!("status screen: {e}"),
        }
        self.status = Some(status);
    }
}

/// The status screen on the HDMI output, on its own thread.
pub struct StatusScreen;

impl StatusScreen {
    /// Shows the call's picture from `call_rx` while somebody sends video, else the latest
    /// model from `model_rx`, on the first connected display; `lit_tx` says whether one is
    /// lit (the call view asks for less video when nobody can see it). The thread ends when
    /// every sender of the model is dropped, giving the display back to the console.
    pub fn start(
        model_rx: watch::Receiver<StatusModel>,
        call_rx: watch::Receiver<CallPicture>,
        lit_tx: watch::Sender<bool>,
    ) -> JoinHandle<()> {
        Self::start_with(model_rx, call_rx, lit_tx, Kms::new("/dev/dri"))
    }

    pub fn start_with<B>(
        mut model_rx: watch::Receiver<StatusModel>,
        mut call_rx: watch::Receiver<CallPicture>,
        lit_tx: watch::Sender<bool>,
        backend: B,
    ) -> JoinHandle<()>
    where
        B: Backend + Send + 'static,
    {
        std::thread::Builder::new()
            .name("status-screen".into())
            .spawn(move || {
                // A tiny runtime only to wait on the watch channels with a timeout.
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return tracing::warn!("status screen not started: {e}"),
                };
                let mut screen = Screen::new(backend);
                let mut call_open = true;
                loop {
                    let model = model_rx.borrow_and_update().clone();
                    let call = call_rx.borrow_and_update().clone();
                    // The status redraws at most every MIN_REDRAW_GAP; the call's pictures as
                    // they come (the call view paces them by the frames people send).
                    let presented = screen.tick(&model, &call);
                    let lit = screen.is_lit();
                    lit_tx.send_if_modified(|l| std::mem::replace(l, lit) != lit);
                    if presented && call.is_empty() {
                        std::thread::sleep(MIN_REDRAW_GAP);
                    }
                    let waited = rt.block_on(async {
                        tokio::time::timeout(RESCAN, async {
                            tokio::select! {
                                r = model_rx.changed() => r.is_ok(),
                                r = call_rx.changed(), if call_open => {
                                    call_open = r.is_ok();
                                    true
                                }
                            }
                        })
                        .await
                    });
                    if waited == Ok(false) {
                        break; // every sender of the model dropped: shutting down
                    }
                }
                screen.release();
            })
            .expect("spawning a thread fails only when the OS is out of resources")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A display that tests plug in and out; records what the screen did to it.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        device: bool,
        plugged: Option<&'static str>,
        lit: Option<&'static str>,
        lights: usize,
        presents: usize,
        releases: usize,
        scans: usize,
        /// The centre pixel of the last frame presented.
        centre: Option<embedded_graphics::pixelcolor::Rgb888>,
        /// The output shows a lone picture itself (a video plane).
        plane: bool,
        /// Call pictures it showed so.
        planed: usize,
    }

    impl Backend for Fake {
        type Target = &'static str;
        fn scan(&mut self) -> Result<Option<&'static str>, DisplayError> {
            let mut s = self.0.lock().unwrap();
            s.scans += 1;
            if !s.device {
                return Err(DisplayError::NoDevice);
            }
            Ok(s.plugged)
        }
        fn light(&mut self, t: &&'static str) -> Result<(u32, u32), DisplayError> {
            let mut s = self.0.lock().unwrap();
            s.lit = Some(t);
            s.lights += 1;
            Ok((320, 240))
        }
        fn present(&mut self, frame: &MemoryFramebuffer) -> Result<(), DisplayError> {
            assert_eq!((frame.width(), frame.height()), (320, 240));
            let mut s = self.0.lock().unwrap();
            s.presents += 1;
            s.centre = Some(frame.pixel(160, 120));
            Ok(())
        }
        fn present_call(&mut self, call: &CallPicture) -> Result<bool, DisplayError> {
            let mut s = self.0.lock().unwrap();
            let shown = s.plane && call.shown.len() == 1;
            s.planed += usize::from(shown);
            Ok(shown)
        }
        fn release(&mut self) {
            let mut s = self.0.lock().unwrap();
            s.lit = None;
            s.releases += 1;
        }
    }

    fn model(room: &str) -> StatusModel {
        StatusModel {
            room: room.into(),
            ..Default::default()
        }
    }

    #[test]
    fn no_device_touches_nothing() {
        let fake = Fake::default();
        let mut screen = Screen::new(fake.clone());
        assert!(!screen.tick(&model("a"), &CallPicture::default()));
        assert!(matches!(screen.status(), Some(Status::Failed(_))));
        let s = fake.0.lock().unwrap();
        assert_eq!((s.lights, s.presents, s.releases), (0, 0, 0));
    }

    #[test]
    fn no_display_sets_no_mode() {
        let fake = Fake::default();
        fake.0.lock().unwrap().device = true;
        let mut screen = Screen::new(fake.clone());
        assert!(!screen.tick(&model("a"), &CallPicture::default()));
        assert_eq!(screen.status(), Some(&Status::NoDisplay));
        assert_eq!(fake.0.lock().unwrap().lights, 0);
    }

    #[test]
    fn redraws_only_on_change_and_follows_hotplug() {
        let fake = Fake::default();
        fake.0.lock().unwrap().device = true;
        let mut screen = Screen::new(fake.clone());
        assert!(!screen.tick(&model("a"), &CallPicture::default()));

        fake.0.lock().unwrap().plugged = Some("HDMI-A-1");
        assert!(
            screen.tick(&model("a"), &CallPicture::default()),
            "plugged in: first frame"
        );
        assert!(
            !screen.tick(&model("a"), &CallPicture::default()),
            "same model: no redraw"
        );
        assert!(
            screen.tick(&model("b"), &CallPicture::default()),
            "new model: redraw"
        );
        assert_eq!(screen.status(), Some(&Status::Showing("HDMI-A-1".into())));

        fake.0.lock().unwrap().plugged = None;
        assert!(!screen.tick(&model("b"), &CallPicture::default()));
        assert_eq!(fake.0.lock().unwrap().lit, None, "unplugged: released");

        fake.0.lock().unwrap().plugged = Some("HDMI-A-2");
        assert!(
            screen.tick(&model("b"), &CallPicture::default()),
            "replugged: redrawn although the model is the same"
        );
        let s = fake.0.lock().unwrap();
        assert_eq!(s.lit, Some("HDMI-A-2"));
        assert_eq!((s.lights, s.presents, s.releases), (2, 3, 1));
    }

    #[test]
    fn thread_ends_when_the_sender_goes() {
        let fake = Fake::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.device = true;
            s.plugged = Some("HDMI-A-1");
        }
        let (tx, rx) = watch::channel(model("a"));
        let (_call_tx, call_rx) = watch::channel(CallPicture::default());
        let (lit_tx, mut lit_rx) = watch::channel(false);
        let handle = StatusScreen::start_with(rx, call_rx, lit_tx, fake.clone());
        // The call view learns that a display shows things.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let lit = rt.block_on(async {
            let wait = tokio::time::timeout(Duration::from_secs(5), lit_rx.wait_for(|l| *l));
            matches!(wait.await, Ok(Ok(_)))
        });
        assert!(lit, "lit is told");
        tx.send_replace(model("b"));
        drop(tx);
        handle.join().unwrap();
        let s = fake.0.lock().unwrap();
        assert!(s.presents >= 1);
        assert_eq!(s.lit, None, "display given back on exit");
    }

    /// A call picture of one screen share, all green, at `generation`.
    fn green_share(generation: u64) -> CallPicture {
        use crate::media::frame::{i420_len, VideoFrame};
        use crate::remote_video::{Shown, VideoKind};
        let (w, h) = (64u32, 48u32);
        let mut data = vec![0u8; i420_len(w, h)];
        let luma = (w * h) as usize;
        data[..luma].fill(145); // BT.601 green: Y 145, U 54, V 34
        let c = (luma - luma / 2) / 2;
        data[luma..luma + c].fill(54);
        data[luma + c..].fill(34);
        CallPicture {
            generation,
            shown: vec![Shown {
                name: "Ada".into(),
                kind: VideoKind::Screen,
                speaking: false,
                frame: Arc::new(VideoFrame {
                    width: w,
                    height: h,
                    data,
                    captured_at: std::time::Instant::now(),
                    pts: std::time::Duration::ZERO,
                }),
            }],
        }
    }

    #[test]
    fn a_call_picture_replaces_the_status_while_somebody_sends_video() {
        use embedded_graphics::prelude::RgbColor;
        let fake = Fake::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.device = true;
            s.plugged = Some("HDMI-A-1");
        }
        let mut screen = Screen::new(fake.clone());
        let none = CallPicture::default();
        assert!(screen.tick(&model("a"), &none), "the status first");
        let status_centre = fake.0.lock().unwrap().centre.unwrap();

        assert!(
            screen.tick(&model("a"), &green_share(1)),
            "a share: its picture"
        );
        let c = fake.0.lock().unwrap().centre.unwrap();
        assert!(c.g() > 200 && c.r() < 40 && c.b() < 40, "{c:?}");
        assert!(
            !screen.tick(&model("b"), &green_share(1)),
            "the status changing does not show"
        );
        assert!(
            screen.tick(&model("b"), &green_share(2)),
            "a new picture is presented"
        );

        assert!(
            screen.tick(&model("b"), &none),
            "the share ended: the status again"
        );
        assert_eq!(fake.0.lock().unwrap().centre, Some(status_centre));
        assert_eq!(fake.0.lock().unwrap().presents, 4);
    }

    #[test]
    fn an_output_that_shows_the_call_itself_is_not_given_a_composed_frame() {
        let fake = Fake::default();
        {
            let mut s = fake.0.lock().unwrap();
            (s.device, s.plugged, s.plane) = (true, Some("HDMI-A-1"), true);
        }
        let mut screen = Screen::new(fake.clone());
        let none = CallPicture::default();
        assert!(screen.tick(&model("a"), &none));
        assert!(screen.tick(&model("a"), &green_share(1)));
        assert!(screen.tick(&model("a"), &green_share(2)));
        {
            let s = fake.0.lock().unwrap();
            assert_eq!(
                (s.planed, s.presents),
                (2, 1),
                "the status only was composed"
            );
        }
        // Two pictures: the output declines, the screen composes the grid.
        let mut two = green_share(3);
        two.shown.push(two.shown[0].clone());
        assert!(screen.tick(&model("a"), &two));
        assert!(screen.tick(&model("a"), &none));
        let s = fake.0.lock().unwrap();
        assert_eq!((s.planed, s.presents), (2, 3));
    }

    /// The connector's sysfs `status` of the display that is connected now (writing `off`
    /// unplugs it as far as DRM clients can tell, `detect` plugs it back).
    fn connected_status_file() -> std::path::PathBuf {
        let mut files: Vec<_> = std::fs::read_dir("/sys/class/drm")
            .expect("/sys/class/drm")
            .flatten()
            .map(|e| e.path().join("status"))
            .filter(|p| std::fs::read_to_string(p).is_ok_and(|s| s.trim() == "connected"))
            .collect();
        files.sort();
        files.into_iter().next().expect("a connected connector")
    }

    /// A screen share as it reaches the screen: the box's test pattern through openh264 and
    /// back.
    fn decoded_share() -> CallPicture {
        use crate::capture::testsrc::TestPattern;
        use crate::capture::VideoSource;
        use crate::encode::h264::H264Encoder;
        use crate::encode::openh264::{OpenH264Config, OpenH264Encoder};
        use crate::remote_video::{H264Decoder, Shown, VideoKind};
        let source = TestPattern::new(640, 360, 30)
            .unwrap()
            .unpaced()
            .next_frame()
            .unwrap();
        let mut enc = OpenH264Encoder::new(OpenH264Config::default()).unwrap();
        let au = enc.encode(&source, true).unwrap().unwrap();
        let frame = H264Decoder::new()
            .unwrap()
            .decode(&au.data)
            .unwrap()
            .unwrap();
        CallPicture {
            generation: 1,
            shown: vec![Shown {
                name: "Alice".into(),
                kind: VideoKind::Screen,
                speaking: false,
                frame: Arc::new(frame),
            }],
        }
    }

    /// What the CRTC scans out is the call as drawn in memory at the mode's size.
    fn assert_shows(screen: &mut Screen<Kms>, call: &CallPicture) {
        let (w, h) = {
            let (_, f) = screen.lit.as_ref().expect("lit");
            (f.width(), f.height())
        };
        let mut expect = MemoryFramebuffer::new(w, h);
        assert!(call.draw(&mut expect));
        for (x, y) in [(w / 2, h / 2), (w / 4, h / 3), (w - 2, 1), (10, h - 10)] {
            let i = y as usize * expect.stride() + x as usize * 4;
            let want = u32::from_le_bytes(expect.data()[i..i + 4].try_into().unwrap());
            let (got, flipped) = screen
                .backend
                .scanned_out_pixel(x as usize, y as usize)
                .expect("one of our buffers is scanned out");
            assert!(flipped, "page flips refused");
            assert_eq!(got & 0xff_ffff, want & 0xff_ffff, "({x}, {y})");
        }
    }

    /// The call on a real KMS device (qemu's bochs-drm in the test VM): a decoded H.264 share
    /// flipped onto the display, the display unplugged (its connector forced off through
    /// sysfs) and plugged back, the call shown again. Needs root:
    /// `ROOMBOX_DRM_DIR=/dev/dri roombox-<hash> --ignored kms_`.
    #[test]
    #[ignore = "needs a DRM device and root: run by tests/vm"]
    fn kms_shows_a_decoded_call_and_follows_the_display_out_and_back() {
        let dir = std::env::var("ROOMBOX_DRM_DIR").unwrap_or_else(|_| "/dev/dri".into());
        let status = connected_status_file();
        let call = decoded_share();
        let model = StatusModel::default();
        let mut screen = Screen::new(Kms::new(&dir));
        assert!(screen.tick(&model, &call), "the call presented");
        assert!(matches!(screen.status(), Some(Status::Showing(_))));
        assert_shows(&mut screen, &call);

        std::fs::write(&status, "off").expect("unplug through sysfs");
        let unplugged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Within RESCAN the call's pictures do not read the connectors; after it, they do.
            std::thread::sleep(RESCAN + Duration::from_millis(100));
            assert!(!screen.tick(&model, &call));
            assert_eq!(screen.status(), Some(&Status::NoDisplay));
        }));
        std::fs::write(&status, "detect").expect("plug back through sysfs");
        if let Err(e) = unplugged {
            std::panic::resume_unwind(e);
        }
        assert!(screen.tick(&model, &call), "shown again once plugged back");
        assert!(matches!(screen.status(), Some(Status::Showing(_))));
        assert_shows(&mut screen, &call);
        eprintln!("kms: {:?}, unplugged and back", screen.status());
        screen.release();
    }

    /// The display card itself goes and comes back (its driver unbound from the PCI device and
    /// bound again: the DRM device is unregistered, what we opened answers ENODEV, and a new
    /// `/dev/dri/card*` appears): the call is shown again on the new one. Needs root, in the
    /// test VM.
    #[test]
    #[ignore = "needs a DRM device and root: run by tests/vm"]
    fn kms_follows_the_card_away_and_back() {
        let dir = std::env::var("ROOMBOX_DRM_DIR").unwrap_or_else(|_| "/dev/dri".into());
        // /sys/class/drm/cardN-NAME/status: the connector's real directory sits in its card's.
        let status = connected_status_file();
        let connector = std::fs::canonicalize(status.parent().expect("a connector"))
            .expect("the connector's directory");
        let card = connector.parent().expect("its card").join("device");
        let pci = std::fs::canonicalize(&card).expect("the card's device");
        let address = pci.file_name().unwrap().to_owned();
        let driver = std::fs::canonicalize(pci.join("driver")).expect("its driver");
        let call = decoded_share();
        let model = StatusModel::default();
        let mut screen = Screen::new(Kms::new(&dir));
        assert!(screen.tick(&model, &call), "the call presented");
        assert_shows(&mut screen, &call);

        std::fs::write(driver.join("unbind"), address.as_encoded_bytes()).expect("unbind");
        let away = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::thread::sleep(RESCAN + Duration::from_millis(100));
            for _ in 0..2 {
                assert!(!screen.tick(&model, &call), "nothing shown without a card");
            }
            assert!(!matches!(screen.status(), Some(Status::Showing(_))));
            eprintln!("kms: card away: {:?}", screen.status());
        }));
        std::fs::write(driver.join("bind"), address.as_encoded_bytes()).expect("bind again");
        if let Err(e) = away {
            std::panic::resume_unwind(e);
        }
        // The new card's node and connector take a moment to appear.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !screen.tick(&model, &call) {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                screen.status()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(matches!(screen.status(), Some(Status::Showing(_))));
        assert_shows(&mut screen, &call);
        eprintln!("kms: card back: {:?}", screen.status());
        screen.release();
    }
}
