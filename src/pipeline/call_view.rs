//! What the room's display shows of the call: the video people send the box (cameras and
//! screen shares), decoded, with who speaks, or the status screen when nobody sends any. [`CallView`] is the state (frames in
//! with the time passed in, the [`CallPicture`] out); [`start`] is its thread, which publishes
//! each new picture to the HDMI-out screen and writes it to the display sink when there is one.

use crate::calls::{RemoteFrame, RemoteVideoPacket};
use crate::display::framebuffer::MemoryFramebuffer;
use crate::display::model::StatusModel;
use crate::display::render::render;
use crate::media::VideoFrame;
use crate::media::VideoKind;
use crate::remote_video::choose::{self, DecoderChoice};
use crate::remote_video::compose::tile_sizes;
use crate::remote_video::decode::VideoDecoder;
use crate::remote_video::y4m::Y4mSink;
use crate::remote_video::{CallPicture, Shown};
use roombox_protocol::ViewWish;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A sender whose last frame is older than this has stopped (a share ended, a tab froze): its
/// tile goes. Screen shares send at least a frame a second even when nothing moves.
const STALE_AFTER: Duration = Duration::from_millis(1500);
/// A peer whose voice was last heard this long ago has stopped speaking (pauses between words
/// do not make the outline flicker).
const SPEAKING_HOLD: Duration = Duration::from_millis(500);

/// What the display shows of each sender's video, by (peer, track): the call core tells each
/// sender, so nobody sends (and the box decodes) more than a tile needs.
pub type ViewWishes = BTreeMap<(String, String), ViewWish>;

/// The display the wishes are worked out for: the largest mode the HDMI-out sets (1080 lines).
const WISH_DISPLAY: (u32, u32) = (1920, 1080);
/// A video laid out but not shown (a camera beside a screen share): kept small and slow rather
/// than stopped, so its tile is back at once when the share ends.
const HIDDEN: ViewWish = ViewWish {
    width: 320,
    height: 180,
    fps: 5,
};
const SHOWN_FPS: u32 = 30;

/// Where the picture goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisplaySink {
    /// Every new picture appended to a y4m file (tests and diagnosis).
    Y4m {
        path: PathBuf,
        width: u32,
        height: u32,
    },
}

impl std::str::FromStr for DisplaySink {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("y4m", path)) if !path.is_empty() => Ok(DisplaySink::Y4m {
                path: path.into(),
                width: 1280,
                height: 720,
            }),
            _ => Err(format!("{s:?}: expected y4m:PATH")),
        }
    }
}

struct Sender {
    name: String,
    kind: VideoKind,
    decoder: Option<Box<dyn VideoDecoder>>,
    /// The chosen decoder did not open: this video is not shown (said once, not per frame).
    no_decoder: bool,
    frame: Option<Arc<VideoFrame>>,
    last_at: Instant,
}

/// The decoded video of everyone who sends the box some, by peer and track (a person may send
/// a camera and a screen).
#[derive(Default)]
pub struct CallView {
    /// The `decoder` setting, taken for each new video.
    pub decoder: DecoderChoice,
    senders: BTreeMap<(String, String), Sender>,
    /// When each peer's voice was last heard, and who speaks now.
    heard_at: HashMap<String, Instant>,
    speaking: HashMap<String, bool>,
    /// Something changed since the last picture.
    dirty: bool,
    generation: u64,
}

