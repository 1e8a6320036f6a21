//! `roombox run --record-remote DIR`: what people send the box, as they send it (no decoding,
//! no re-encoding), one Matroska file per person and call,
//! `DIR/<name>-<peer id>-<unix seconds>.mkv`: their voice (Opus, as received, after the call
//! core has opened the frame encryption) and their videos (H.264 access units from a keyframe
//! on), track 1 their screen shares and track 3 their cameras; a share or camera that ends and
//! starts again goes on in its track (docs/decisions.md). Timestamps are when the packets
//! reached the box, from the person's first packet. A file is finished (Cues, Duration) when
//! the person leaves and when the box stops.
//!
//! The pump hands copies of the core's packets to a [`Tap`], which never waits: the recorder
//! thread ([`start`]) reads them from a queue of bounded size, and what does not fit is
//! dropped and counted (a video then waits for its next keyframe, which is asked for). A write
//! that fails is logged once and that file abandoned; the box carries on.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::mkv::{AudioTrack, MkvError, MkvWriter, Track, VideoTrack};
use crate::calls::{RemoteAudioPacket, RemoteFrame, RemoteVideoPacket};
use crate::media::VideoKind;

/// At most this many packets, or this many bytes, wait for the recorder (seconds of a call's
/// media); beyond, the pump drops what it would add.
const QUEUE_PACKETS: usize = 1024;
const QUEUE_BYTES: usize = 16 << 20;
/// The file's tracks: a person's screen shares, their voice, their cameras.
const SCREEN_TRACK: u8 = 1;
const AUDIO_TRACK: u8 = 2;
const CAMERA_TRACK: u8 = 3;
/// A video of the same kind as the one recorded (a second screen share at once) takes its
/// track over only once the first has sent nothing for this long (it ended).
const TAKE_OVER_AFTER: Duration = Duration::from_millis(1500);

/// A copy of what the call core passed on, for the recorder.
#[derive(Debug)]
pub enum Heard {
    Audio {
        peer: String,
        name: String,
        payload: Arc<[u8]>,
        at: Instant,
    },
    Video(RemoteFrame),
    /// The person left (or the call ended): their file is finished.
    Gone(String),
}

impl Heard {
    fn bytes(&self) -> usize {
        match self {
            Heard::Audio { payload, .. } => payload.len(),
            Heard::Video(frame) => frame.annex_b.len(),
            Heard::Gone(_) => 0,
        }
    }
}

/// Packets and bytes in the queue: added by the tap, taken off by the recorder.
#[derive(Default)]
struct Queued {
    packets: AtomicUsize,
    bytes: AtomicUsize,
}

/// The pump's end of the recorder's queue. It never blocks: a packet that does not fit is
/// dropped and counted, and word that a person left always goes (it is tiny and rare).
pub struct Tap {
    tx: mpsc::Sender<Heard>,
    queued: Arc<Queued>,
    dropped: u64,
    /// Videos (peer, track) that lost a frame here: nothing more of them until a keyframe.
    broken: Vec<(String, String)>,
}

impl Tap {
    /// A copy of the core's audio for the recorder.
    pub fn audio(&mut self, p: &RemoteAudioPacket) {
        match p {
            RemoteAudioPacket::Packet {
                peer,
                name,
                payload,
                at,
                ..
            } => {
                self.offer(Heard::Audio {
                    peer: peer.clone(),
                    name: name.clone(),
                    payload: payload.clone(),
                    at: *at,
                });
            }
            RemoteAudioPacket::PeerGone(peer) => self.gone(peer),
        }
    }

    /// A copy of the core's video for the recorder. Returns the (peer, track) to ask for a
    /// keyframe when a frame of it was dropped here (the recording of that video waits for one).
    pub fn video(&mut self, p: &RemoteVideoPacket) -> Option<(String, String)> {
        match p {
            RemoteVideoPacket::Frame(frame) => {
                let (peer, track) = (&frame.peer, &frame.track);
                let broken = self
                    .broken
                    .iter()
                    .position(|(p, t)| p == peer && t == track);
                if broken.is_some() && !frame.keyframe {
                    self.count_drop();
                    return Some((peer.clone(), track.clone()));
                }
                let sent = self.offer(Heard::Video(frame.clone()));
                match (sent, broken) {
                    (true, Some(i)) => {
                        self.broken.swap_remove(i);
                        None
                    }
                    (true, None) => None,
                    (false, b) => {
                        if b.is_none() {
                            self.broken.push((peer.clone(), track.clone()));
                        }
                        Some((peer.clone(), track.clone()))
                    }
                }
            }
            RemoteVideoPacket::Voice { .. } => None,
            RemoteVideoPacket::PeerGone(peer) => {
                self.broken.retain(|(p, _)| p != peer);
                self.gone(peer);
                None
            }
        }
    }

