//! A Matroska writer for H.264 video and Opus audio tracks: the EBML header, a Segment with
//! SeekHead, Info (Duration patched in at the end), Tracks (avcC and OpusHead as CodecPrivate),
//! Clusters of SimpleBlocks (keyframes flagged) and Cues for the clusters that hold a keyframe
//! of the first video track (each IDR opens a cluster; a file without video cues its audio).
//! Blocks of all tracks are interleaved in timestamp order. Timestamps are in milliseconds
//! (TimestampScale 1 ms).
//!
//! The tracks are declared up front, but what a video track is (its size and avcC) is only
//! known from its first keyframe, which may come long after the header had to be written (a
//! person who talks first and shares a screen later). Such a track's entry holds a Void
//! element that the fields replace when they are known; a track that never got a block is
//! turned into a Void in `finish`, so the file only declares what it holds.

use std::collections::BTreeMap;
use std::io::{self, Seek, SeekFrom, Write};

use super::ebml::{
    put_bytes, put_float, put_id, put_master, put_size, put_str, put_uint, put_uint8, UNKNOWN_SIZE,
};
use crate::encode::h264::{nal, nal_type, nal_units};
use crate::encode::sps::picture_size;

mod id {
    pub const EBML: u32 = 0x1a45dfa3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42f7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42f2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42f3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x18538067;
    pub const SEEK_HEAD: u32 = 0x114d9b74;
    pub const SEEK: u32 = 0x4dbb;
    pub const SEEK_ID: u32 = 0x53ab;
    pub const SEEK_POSITION: u32 = 0x53ac;
    pub const INFO: u32 = 0x1549a966;
    pub const TIMESTAMP_SCALE: u32 = 0x2ad7b1;
    pub const DURATION: u32 = 0x4489;
    pub const MUXING_APP: u32 = 0x4d80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654ae6b;
    pub const TRACK_ENTRY: u32 = 0xae;
    pub const TRACK_NUMBER: u32 = 0xd7;
    pub const TRACK_UID: u32 = 0x73c5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const NAME: u32 = 0x536e;
    pub const FLAG_LACING: u32 = 0x9c;
    pub const DEFAULT_DURATION: u32 = 0x23e383;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63a2;
    pub const CODEC_DELAY: u32 = 0x56aa;
    pub const SEEK_PRE_ROLL: u32 = 0x56bb;
    pub const VIDEO: u32 = 0xe0;
    pub const PIXEL_WIDTH: u32 = 0xb0;
    pub const PIXEL_HEIGHT: u32 = 0xba;
    pub const AUDIO: u32 = 0xe1;
    pub const SAMPLING_FREQUENCY: u32 = 0xb5;
    pub const CHANNELS: u32 = 0x9f;
    pub const CLUSTER: u32 = 0x1f43b675;
    pub const TIMESTAMP: u32 = 0xe7;
    pub const SIMPLE_BLOCK: u32 = 0xa3;
    pub const CUES: u32 = 0x1c53bb6b;
    pub const CUE_POINT: u32 = 0xbb;
    pub const CUE_TIME: u32 = 0xb3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xb7;
    pub const CUE_TRACK: u32 = 0xf7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xf1;
    pub const VOID: u32 = 0xec;
}

/// A cluster is closed at the next video keyframe, or after this long without one.
const MAX_CLUSTER_MS: u64 = 5_000;
/// Blocks wait at most this many in the interleaving queue (one track may stall).
const MAX_QUEUED: usize = 256;
/// Room in a video track's entry for what its first keyframe tells (size, avcC, name), when
/// the header goes out before it: an avcC is tens of bytes, a few hundred with scaling lists.
const SLOT_LEN: usize = 1024;

/// A track of the file. Its number is its place in the list given to [`MkvWriter::new`], from 1.
#[derive(Debug, Clone, Copy)]
pub enum Track {
    Video(VideoTrack),
    Audio(AudioTrack),
}

/// An H.264 track. Its picture size and avcC come from its first keyframe (SPS and PPS).
#[derive(Debug, Clone, Copy, Default)]
pub struct VideoTrack {
    /// The frame rate, for the track's default frame duration; None when the frames come at
    /// the sender's own pace (the last frame then lasts as long as the gap before it).
    pub fps: Option<u32>,
}

