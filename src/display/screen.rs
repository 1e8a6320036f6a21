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
use std::fmt::Display;
use std::thread::JoinHandle;
use std::time::Duration;
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
    drawn: Option<StatusModel>,
    status: Option<Status>,
}

impl<B: Backend> Screen<B> {
    pub fn new(backend: B) -> Self {
        Screen {
            backend,
            lit: None,
            drawn: None,
            status: None,
        }
    }

    /// One pass; returns true when a frame was presented.
    pub fn tick(&mut self, model: &StatusModel) -> bool {
        let (status, presented) = match self.step(model) {
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

    pub fn release(&mut self) {
        if self.lit.take().is_some() {
            self.backend.release();
        }
        self.drawn = None;
    }

    fn step(&mut self, model: &StatusModel) -> Result<Option<(String, bool)>, DisplayError> {
        let Some(target) = self.backend.scan()? else {
            self.release();
            return Ok(None);
        };
        if self.lit.as_ref().map(|(t, _)| t) != Some(&target) {
            self.release();
            let (w, h) = self.backend.light(&target)?;
            self.lit = Some((target.clone(), MemoryFramebuffer::new(w, h)));
        }
        let (_, frame) = self.lit.as_mut().expect("lit just above");
        let stale = self.drawn.as_ref() != Some(model);
        if stale {
            let Ok(_) = render(model, frame);
            self.backend.present(frame)?;
            self.drawn = Some(model.clone());
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
    /// Shows the latest model from `model_rx` on the first connected display. The thread ends
    /// when every sender is dropped, giving the display back to the console.
    pub fn start(model_rx: watch::Receiver<StatusModel>) -> JoinHandle<()> {
        Self::start_with(model_rx, Kms::new("/dev/dri"))
    }

    pub fn start_with<B>(mut model_rx: watch::Receiver<StatusModel>, backend: B) -> JoinHandle<()>
    where
        B: Backend + Send + 'static,
    {
        std::thread::Builder::new()
            .name("status-screen".into())
            .spawn(move || {
                // A tiny runtime only to wait on the watch channel with a timeout.
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return tracing::warn!("status screen not started: {e}"),
                };
                let mut screen = Screen::new(backend);
                loop {
                    let model = model_rx.borrow_and_update().clone();
                    if screen.tick(&model) {
                        std::thread::sleep(MIN_REDRAW_GAP);
                    }
                    let changed = model_rx.changed();
                    let waited = rt.block_on(async { tokio::time::timeout(RESCAN, changed).await });
                    if let Ok(Err(_)) = waited {
                        break; // every sender dropped: shutting down
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
    }

    impl Backend for Fake {
        type Target = &'static str;
        fn scan(&mut self) -> Result<Option<&'static str>, DisplayError> {
            let s = self.0.lock().unwrap();
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
            self.0.lock().unwrap().presents += 1;
            Ok(())
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
        assert!(!screen.tick(&model("a")));
        assert!(matches!(screen.status(), Some(Status::Failed(_))));
        let s = fake.0.lock().unwrap();
        assert_eq!((s.lights, s.presents, s.releases), (0, 0, 0));
    }

    #[test]
    fn no_display_sets_no_mode() {
        let fake = Fake::default();
        fake.0.lock().unwrap().device = true;
        let mut screen = Screen::new(fake.clone());
        assert!(!screen.tick(&model("a")));
        assert_eq!(screen.status(), Some(&Status::NoDisplay));
        assert_eq!(fake.0.lock().unwrap().lights, 0);
    }

    #[test]
    fn redraws_only_on_change_and_follows_hotplug() {
        let fake = Fake::default();
        fake.0.lock().unwrap().device = true;
        let mut screen = Screen::new(fake.clone());
        assert!(!screen.tick(&model("a")));

        fake.0.lock().unwrap().plugged = Some("HDMI-A-1");
        assert!(screen.tick(&model("a")), "plugged in: first frame");
        assert!(!screen.tick(&model("a")), "same model: no redraw");
        assert!(screen.tick(&model("b")), "new model: redraw");
        assert_eq!(screen.status(), Some(&Status::Showing("HDMI-A-1".into())));

        fake.0.lock().unwrap().plugged = None;
        assert!(!screen.tick(&model("b")));
        assert_eq!(fake.0.lock().unwrap().lit, None, "unplugged: released");

        fake.0.lock().unwrap().plugged = Some("HDMI-A-2");
        assert!(
            screen.tick(&model("b")),
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
        let handle = StatusScreen::start_with(rx, fake.clone());
        tx.send_replace(model("b"));
        drop(tx);
        handle.join().unwrap();
        let s = fake.0.lock().unwrap();
        assert!(s.presents >= 1);
        assert_eq!(s.lit, None, "display given back on exit");
    }
}