    /// Packets dropped so far because the recorder was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn offer(&mut self, heard: Heard) -> bool {
        let bytes = heard.bytes();
        let q = &self.queued;
        if q.packets.load(Relaxed) >= QUEUE_PACKETS || q.bytes.load(Relaxed) + bytes > QUEUE_BYTES {
            self.count_drop();
            return false;
        }
        q.packets.fetch_add(1, Relaxed);
        q.bytes.fetch_add(bytes, Relaxed);
        if self.tx.send(heard).is_err() {
            // The recorder is gone (it does not stop before the pump; counted all the same).
            q.packets.fetch_sub(1, Relaxed);
            q.bytes.fetch_sub(bytes, Relaxed);
            self.count_drop();
            return false;
        }
        true
    }

    fn gone(&mut self, peer: &str) {
        let _ = self.tx.send(Heard::Gone(peer.to_owned()));
    }

    fn count_drop(&mut self) {
        self.dropped += 1;
        if self.dropped.is_power_of_two() {
            tracing::warn!(
                dropped = self.dropped,
                "the recording of what people send is behind (the disk is slow): packets dropped"
            );
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if self.dropped > 0 {
            tracing::warn!(
                dropped = self.dropped,
                "the recording of what people send dropped packets while it was behind"
            );
        }
    }
}

/// Starts the recorder's thread writing into `dir` (made if missing); the tap goes to the pump.
/// The thread finishes every file and ends when the tap is dropped (the pump stopped).
pub fn start(dir: &Path) -> io::Result<(Tap, JoinHandle<()>)> {
    std::fs::create_dir_all(dir)?;
    let (tap, inbox) = queue();
    let thread = {
        let dir = dir.to_owned();
        std::thread::Builder::new()
            .name("record-remote".into())
            .spawn(move || {
                let mut recorder = Recorder::new(dir);
                while let Some(heard) = inbox.recv() {
                    recorder.handle(heard);
                }
                recorder.finish_all();
            })?
    };
    tracing::warn!(
        "recording what people send the box into {} (--record-remote)",
        dir.display()
    );
    Ok((tap, thread))
}

/// The recorder's end of the queue.
pub struct Inbox {
    rx: mpsc::Receiver<Heard>,
    queued: Arc<Queued>,
}

impl Inbox {
    /// The next packet, waiting for it; None once the tap is gone and all is read.
    pub fn recv(&self) -> Option<Heard> {
        let heard = self.rx.recv().ok()?;
        Some(self.took(heard))
    }

    /// The next packet if one waits.
    pub fn try_recv(&self) -> Option<Heard> {
        let heard = self.rx.try_recv().ok()?;
        Some(self.took(heard))
    }

    fn took(&self, heard: Heard) -> Heard {
        if !matches!(heard, Heard::Gone(_)) {
            self.queued.packets.fetch_sub(1, Relaxed);
            self.queued.bytes.fetch_sub(heard.bytes(), Relaxed);
        }
        heard
    }
}

/// The queue from the pump to the recorder.
pub fn queue() -> (Tap, Inbox) {
    let (tx, rx) = mpsc::channel::<Heard>();
    let queued = Arc::new(Queued::default());
    let tap = Tap {
        tx,
        queued: queued.clone(),
        dropped: 0,
        broken: Vec::new(),
    };
    (tap, Inbox { rx, queued })
}

/// Where a file's bytes go: a file on disk, or in tests one that fails.
pub trait Sink: Write + Seek + Send {
    /// Makes what was written durable (fdatasync for a file).
    fn sync(&mut self) -> io::Result<()>;
}

impl Sink for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

/// Makes a person's file from the directory, their name and their peer id.
pub type Opener = Box<dyn FnMut(&Path, &str, &str) -> io::Result<(PathBuf, Box<dyn Sink>)> + Send>;

/// Who sends one kind of video into its track now.
struct VideoIn {
    /// The call's track (mid) being recorded, and when it last sent a frame.
    from: String,
    last_at: Instant,
    /// Its first keyframe is in the file (before it, frames are skipped).
    started: bool,
}

/// One person's file.
struct PeerFile {
    path: PathBuf,
    writer: MkvWriter<BufWriter<Box<dyn Sink>>>,
    first_at: Instant,
    /// The last block's time, in the file and per track (blocks go in time order, each
    /// track's strictly later than its last).
    last_ms: Option<u64>,
    track_ms: [Option<u64>; 3],
    screen: Option<VideoIn>,
    camera: Option<VideoIn>,
    /// A track refused its parameter sets (too large to declare): said once, not recorded.
    refused: [bool; 3],
    /// A second video of a kind at once: said once.
    told_busy: bool,
}