/// The audio track's description (Opus at 48 kHz).
#[derive(Debug, Clone, Copy)]
pub struct AudioTrack {
    pub channels: u8,
    /// Samples the decoder drops at the start (the encoder's lookahead).
    pub pre_skip: u16,
}

/// Why the file could not be written, or a frame not taken.
#[derive(Debug, thiserror::Error)]
pub enum MkvError {
    #[error("writing the file: {0}")]
    Io(#[from] io::Error),
    #[error("a video track's first frame must be an IDR with SPS and PPS in front, and an SPS that says the picture's size")]
    NoParameterSets,
    #[error("the parameter sets ({0} bytes) do not fit the room kept for them")]
    TooLarge(usize),
    #[error("the file has no {1} track {0}")]
    NoSuchTrack(u8, &'static str),
    #[error("nothing was recorded")]
    Empty,
}

struct Block {
    track: u8,
    keyframe: bool,
    data: Vec<u8>,
}

/// Where the patched-at-the-end fields live, once the header is out (absolute positions).
struct Layout {
    segment_size_at: u64,
    segment_data_at: u64,
    duration_at: u64,
    cues_position_at: u64,
}

struct Cluster {
    timestamp: u64,
    body: Vec<u8>,
    has_video: bool,
    /// Each track's first keyframe in the cluster, for the Cues.
    keyframes: Vec<(u8, u64)>,
}

/// What a video track's first keyframe tells.
struct Picture {
    width: u32,
    height: u32,
    avcc: Vec<u8>,
}

/// Where a track's TrackEntry is in the file (absolute), and its slot if it has one.
struct EntryAt {
    at: u64,
    len: usize,
    slot_at: Option<u64>,
}

struct TrackState {
    spec: Track,
    name: Option<String>,
    /// A video track's picture, from its first keyframe.
    picture: Option<Picture>,
    latest: Option<u64>,
    /// The time of the track's last block.
    last_ms: Option<u64>,
    written: u64,
    entry: Option<EntryAt>,
}

/// Writes one recording. Call [`MkvWriter::video`] and [`MkvWriter::audio`] as packets come,
/// then [`MkvWriter::finish`].
pub struct MkvWriter<W: Write + Seek> {
    out: W,
    tracks: Vec<TrackState>,
    /// The caller gives every block in time order across tracks: none waits for the others.
    ordered: bool,
    layout: Option<Layout>,
    queue: BTreeMap<(u64, u64), Block>,
    seq: u64,
    cluster: Option<Cluster>,
    /// (track, time, cluster position) of each cluster's first keyframe of each track.
    cues: Vec<(u8, u64, u64)>,
    end_ms: u64,
}

impl<W: Write + Seek> MkvWriter<W> {
    /// A file with these tracks, numbered from 1 in this order. Nothing is written until the
    /// first block goes out.
    pub fn new(out: W, tracks: &[Track]) -> Self {
        assert!(
            (1..=126).contains(&tracks.len()),
            "1 to 126 tracks (one-byte track numbers)"
        );
        Self {
            out,
            tracks: tracks
                .iter()
                .map(|&spec| TrackState {
                    spec,
                    name: None,
                    picture: None,
                    latest: None,
                    last_ms: None,
                    written: 0,
                    entry: None,
                })
                .collect(),
            ordered: false,
            layout: None,
            queue: BTreeMap::new(),
            seq: 0,
            cluster: None,
            cues: Vec::new(),
            end_ms: 0,
        }
    }

    /// The caller promises blocks in time order across all tracks (packets stamped as they
    /// arrive): each is written at once instead of waiting for the other tracks to catch up,
    /// which a track that never comes would make last until the queue is full.
    pub fn in_arrival_order(mut self) -> Self {
        self.ordered = true;
        self
    }

    /// Names a track (Matroska's Name, e.g. "screen"): a video track's name goes into the
    /// file with its first keyframe, another track's with the header.
    pub fn name_track(&mut self, track: u8, name: &str) {
        if let Some(t) = self.index(track).map(|i| &mut self.tracks[i]) {
            t.name = Some(name.to_owned());
        }
    }

    /// Blocks written to the file so far for `track`.
    pub fn written(&self, track: u8) -> u64 {
        self.index(track).map_or(0, |i| self.tracks[i].written)
    }

    fn index(&self, track: u8) -> Option<usize> {
        let i = usize::from(track).checked_sub(1)?;
        (i < self.tracks.len()).then_some(i)
    }

    /// Adds an H.264 access unit (Annex B) to video `track` at `ms`. A track's first frame
    /// must be an IDR carrying SPS and PPS: they become its avcC and picture size. A frame
    /// refused for that ([`MkvError::NoParameterSets`]) leaves the file as it was.
    pub fn video(
        &mut self,
        track: u8,
        ms: u64,
        annex_b: &[u8],
        keyframe: bool,
    ) -> Result<(), MkvError> {
        let i = self
            .index(track)
            .filter(|&i| matches!(self.tracks[i].spec, Track::Video(_)))
            .ok_or(MkvError::NoSuchTrack(track, "video"))?;
        if self.tracks[i].picture.is_none() {
            let picture = picture(annex_b).ok_or(MkvError::NoParameterSets)?;
            let t = &self.tracks[i];
            if let Some(slot_at) = t.entry.as_ref().and_then(|e| e.slot_at) {
                // The header is out: the picture goes into the room kept for it.
                let bytes = fill_slot(&picture, t.name.as_deref())?;
                self.patch(slot_at, &bytes)?;
            }
            self.tracks[i].picture = Some(picture);
        }
        // Matroska's AVC is length-prefixed (4-byte lengths, as the avcC says).
        let mut data = Vec::with_capacity(annex_b.len() + 16);
        for unit in nal_units(annex_b) {
            data.extend_from_slice(&(unit.len() as u32).to_be_bytes());
            data.extend_from_slice(unit);
        }
        let t = &mut self.tracks[i];
        let lasts = match t.spec {
            Track::Video(VideoTrack { fps: Some(fps) }) => 1000 / u64::from(fps.max(1)),
            _ => t
                .last_ms
                .map_or(0, |last| ms.saturating_sub(last).min(1000)),
        };
        t.last_ms = Some(ms);
        self.end_ms = self.end_ms.max(ms + lasts);
        self.enqueue(ms, track, keyframe, data)
    }

    /// Adds an Opus packet to audio `track` at `ms`.
    pub fn audio(&mut self, track: u8, ms: u64, packet: &[u8]) -> Result<(), MkvError> {
        let i = self
            .index(track)
            .filter(|&i| matches!(self.tracks[i].spec, Track::Audio(_)))
            .ok_or(MkvError::NoSuchTrack(track, "audio"))?;
        self.tracks[i].last_ms = Some(ms);
        let lasts = opus_samples(packet).map_or(20, |n| u64::from(n) / 48);
        self.end_ms = self.end_ms.max(ms + lasts);
        self.enqueue(ms, track, true, packet.to_vec())
    }

    fn enqueue(
        &mut self,
        ms: u64,
        track: u8,
        keyframe: bool,
        data: Vec<u8>,
    ) -> Result<(), MkvError> {
        self.seq += 1;
        self.queue.insert(
            (ms, self.seq),
            Block {
                track,
                keyframe,
                data,
            },
        );
        let slot = &mut self.tracks[usize::from(track - 1)].latest;
        *slot = Some(slot.map_or(ms, |t| t.max(ms)));
        // A block may go once every track has reached its time (no earlier one can come).
        let horizon = if self.ordered {
            u64::MAX
        } else {
            self.tracks
                .iter()
                .try_fold(u64::MAX, |h, t| t.latest.map(|l| h.min(l)))
                .unwrap_or(0)
        };
        while let Some(((ms, _), _)) = self.queue.first_key_value() {
            let ms = *ms;
            if ms > horizon && self.queue.len() <= MAX_QUEUED {
                break;
            }
            let (_, block) = self.queue.pop_first().expect("seen above");
            self.write_block(ms, block)?;
        }
        Ok(())
    }

    fn is_video(&self, track: u8) -> bool {
        matches!(self.tracks[usize::from(track - 1)].spec, Track::Video(_))
    }

    fn write_block(&mut self, ms: u64, block: Block) -> Result<(), MkvError> {
        if self.layout.is_none() {
            self.write_header()?;
        }
        let video = self.is_video(block.track);
        let new_cluster = match &self.cluster {
            None => true,
            Some(c) => {
                (video && block.keyframe && c.has_video)
                    || ms >= c.timestamp + MAX_CLUSTER_MS
                    || ms < c.timestamp
            }
        };
        if new_cluster {
            self.flush_cluster()?;
            let mut body = Vec::with_capacity(256 * 1024);
            put_uint(&mut body, id::TIMESTAMP, ms);
            self.cluster = Some(Cluster {
                timestamp: ms,
                body,
                has_video: false,
                keyframes: Vec::new(),
            });
        }
        let cluster = self.cluster.as_mut().expect("opened above");
        cluster.has_video |= video;
        if block.keyframe && !cluster.keyframes.iter().any(|&(t, _)| t == block.track) {
            cluster.keyframes.push((block.track, ms));
        }
        let relative = (ms - cluster.timestamp) as i16; // < MAX_CLUSTER_MS, fits
        let mut head = [0u8; 4];
        head[0] = 0x80 | block.track;
        head[1..3].copy_from_slice(&relative.to_be_bytes());
        head[3] = if block.keyframe { 0x80 } else { 0 };
        put_id(&mut cluster.body, id::SIMPLE_BLOCK);
        put_size(&mut cluster.body, (head.len() + block.data.len()) as u64);
        cluster.body.extend_from_slice(&head);
        cluster.body.extend_from_slice(&block.data);
        self.tracks[usize::from(block.track - 1)].written += 1;
        Ok(())
    }

    fn flush_cluster(&mut self) -> Result<(), MkvError> {
        let (Some(cluster), Some(layout)) = (self.cluster.take(), &self.layout) else {
            return Ok(());
        };
        let position = self.out.stream_position()? - layout.segment_data_at;
        for (track, at) in cluster.keyframes {
            self.cues.push((track, at, position));
        }
        let mut head = Vec::with_capacity(12);
        put_id(&mut head, id::CLUSTER);
        put_size(&mut head, cluster.body.len() as u64);
        self.out.write_all(&head)?;
        self.out.write_all(&cluster.body)?;
        Ok(())
    }

    /// Overwrites `bytes` at `at` and comes back to where the file was being written.
    fn patch(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        let here = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(at))?;
        self.out.write_all(bytes)?;
        self.out.seek(SeekFrom::Start(here))?;
        Ok(())
    }

    fn write_header(&mut self) -> Result<(), MkvError> {
        let base = self.out.stream_position()?;
        let mut buf = Vec::new();
        put_master(&mut buf, id::EBML, |b| {
            put_uint(b, id::EBML_VERSION, 1);
            put_uint(b, id::EBML_READ_VERSION, 1);
            put_uint(b, id::EBML_MAX_ID_LENGTH, 4);
            put_uint(b, id::EBML_MAX_SIZE_LENGTH, 8);
            put_str(b, id::DOC_TYPE, "matroska");
            put_uint(b, id::DOC_TYPE_VERSION, 4);
            put_uint(b, id::DOC_TYPE_READ_VERSION, 2);
        });
        put_id(&mut buf, id::SEGMENT);
        let segment_size_at = buf.len() as u64;
        buf.extend_from_slice(&UNKNOWN_SIZE); // patched in finish()
        let segment_data_at = buf.len() as u64;

        // Info, with Duration's 8 float bytes patched in finish().
        let mut info_body = Vec::new();
        put_uint(&mut info_body, id::TIMESTAMP_SCALE, 1_000_000);
        put_float(&mut info_body, id::DURATION, 0.0);
        let duration_in_body = info_body.len() - 8;
        let app = concat!("roombox ", env!("CARGO_PKG_VERSION"));
        put_str(&mut info_body, id::MUXING_APP, app);
        put_str(&mut info_body, id::WRITING_APP, app);
        let mut info = Vec::new();
        put_bytes(&mut info, id::INFO, &info_body);
        let duration_in_info = info.len() - info_body.len() + duration_in_body;

        // Tracks, remembering where each entry (and its slot) is.
        let mut tracks_body = Vec::new();
        let mut entries = Vec::new();
        for (i, t) in self.tracks.iter().enumerate() {
            let (entry, slot) = track_entry(i as u8 + 1, t);
            entries.push((tracks_body.len(), entry.len(), slot));
            tracks_body.extend_from_slice(&entry);
        }
        let mut tracks = Vec::new();
        put_bytes(&mut tracks, id::TRACKS, &tracks_body);
        let tracks_head = tracks.len() - tracks_body.len();

        // The SeekHead's size does not depend on the positions (8-byte integers).
        let seek_head = |info_at: u64, tracks_at: u64, cues_at: u64| {
            let mut b = Vec::new();
            put_master(&mut b, id::SEEK_HEAD, |b| {
                for (target, at) in [
                    (id::INFO, info_at),
                    (id::TRACKS, tracks_at),
                    (id::CUES, cues_at),
                ] {
                    put_master(b, id::SEEK, |b| {
                        let mut target_id = Vec::new();
                        put_id(&mut target_id, target);
                        put_bytes(b, id::SEEK_ID, &target_id);
                        put_uint8(b, id::SEEK_POSITION, at);
                    });
                }
            });
            b
        };
        let seek_len = seek_head(0, 0, 0).len() as u64;
        let info_at = seek_len;
        let tracks_at = info_at + info.len() as u64;
        let seek = seek_head(info_at, tracks_at, 0);
        // The Cues position is the last 8 bytes of the SeekHead.
        let cues_position_at = segment_data_at + seek_len - 8;
        let duration_at = segment_data_at + info_at + duration_in_info as u64;
        let entries_at = base + segment_data_at + tracks_at + tracks_head as u64;
        buf.extend_from_slice(&seek);
        buf.extend_from_slice(&info);
        buf.extend_from_slice(&tracks);
        self.out.write_all(&buf)?;
        for (t, (offset, len, slot)) in self.tracks.iter_mut().zip(entries) {
            let at = entries_at + offset as u64;
            t.entry = Some(EntryAt {
                at,
                len,
                slot_at: slot.map(|s| at + s as u64),
            });
        }
        self.layout = Some(Layout {
            segment_size_at: base + segment_size_at,
            segment_data_at: base + segment_data_at,
            duration_at: base + duration_at,
            cues_position_at: base + cues_position_at,
        });
        Ok(())
    }

    /// Gives the output back as it is, unfinished (a file that failed is left alone).
    pub fn abandon(self) -> W {
        self.out
    }

    /// Writes what is queued, the Cues, and the sizes and Duration; a track that got no block
    /// is made a Void, so readers see only the tracks the file holds. Returns the duration in
    /// milliseconds and the output; [`MkvError::Empty`] when no block was ever given.
    pub fn finish(mut self) -> Result<(u64, W), MkvError> {
        while let Some(((ms, _), block)) = self.queue.pop_first() {
            self.write_block(ms, block)?;
        }
        self.flush_cluster()?;
        let Some(layout) = self.layout.take() else {
            return Err(MkvError::Empty);
        };
        let unused: Vec<(u64, usize)> = self
            .tracks
            .iter()
            .filter(|t| t.written == 0)
            .filter_map(|t| t.entry.as_ref().map(|e| (e.at, e.len)))
            .collect();
        for (at, len) in unused {
            self.patch(at, &void(len))?;
        }
        // Cues for the first video track that has frames, else for the first track with blocks.
        let numbered = || {
            (1u8..)
                .zip(self.tracks.iter())
                .filter(|(_, t)| t.written > 0)
        };
        let cue_track = numbered()
            .find(|(_, t)| matches!(t.spec, Track::Video(_)))
            .or_else(|| numbered().next())
            .map_or(0, |(n, _)| n);
        let cues_at = self.out.stream_position()? - layout.segment_data_at;
        let mut cues = Vec::new();
        put_master(&mut cues, id::CUES, |b| {
            for &(track, time, position) in &self.cues {
                if track != cue_track {
                    continue;
                }
                put_master(b, id::CUE_POINT, |b| {
                    put_uint(b, id::CUE_TIME, time);
                    put_master(b, id::CUE_TRACK_POSITIONS, |b| {
                        put_uint(b, id::CUE_TRACK, u64::from(track));
                        put_uint(b, id::CUE_CLUSTER_POSITION, position);
                    });
                });
            }
        });
        self.out.write_all(&cues)?;
        let end = self.out.stream_position()?;
        self.patch(layout.cues_position_at, &cues_at.to_be_bytes())?;
        self.patch(layout.duration_at, &(self.end_ms as f64).to_be_bytes())?;
        let mut size = Vec::new();
        super::ebml::put_size_fixed(&mut size, end - layout.segment_data_at, 8);
        self.patch(layout.segment_size_at, &size)?;
        self.out.flush()?;
        Ok((self.end_ms, self.out))
    }
}

/// A track's TrackEntry, and where in it the slot for a video track's picture is (when the
/// picture is not known yet).
fn track_entry(number: u8, t: &TrackState) -> (Vec<u8>, Option<usize>) {
    let mut b = Vec::new();
    let mut slot = None;
    put_uint(&mut b, id::TRACK_NUMBER, u64::from(number));
    put_uint(&mut b, id::TRACK_UID, u64::from(number));
    match t.spec {
        Track::Video(v) => {
            put_uint(&mut b, id::TRACK_TYPE, 1);
            put_uint(&mut b, id::FLAG_LACING, 0);
            if let Some(fps) = v.fps {
                put_uint(
                    &mut b,
                    id::DEFAULT_DURATION,
                    1_000_000_000 / u64::from(fps.max(1)),
                );
            }
            put_str(&mut b, id::CODEC_ID, "V_MPEG4/ISO/AVC");
            match &t.picture {
                Some(p) => b.extend_from_slice(&picture_fields(p, t.name.as_deref(), false)),
                None => {
                    slot = Some(b.len());
                    b.extend_from_slice(&void(SLOT_LEN));
                }
            }
        }
        Track::Audio(a) => {
            put_uint(&mut b, id::TRACK_TYPE, 2);
            put_uint(&mut b, id::FLAG_LACING, 0);
            if let Some(name) = &t.name {
                put_str(&mut b, id::NAME, name);
            }
            put_str(&mut b, id::CODEC_ID, "A_OPUS");
            put_bytes(&mut b, id::CODEC_PRIVATE, &opus_head(a));
            // Matroska's Opus mapping: the pre-skip in ns, and 80 ms pre-roll.
            put_uint(
                &mut b,
                id::CODEC_DELAY,
                u64::from(a.pre_skip) * 1_000_000_000 / 48_000,
            );
            put_uint(&mut b, id::SEEK_PRE_ROLL, 80_000_000);
            put_master(&mut b, id::AUDIO, |b| {
                put_float(b, id::SAMPLING_FREQUENCY, 48_000.0);
                put_uint(b, id::CHANNELS, u64::from(a.channels));
            });
        }
    }
    let mut entry = Vec::new();
    put_bytes(&mut entry, id::TRACK_ENTRY, &b);
    let head = entry.len() - b.len();
    (entry, slot.map(|s| head + s))
}

/// A video track's picture size and avcC from the SPS and PPS in front of an IDR.
fn picture(annex_b: &[u8]) -> Option<Picture> {
    let avcc = avc_config(annex_b)?;
    let sps = nal_units(annex_b).find(|u| nal_type(u) == Some(nal::SPS))?;
    let (width, height) = picture_size(sps)?;
    Some(Picture {
        width,
        height,
        avcc,
    })
}

/// The entry's elements that come from the picture: Video (size), CodecPrivate (avcC) and
/// Name. `longer` writes CodecPrivate's size one byte longer than it needs (to fill a slot
/// that would otherwise be left one byte short of a Void).
fn picture_fields(p: &Picture, name: Option<&str>, longer: bool) -> Vec<u8> {
    let mut b = Vec::new();
    put_master(&mut b, id::VIDEO, |b| {
        put_uint(b, id::PIXEL_WIDTH, u64::from(p.width));
        put_uint(b, id::PIXEL_HEIGHT, u64::from(p.height));
    });
    put_id(&mut b, id::CODEC_PRIVATE);
    let mut size = Vec::new();
    put_size(&mut size, p.avcc.len() as u64);
    if longer {
        size.clear();
        let len = (1..=8)
            .find(|&n| (p.avcc.len() as u64) < (1u64 << (7 * n)) - 1)
            .expect("fits")
            + 1;
        super::ebml::put_size_fixed(&mut size, p.avcc.len() as u64, len);
    }
    b.extend_from_slice(&size);
    b.extend_from_slice(&p.avcc);
    if let Some(name) = name {
        put_str(&mut b, id::NAME, name);
    }
    b
}

/// The slot's new content: the picture's fields and a Void for the rest.
fn fill_slot(p: &Picture, name: Option<&str>) -> Result<Vec<u8>, MkvError> {
    let mut b = picture_fields(p, name, false);
    if SLOT_LEN.checked_sub(b.len()) == Some(1) {
        b = picture_fields(p, name, true);
    }
    let rest = SLOT_LEN
        .checked_sub(b.len())
        .ok_or(MkvError::TooLarge(b.len()))?;
    b.extend_from_slice(&void(rest));
    Ok(b)
}

/// A Void element of exactly `len` bytes (none for 0; never 1).
fn void(len: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(len);
    match len {
        0 => {}
        1 => unreachable!("no element is one byte long"),
        2..=128 => {
            put_id(&mut b, id::VOID);
            put_size(&mut b, len as u64 - 2);
        }
        _ => {
            put_id(&mut b, id::VOID);
            super::ebml::put_size_fixed(&mut b, len as u64 - 9, 8);
        }
    }
    b.resize(len, 0);
    b
}

/// How many 48 kHz samples an Opus packet holds (RFC 6716 3.1: the TOC byte's configuration
/// and frame count); None for a packet too short to say.
pub fn opus_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)], // SILK: 10, 20, 40, 60 ms
        12..=15 => [480, 960][usize::from(config % 2)],            // hybrid: 10, 20 ms
        _ => [120, 240, 480, 960][usize::from(config % 4)],        // CELT: 2.5 to 20 ms
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(packet.get(1)? & 0x3f),
    };
    Some(frame * frames)
}