impl CallView {
    pub fn handle(&mut self, packet: RemoteVideoPacket) {
        match packet {
            RemoteVideoPacket::Frame(RemoteFrame {
                peer,
                name,
                track,
                kind,
                annex_b,
                at,
                ..
            }) => {
                let key = (peer.clone(), track);
                let s = self.senders.entry(key).or_insert_with(|| {
                    tracing::info!(%peer, %name, kind = kind.label(), "showing their video");
                    Sender {
                        name: name.clone(),
                        kind,
                        decoder: None,
                        no_decoder: false,
                        frame: None,
                        last_at: at,
                    }
                });
                s.name = name;
                s.kind = kind;
                s.last_at = at;
                if s.decoder.is_none() && !s.no_decoder {
                    match choose::open(&self.decoder) {
                        Ok(opened) => {
                            tracing::info!(%peer, "{opened}");
                            s.decoder = Some(opened.decoder);
                        }
                        Err(e) => {
                            tracing::warn!(%peer, "no decoder for their video: {e}");
                            s.no_decoder = true;
                        }
                    }
                }
                let Some(decoder) = s.decoder.as_mut() else {
                    return;
                };
                match decoder.decode(&annex_b) {
                    Ok(Some(frame)) => {
                        s.frame = Some(Arc::new(frame));
                        self.dirty = true;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(%peer, "undecodable frame: {e}"),
                }
            }
            RemoteVideoPacket::Voice { peer, at } => {
                self.heard_at.insert(peer, at);
            }
            RemoteVideoPacket::PeerGone(peer) => {
                let before = self.senders.len();
                self.senders.retain(|(p, _), _| *p != peer);
                self.dirty |= self.senders.len() != before;
                self.heard_at.remove(&peer);
                self.speaking.remove(&peer);
            }
        }
    }

    /// Drops the senders that stopped; true when the picture changed since the last call.
    pub fn tick(&mut self, now: Instant) -> bool {
        let before = self.senders.len();
        self.senders.retain(|(peer, _), s| {
            let sending = now.duration_since(s.last_at) < STALE_AFTER;
            if !sending {
                tracing::info!(%peer, name = %s.name, kind = s.kind.label(), "their video stopped");
            }
            sending
        });
        self.dirty |= self.senders.len() != before;
        for (peer, at) in &self.heard_at {
            let speaking = now.saturating_duration_since(*at) < SPEAKING_HOLD;
            let was = self
                .speaking
                .insert(peer.clone(), speaking)
                .unwrap_or(false);
            // Only a tile's outline changes: redraw when the speaker has a tile.
            let shown = self.senders.keys().any(|(p, _)| p == peer);
            self.dirty |= was != speaking && shown;
        }
        let changed = std::mem::take(&mut self.dirty);
        self.generation += u64::from(changed);
        changed
    }

    /// How much of each sender's video the layout shows (see [`ViewWishes`]). With nobody
    /// `watching` (no display lit and no sink) every video is asked for small and slow: the
    /// box keeps decoding it, so its tile is back at once when a display comes, at a cost a
    /// Pi does not notice (the senders' change of size brings a keyframe).
    pub fn wishes(&self, watching: bool) -> ViewWishes {
        let kinds: Vec<VideoKind> = self.senders.values().map(|s| s.kind).collect();
        let mut sizes = tile_sizes(&kinds, WISH_DISPLAY.0, WISH_DISPLAY.1);
        if !watching {
            sizes.iter_mut().for_each(|s| *s = None);
        }
        self.senders
            .keys()
            .zip(sizes)
            .map(|(key, size)| {
                let wish = size.map_or(HIDDEN, |(width, height)| ViewWish {
                    width,
                    height,
                    fps: SHOWN_FPS,
                });
                (key.clone(), wish)
            })
            .collect()
    }

    /// The senders' latest pictures.
    pub fn picture(&self) -> CallPicture {
        let shown = self
            .senders
            .iter()
            .filter_map(|((peer, _), s)| {
                Some(Shown {
                    name: s.name.clone(),
                    kind: s.kind,
                    speaking: self.speaking.get(peer).copied().unwrap_or(false),
                    frame: s.frame.clone()?,
                })
            })
            .collect();
        CallPicture {
            generation: self.generation,
            shown,
        }
    }
}

/// A file the display's pictures go to, with the times they were shown.
struct FileSink {
    path: PathBuf,
    out: Y4mSink,
    times: std::io::BufWriter<std::fs::File>,
    picture: MemoryFramebuffer,
    showing_call: Option<bool>,
}

impl FileSink {
    fn open(sink: DisplaySink) -> std::io::Result<FileSink> {
        let DisplaySink::Y4m {
            path,
            width,
            height,
        } = sink;
        let out = Y4mSink::create(&path, width, height, 30)?;
        // y4m has no timestamps: when each picture was shown goes beside it, for glass-to-glass
        // measurements (bench/display).
        let times_path = times_file(&path);
        let times = std::io::BufWriter::new(std::fs::File::create(&times_path)?);
        tracing::info!(
            "display sink: {} ({width}x{height}), times in {}",
            path.display(),
            times_path.display()
        );
        Ok(FileSink {
            path,
            out,
            times,
            picture: MemoryFramebuffer::new(width, height),
            showing_call: None,
        })
    }