enum Person {
    Recording(Box<PeerFile>),
    /// The file could not be made or written: said once; nothing more until they leave.
    Abandoned,
}

/// Writes what people send into their files (the recorder thread's state; tests drive it
/// directly).
pub struct Recorder {
    dir: PathBuf,
    people: HashMap<String, Person>,
    open: Opener,
}

impl Recorder {
    /// Files in `dir`, named `<name>-<peer id>-<unix seconds>.mkv`.
    pub fn new(dir: PathBuf) -> Self {
        Self::with_opener(
            dir,
            Box::new(|dir, name, peer| {
                let (path, file) = create(dir, name, peer)?;
                Ok((path, Box::new(file) as Box<dyn Sink>))
            }),
        )
    }

    /// Files made by `open` (tests).
    pub fn with_opener(dir: PathBuf, open: Opener) -> Self {
        Recorder {
            dir,
            people: HashMap::new(),
            open,
        }
    }

    pub fn handle(&mut self, heard: Heard) {
        match heard {
            Heard::Gone(peer) => self.finish(&peer),
            Heard::Audio {
                peer,
                name,
                payload,
                at,
            } => {
                let Some(f) = self.file(&peer, &name, at) else {
                    return;
                };
                let ms = f.stamp(AUDIO_TRACK, at);
                let result = f.writer.audio(AUDIO_TRACK, ms, &payload);
                self.check(&peer, result);
            }
            Heard::Video(RemoteFrame {
                peer,
                name,
                track,
                kind,
                annex_b,
                keyframe,
                at,
            }) => {
                let Some(f) = self.file(&peer, &name, at) else {
                    return;
                };
                let number = match kind {
                    VideoKind::Screen => SCREEN_TRACK,
                    VideoKind::Camera => CAMERA_TRACK,
                };
                if f.refused[usize::from(number - 1)] {
                    return;
                }
                let slot = f.video_in(kind);
                match slot {
                    Some(v) if v.from == track => v.last_at = at,
                    // Another video of this kind while the first still sends: not recorded.
                    Some(v) if at.saturating_duration_since(v.last_at) < TAKE_OVER_AFTER => {
                        if !f.told_busy {
                            f.told_busy = true;
                            tracing::info!(%peer, %name, kind = kind.label(), "a second video of this kind at once: only the first is recorded");
                        }
                        return;
                    }
                    // The first, or one after the last ended: it goes on in the same track,
                    // from its first keyframe.
                    _ => {
                        *slot = Some(VideoIn {
                            from: track,
                            last_at: at,
                            started: false,
                        });
                    }
                }
                if !keyframe && !slot.as_ref().is_some_and(|v| v.started) {
                    return;
                }
                let ms = f.stamp(number, at);
                match f.writer.video(number, ms, &annex_b, keyframe) {
                    Ok(()) => {
                        if let Some(v) = f.video_in(kind) {
                            v.started = true;
                        }
                    }
                    // A keyframe without SPS and PPS in front: the next one starts it.
                    Err(MkvError::NoParameterSets) => {
                        tracing::debug!(%peer, "a keyframe without parameter sets: not recorded");
                    }
                    Err(MkvError::TooLarge(n)) => {
                        tracing::warn!(%peer, "their {} video's parameter sets ({n} bytes) are too large to record it", kind.label());
                        f.refused[usize::from(number - 1)] = true;
                    }
                    result => self.check(&peer, result),
                }
            }
        }
    }

    /// Finishes every file (the box stops).
    pub fn finish_all(&mut self) {
        let peers: Vec<String> = self.people.keys().cloned().collect();
        for peer in peers {
            self.finish(&peer);
        }
    }