/// The AVCDecoderConfigurationRecord (ISO/IEC 14496-15) from the SPS and PPS in front of an
/// IDR; None when either is missing.
pub fn avc_config(annex_b: &[u8]) -> Option<Vec<u8>> {
    let sps = nal_units(annex_b).find(|u| nal_type(u) == Some(nal::SPS))?;
    let pps = nal_units(annex_b).find(|u| nal_type(u) == Some(nal::PPS))?;
    if sps.len() < 4 {
        return None;
    }
    let mut c = vec![1, sps[1], sps[2], sps[3], 0xfc | 3, 0xe0 | 1];
    c.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    c.extend_from_slice(sps);
    c.push(1);
    c.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    c.extend_from_slice(pps);
    Some(c)
}

/// The Opus identification header (RFC 7845 5.1), mapping family 0.
pub fn opus_head(a: AudioTrack) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1); // version
    h.push(a.channels);
    h.extend_from_slice(&a.pre_skip.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes()); // the input's rate, for information
    h.extend_from_slice(&0i16.to_le_bytes()); // output gain
    h.push(0); // mapping family: mono or stereo
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::mkv_read::{children, find};

    #[test]
    fn voids_are_exactly_as_long_as_asked() {
        for len in [0, 2, 3, 100, 128, 129, 130, 1024, 70_000] {
            let v = void(len);
            assert_eq!(v.len(), len);
            if len > 0 {
                let elems = children(&v);
                assert_eq!(elems.len(), 1, "one element of {len} bytes");
                assert_eq!(elems[0].0, id::VOID);
            }
        }
    }

    /// Whatever the avcC's length, the slot is filled exactly (the picture's fields, then a
    /// Void or nothing), or refused when they do not fit.
    #[test]
    fn the_slot_is_filled_exactly_or_refused() {
        let (mut filled, mut refused) = (0, 0);
        for n in 900..1030 {
            let p = Picture {
                width: 1920,
                height: 1080,
                avcc: vec![7; n],
            };
            match fill_slot(&p, Some("camera")) {
                Ok(b) => {
                    filled += 1;
                    assert_eq!(b.len(), SLOT_LEN, "avcC of {n}");
                    let elems = children(&b);
                    assert_eq!(find(&elems, id::CODEC_PRIVATE)[0].len(), n);
                    assert_eq!(find(&elems, id::NAME), [b"camera"]);
                    assert!(elems.iter().filter(|e| e.0 == id::VOID).count() <= 1);
                }
                Err(MkvError::TooLarge(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            filled > 50 && refused > 20,
            "{filled} filled, {refused} refused"
        );
    }

    #[test]
    fn opus_packets_say_how_long_they_are() {
        assert_eq!(opus_samples(&[0xf8, 1]), Some(960), "CELT FB 20 ms");
        assert_eq!(opus_samples(&[0x78, 1]), Some(960), "hybrid FB 20 ms");
        assert_eq!(opus_samples(&[0x18, 1]), Some(2880), "SILK NB 60 ms");
        assert_eq!(opus_samples(&[0x81, 1]), Some(240), "CELT NB 2.5 ms x 2");
        assert_eq!(
            opus_samples(&[0xfb, 0x03]),
            Some(2880),
            "code 3: 3 frames of 20 ms"
        );
        assert_eq!(opus_samples(&[0xfb]), None, "code 3 without its count");
        assert_eq!(opus_samples(&[]), None);
    }
}