    /// Writes the call's picture, or the status screen when nobody sends video, if either
    /// changed since the last.
    fn show(
        &mut self,
        call: &CallPicture,
        call_changed: bool,
        status: &mut watch::Receiver<StatusModel>,
    ) -> std::io::Result<()> {
        let status_shown_changed =
            self.showing_call == Some(false) && status.has_changed().unwrap_or(false);
        if self.showing_call.is_some() && !call_changed && !status_shown_changed {
            return Ok(());
        }
        let on_call = call.draw(&mut self.picture);
        if !on_call {
            let model = status.borrow_and_update().clone();
            let _ = render(&model, &mut self.picture);
        }
        self.showing_call = Some(on_call);
        let shown = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.out.write(&self.picture)?;
        writeln!(self.times, "{}", shown.as_micros())?;
        self.times.flush()
    }
}

/// Who sees the videos besides a display sink: whether the HDMI-out shows anything (the screen
/// thread's `lit`), and whether what people send is recorded (`--record-remote`: recorded as it
/// arrives, so it is asked for at full size even with no display).
pub struct Watchers {
    pub lit: watch::Receiver<bool>,
    pub recorded: bool,
}

/// Starts the thread that decodes what `packets` bring, publishes each new picture on
/// `pictures` (the HDMI-out screen draws it) and writes it to `sink`, if any.
/// Who is on screen goes into `status_tx` (the settings page lists them), how much of each
/// video is shown into `wishes_tx` (the call core tells the senders), small for everyone while
/// nobody in `watchers` looks.
pub fn start(
    packets: Receiver<RemoteVideoPacket>,
    status_tx: watch::Sender<StatusModel>,
    pictures: watch::Sender<CallPicture>,
    wishes_tx: watch::Sender<ViewWishes>,
    (mut decoder, watchers): (watch::Receiver<DecoderChoice>, Watchers),
    sink: Option<DisplaySink>,
) -> std::io::Result<JoinHandle<()>> {
    let Watchers { mut lit, recorded } = watchers;
    let mut file = sink.map(FileSink::open).transpose()?;
    let mut status = status_tx.subscribe();
    // For benchmarks that compare with and without (bench/display): senders told nothing.
    let tell_senders = std::env::var("ROOMBOX_VIEW_WISHES").map_or(true, |v| v != "off");
    std::thread::Builder::new()
        .name("call-view".into())
        .spawn(move || {
            let mut view = CallView {
                decoder: decoder.borrow_and_update().clone(),
                ..CallView::default()
            };
            let mut picture = CallPicture::default();
            loop {
                match packets.recv_timeout(Duration::from_millis(100)) {
                    Ok(p) => {
                        view.handle(p);
                        while let Ok(p) = packets.try_recv() {
                            view.handle(p);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                if decoder.has_changed().unwrap_or(false) {
                    view.decoder = decoder.borrow_and_update().clone();
                }
                let watching_changed = lit.has_changed().unwrap_or(false);
                let watching = *lit.borrow_and_update() || file.is_some() || recorded;
                let changed = view.tick(Instant::now());
                if tell_senders && (changed || watching_changed) {
                    let wishes = view.wishes(watching);
                    wishes_tx.send_if_modified(|w| std::mem::replace(w, wishes) != *w);
                }
                if changed {
                    picture = view.picture();
                    pictures.send_replace(picture.clone());
                    let on_screen: Vec<_> = picture
                        .shown
                        .iter()
                        .map(|s| (s.name.clone(), s.kind))
                        .collect();
                    status_tx.send_if_modified(|m| {
                        std::mem::replace(&mut m.on_screen, on_screen) != m.on_screen
                    });
                }
                if let Some(f) = &mut file {
                    if let Err(e) = f.show(&picture, changed, &mut status) {
                        tracing::warn!("display sink {}: {e}; stopped writing", f.path.display());
                        file = None;
                    }
                }
            }
        })
}

/// The sink's companion file: one line a picture, when it was shown (unix microseconds).
pub fn times_file(y4m: &std::path::Path) -> PathBuf {
    let mut name = y4m.as_os_str().to_owned();
    name.push(".times");
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::h264::H264Encoder;
    use crate::encode::openh264::{OpenH264Config, OpenH264Encoder};
    use crate::media::frame::i420_len;
    use embedded_graphics::prelude::RgbColor;

    /// A keyframe of a mid-grey 160x90 picture, as a sharer's browser would send it.
    fn keyframe() -> Arc<[u8]> {
        let frame = VideoFrame {
            width: 160,
            height: 90,
            data: vec![128; i420_len(160, 90)],
            captured_at: Instant::now(),
            pts: Duration::ZERO,
        };
        let mut enc = OpenH264Encoder::new(OpenH264Config::default()).expect("encoder");
        let au = enc.encode(&frame, true).expect("encodes").expect("a frame");
        au.data.into()
    }

    fn frame_from(peer: &str, annex_b: &Arc<[u8]>, at: Instant) -> RemoteVideoPacket {
        video_from(peer, "1", VideoKind::Screen, annex_b, at)
    }

    fn video_from(
        peer: &str,
        track: &str,
        kind: VideoKind,
        annex_b: &Arc<[u8]>,
        at: Instant,
    ) -> RemoteVideoPacket {
        RemoteVideoPacket::Frame(RemoteFrame {
            peer: peer.into(),
            name: format!("Person {peer}"),
            track: track.into(),
            kind,
            annex_b: annex_b.clone(),
            keyframe: true,
            at,
        })
    }

    #[test]
    fn a_share_is_shown_until_it_stops_or_its_sender_leaves() {
        let t0 = Instant::now();
        let au = keyframe();
        let mut view = CallView::default();
        let mut out = MemoryFramebuffer::new(320, 180);
        assert!(
            !view.tick(t0) && !view.picture().draw(&mut out),
            "nobody sends: the status"
        );

        view.handle(frame_from("a", &au, t0));
        assert!(view.tick(t0), "a first picture is a change");
        assert!(view.picture().draw(&mut out), "shown");
        // Mid-grey, full screen (160x90 on 320x180 is the same shape).
        let c = out.pixel(160, 60);
        assert!((120..=136).contains(&c.g()), "{c:?}");
        assert!(!view.tick(t0 + Duration::from_millis(100)), "nothing new");

        // Silent past STALE_AFTER: the share stopped.
        assert!(view.tick(t0 + STALE_AFTER + Duration::from_millis(1)));
        assert!(!view.picture().draw(&mut out));

        // A sender that leaves goes at once.
        let t1 = t0 + Duration::from_secs(5);
        view.handle(frame_from("b", &au, t1));
        assert!(view.tick(t1) && view.picture().draw(&mut out));
        view.handle(RemoteVideoPacket::PeerGone("b".into()));
        assert!(view.tick(t1) && !view.picture().draw(&mut out));
    }

    #[test]
    fn a_camera_and_a_screen_from_one_person_are_two_tiles_and_the_screen_wins() {
        let t0 = Instant::now();
        let au = keyframe();
        let mut view = CallView::default();
        view.handle(video_from("a", "1", VideoKind::Camera, &au, t0));
        view.handle(video_from("b", "1", VideoKind::Camera, &au, t0));
        view.tick(t0);
        let kinds: Vec<_> = view.picture().shown.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, [VideoKind::Camera, VideoKind::Camera]);
        view.handle(video_from("a", "2", VideoKind::Screen, &au, t0));
        assert!(view.tick(t0));
        let picture = view.picture();
        assert_eq!(picture.shown.len(), 3, "a's camera and screen, b's camera");
        // Drawn: the screen alone, full screen (compose leaves cameras out beside a share).
        let mut out = MemoryFramebuffer::new(320, 180);
        assert!(picture.draw(&mut out));
        // a leaves: both its tracks go, b's camera stays.
        view.handle(RemoteVideoPacket::PeerGone("a".into()));
        assert!(view.tick(t0));
        let names: Vec<_> = view
            .picture()
            .shown
            .iter()
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(names, ["Person b"]);
    }

    #[test]
    fn a_voice_outlines_its_tile_until_it_has_been_quiet_for_the_hold() {
        let t0 = Instant::now();
        let au = keyframe();
        let mut view = CallView::default();
        view.handle(video_from("a", "1", VideoKind::Camera, &au, t0));
        view.handle(video_from("b", "1", VideoKind::Camera, &au, t0));
        view.tick(t0);
        let speaking =
            |v: &CallView| -> Vec<bool> { v.picture().shown.iter().map(|s| s.speaking).collect() };
        assert_eq!(speaking(&view), [false, false]);
        view.handle(RemoteVideoPacket::Voice {
            peer: "b".into(),
            at: t0,
        });
        assert!(view.tick(t0), "a new speaker is a new picture");
        assert_eq!(speaking(&view), [false, true]);
        let later = t0 + Duration::from_millis(300);
        view.handle(video_from("b", "1", VideoKind::Camera, &au, later));
        view.tick(later);
        assert_eq!(speaking(&view), [false, true], "a pause is not silence");
        let quiet = t0 + SPEAKING_HOLD + Duration::from_millis(1);
        assert!(view.tick(quiet));
        assert_eq!(speaking(&view), [false, false]);
    }

    #[test]
    fn each_video_is_wished_at_its_tile_size_and_hidden_ones_small() {
        let t0 = Instant::now();
        let au = keyframe();
        let mut view = CallView::default();
        view.handle(video_from("a", "1", VideoKind::Camera, &au, t0));
        view.handle(video_from("b", "1", VideoKind::Camera, &au, t0));
        let key = |p: &str, t: &str| (p.to_owned(), t.to_owned());
        let wishes = view.wishes(true);
        assert_eq!(
            wishes[&key("a", "1")].width,
            942,
            "half of 1080p, less the gaps"
        );
        assert_eq!(wishes[&key("a", "1")].fps, SHOWN_FPS);
        view.handle(video_from("b", "2", VideoKind::Screen, &au, t0));
        let wishes = view.wishes(true);
        assert_eq!(
            wishes[&key("b", "2")].width,
            WISH_DISPLAY.0,
            "the share fills it"
        );
        assert_eq!(wishes[&key("a", "1")], HIDDEN);
        assert_eq!(wishes[&key("b", "1")], HIDDEN);
        // Nobody watching (no display, no sink): everything small and slow, the share too.
        let unwatched = view.wishes(false);
        assert_eq!(unwatched.len(), 3);
        assert!(unwatched.values().all(|w| *w == HIDDEN), "{unwatched:?}");
    }

    #[test]
    fn an_undecodable_frame_is_skipped_and_the_next_shown() {
        let t0 = Instant::now();
        let mut view = CallView::default();
        let junk: Arc<[u8]> = vec![0, 0, 0, 1, 0x65, 0xff, 0x00, 0x13].into();
        view.handle(frame_from("a", &junk, t0));
        let mut out = MemoryFramebuffer::new(320, 180);
        assert!(!view.picture().draw(&mut out), "nothing decoded yet");
        view.handle(frame_from("a", &keyframe(), t0));
        assert!(view.picture().draw(&mut out));
    }

    #[test]
    fn sinks_are_named_y4m_paths() {
        assert_eq!(
            "y4m:/tmp/x.y4m".parse::<DisplaySink>(),
            Ok(DisplaySink::Y4m {
                path: "/tmp/x.y4m".into(),
                width: 1280,
                height: 720
            })
        );
        assert!("y4m:".parse::<DisplaySink>().is_err());
        assert!("png:/tmp/x"
            .parse::<DisplaySink>()
            .unwrap_err()
            .contains("y4m:PATH"));
    }
}