    /// The person's file, made at their first packet; None when it is abandoned.
    fn file(&mut self, peer: &str, name: &str, at: Instant) -> Option<&mut PeerFile> {
        if !self.people.contains_key(peer) {
            let person = match (self.open)(&self.dir, name, peer) {
                Ok((path, file)) => {
                    tracing::info!(%peer, %name, "recording what they send into {}", path.display());
                    let tracks = [
                        Track::Video(VideoTrack { fps: None }),
                        // WebRTC's Opus is always opus/48000/2 (RFC 7587); a sender may switch
                        // between mono and stereo packets, which a stereo decoder both plays.
                        // Where the sender's stream began is unknown: no pre-skip.
                        Track::Audio(AudioTrack {
                            channels: 2,
                            pre_skip: 0,
                        }),
                        Track::Video(VideoTrack { fps: None }),
                    ];
                    let mut writer =
                        MkvWriter::new(BufWriter::new(file), &tracks).in_arrival_order();
                    writer.name_track(SCREEN_TRACK, VideoKind::Screen.label());
                    writer.name_track(CAMERA_TRACK, VideoKind::Camera.label());
                    Person::Recording(Box::new(PeerFile {
                        path,
                        writer,
                        first_at: at,
                        last_ms: None,
                        track_ms: [None; 3],
                        screen: None,
                        camera: None,
                        refused: [false; 3],
                        told_busy: false,
                    }))
                }
                Err(e) => {
                    tracing::warn!(%peer, %name, "cannot make a file in {} for what they send: {e}; not recording them", self.dir.display());
                    Person::Abandoned
                }
            };
            self.people.insert(peer.to_owned(), person);
        }
        match self.people.get_mut(peer) {
            Some(Person::Recording(f)) => Some(f),
            _ => None,
        }
    }

    /// A write's outcome: a failure abandons the file (said once).
    fn check(&mut self, peer: &str, result: Result<(), MkvError>) {
        let Err(e) = result else {
            return;
        };
        if let Some(Person::Recording(f)) = self.people.insert(peer.to_owned(), Person::Abandoned) {
            tracing::warn!(%peer, "recording {}: {e}; that file is abandoned", f.path.display());
            // What the buffer still holds is not written either: the disk said no.
            let _ = f.writer.abandon().into_parts();
        }
    }

    fn finish(&mut self, peer: &str) {
        let Some(Person::Recording(f)) = self.people.remove(peer) else {
            return;
        };
        let f = *f;
        let (screen, audio, camera) = (
            f.writer.written(SCREEN_TRACK),
            f.writer.written(AUDIO_TRACK),
            f.writer.written(CAMERA_TRACK),
        );
        let path = f.path;
        let finished = match f.writer.finish() {
            // Nothing came that could start the file (a video without its keyframe): no file.
            Err(MkvError::Empty) => {
                tracing::info!(%peer, "nothing of theirs to record: {} removed", path.display());
                let _ = std::fs::remove_file(&path);
                return;
            }
            Err(e) => Err(e.to_string()),
            Ok((ms, out)) => out
                .into_inner()
                .map_err(|e| e.error().to_string())
                .and_then(|mut file| file.sync().map_err(|e| e.to_string()))
                .map(|()| ms),
        };
        match finished {
            Ok(ms) => tracing::info!(
                %peer,
                "recorded {}: {:.1} s, {audio} audio packets, {screen} screen and {camera} camera frames",
                path.display(),
                ms as f64 / 1000.0
            ),
            Err(e) => {
                tracing::warn!(%peer, "recording {}: {e}; that file is abandoned", path.display());
            }
        }
    }
}

impl PeerFile {
    fn video_in(&mut self, kind: VideoKind) -> &mut Option<VideoIn> {
        match kind {
            VideoKind::Screen => &mut self.screen,
            VideoKind::Camera => &mut self.camera,
        }
    }

    /// A packet's time in the file: when it arrived, from the person's first packet, kept in
    /// order across the file and strictly increasing within its track (packets that arrive
    /// in the same millisecond are a millisecond apart).
    fn stamp(&mut self, track: u8, at: Instant) -> u64 {
        let arrived = at.saturating_duration_since(self.first_at).as_millis() as u64;
        let last_in_track = &mut self.track_ms[usize::from(track - 1)];
        let ms = arrived
            .max(self.last_ms.unwrap_or(0))
            .max(last_in_track.map_or(0, |t| t + 1));
        *last_in_track = Some(ms);
        self.last_ms = Some(ms);
        ms
    }
}

/// Makes `<dir>/<name>-<peer>-<unix seconds>.mkv`, never over an existing file (a `-2`, `-3`
/// ... before the extension when that name is taken).
fn create(dir: &Path, name: &str, peer: &str) -> io::Result<(PathBuf, File)> {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let stem = format!("{}-{}-{unix}", file_part(name), file_part(peer));
    for n in 1..100 {
        let file = if n == 1 {
            format!("{stem}.mkv")
        } else {
            format!("{stem}-{n}.mkv")
        };
        let path = dir.join(file);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{stem}.mkv and 98 more are taken"),
    ))
}

/// A name as part of a file name: letters and digits (any script) kept, `-` and `_` kept,
/// anything else (spaces, `/`, dots, controls) a `_`, at most 40 characters; `peer` when
/// nothing is left.
pub fn file_part(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars().take(40) {
        let c = if c.is_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_');
    if out.is_empty() {
        "peer".into()
    } else {
        out.into()
    }
}
