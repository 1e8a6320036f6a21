//! What the room's display shows of the call: the video people send the box (screen shares),
//! decoded, or the status screen when nobody sends any. [`CallView`] is the state (frames in
//! with the time passed in, the [`CallPicture`] out); [`start`] is its thread, which publishes
//! each new picture to the HDMI-out screen and writes it to the display sink when there is one.

use crate::calls::RemoteVideoPacket;
use crate::display::framebuffer::MemoryFramebuffer;
use crate::display::model::StatusModel;
use crate::display::render::render;
use crate::media::VideoFrame;
use crate::remote_video::compose::TileKind;
use crate::remote_video::decode::H264Decoder;
use crate::remote_video::y4m::Y4mSink;
use crate::remote_video::{CallPicture, Shown};
use std::collections::BTreeMap;
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
    decoder: Option<H264Decoder>,
    frame: Option<Arc<VideoFrame>>,
    last_at: Instant,
}

/// The decoded video of everyone who sends the box some.
#[derive(Default)]
pub struct CallView {
    senders: BTreeMap<String, Sender>,
    /// Something changed since the last picture.
    dirty: bool,
    generation: u64,
}

impl CallView {
    pub fn handle(&mut self, packet: RemoteVideoPacket) {
        match packet {
            RemoteVideoPacket::Frame {
                peer,
                name,
                annex_b,
                at,
                ..
            } => {
                let s = self.senders.entry(peer.clone()).or_insert_with(|| {
                    tracing::info!(%peer, %name, "showing their video");
                    Sender {
                        name: name.clone(),
                        decoder: None,
                        frame: None,
                        last_at: at,
                    }
                });
                s.name = name;
                s.last_at = at;
                if s.decoder.is_none() {
                    match H264Decoder::new() {
                        Ok(d) => s.decoder = Some(d),
                        Err(e) => return tracing::warn!(%peer, "no H.264 decoder: {e}"),
                    }
                }
                let decoder = s.decoder.as_mut().expect("made above");
                match decoder.decode(&annex_b) {
                    Ok(Some(frame)) => {
                        s.frame = Some(Arc::new(frame));
                        self.dirty = true;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(%peer, "undecodable frame: {e}"),
                }
            }
            RemoteVideoPacket::PeerGone(peer) => {
                self.dirty |= self.senders.remove(&peer).is_some();
            }
        }
    }

    /// Drops the senders that stopped; true when the picture changed since the last call.
    pub fn tick(&mut self, now: Instant) -> bool {
        let before = self.senders.len();
        self.senders.retain(|peer, s| {
            let sending = now.duration_since(s.last_at) < STALE_AFTER;
            if !sending {
                tracing::info!(%peer, name = %s.name, "their video stopped");
            }
            sending
        });
        self.dirty |= self.senders.len() != before;
        let changed = std::mem::take(&mut self.dirty);
        self.generation += u64::from(changed);
        changed
    }

    /// The senders' latest pictures.
    pub fn picture(&self) -> CallPicture {
        let shown = self
            .senders
            .values()
            .filter_map(|s| {
                Some(Shown {
                    name: s.name.clone(),
                    // The web client sends video only when it shares a screen.
                    kind: TileKind::Screen,
                    speaking: false,
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

/// Starts the thread that decodes what `packets` bring, publishes each new picture on
/// `pictures` (the HDMI-out screen draws it) and writes it to `sink`, if any.
pub fn start(
    packets: Receiver<RemoteVideoPacket>,
    mut status: watch::Receiver<StatusModel>,
    pictures: watch::Sender<CallPicture>,
    sink: Option<DisplaySink>,
) -> std::io::Result<JoinHandle<()>> {
    let mut file = sink.map(FileSink::open).transpose()?;
    std::thread::Builder::new()
        .name("call-view".into())
        .spawn(move || {
            let mut view = CallView::default();
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
                let changed = view.tick(Instant::now());
                let picture = view.picture();
                if changed {
                    pictures.send_replace(picture.clone());
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
        RemoteVideoPacket::Frame {
            peer: peer.into(),
            name: format!("Person {peer}"),
            annex_b: annex_b.clone(),
            keyframe: true,
            at,
        }
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
