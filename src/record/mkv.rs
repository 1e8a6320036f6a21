//! A Matroska writer for one H.264 video track and one Opus audio track: the EBML header,
//! a Segment with SeekHead, Info (Duration patched in at the end), Tracks (avcC and OpusHead
//! as CodecPrivate), Clusters of SimpleBlocks (keyframes flagged) and Cues for the clusters
//! that hold a video keyframe (each IDR opens a cluster). Blocks of both tracks are interleaved in timestamp order.
//! Timestamps are in milliseconds (TimestampScale 1 ms).

use std::collections::BTreeMap;
use std::io::{self, Seek, SeekFrom, Write};

use super::ebml::{
    put_bytes, put_float, put_id, put_master, put_size, put_str, put_uint, put_uint8, UNKNOWN_SIZE,
};
use crate::encode::h264::{nal, nal_type, nal_units};

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
}

const VIDEO_TRACK: u8 = 1;
const AUDIO_TRACK: u8 = 2;
/// A cluster is closed at the next video keyframe, or after this long without one.
const MAX_CLUSTER_MS: u64 = 5_000;
/// Blocks wait at most this many in the interleaving queue (one track may stall).
const MAX_QUEUED: usize = 256;

/// The video track's description.
#[derive(Debug, Clone, Copy)]
pub struct VideoTrack {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// The audio track's description (Opus at 48 kHz).
#[derive(Debug, Clone, Copy)]
pub struct AudioTrack {
    pub channels: u8,
    /// Samples the decoder drops at the start (the encoder's lookahead).
    pub pre_skip: u16,
}

/// Why the file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MkvError {
    #[error("writing the file: {0}")]
    Io(#[from] io::Error),
    #[error("the first video frame must be an IDR with SPS and PPS in front")]
    NoParameterSets,
    #[error("no video frame was recorded")]
    NoVideo,
}

struct Block {
    track: u8,
    keyframe: bool,
    data: Vec<u8>,
}

/// Where the patched-at-the-end fields live, once the header is out.
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
    /// The first IDR in the cluster, for the Cues.
    keyframe_at: Option<u64>,
}

/// Writes one recording. Call [`MkvWriter::video`] and [`MkvWriter::audio`] as packets come,
/// then [`MkvWriter::finish`].
pub struct MkvWriter<W: Write + Seek> {
    out: W,
    video: VideoTrack,
    audio: Option<AudioTrack>,
    layout: Option<Layout>,
    queue: BTreeMap<(u64, u64), Block>,
    seq: u64,
    latest: [Option<u64>; 2],
    cluster: Option<Cluster>,
    cues: Vec<(u64, u64)>,
    end_ms: u64,
    /// Blocks written per track (video, audio).
    pub written: [u64; 2],
}

impl<W: Write + Seek> MkvWriter<W> {
    pub fn new(out: W, video: VideoTrack, audio: Option<AudioTrack>) -> Self {
        Self {
            out,
            video,
            audio,
            layout: None,
            queue: BTreeMap::new(),
            seq: 0,
            latest: [None, None],
            cluster: None,
            cues: Vec::new(),
            end_ms: 0,
            written: [0, 0],
        }
    }

    /// Sets the picture size the track declares, until the header is written (at the first
    /// frame): a y4m file or an HDMI input brings its own size.
    pub fn set_video_size(&mut self, width: u32, height: u32) {
        if self.layout.is_none() {
            self.video.width = width;
            self.video.height = height;
        }
    }

    /// Adds an encoded video frame (Annex B) at `ms`. The first must be an IDR carrying SPS
    /// and PPS: they become the track's avcC.
    pub fn video(&mut self, ms: u64, annex_b: &[u8], keyframe: bool) -> Result<(), MkvError> {
        if self.layout.is_none() {
            let avcc = avc_config(annex_b).ok_or(MkvError::NoParameterSets)?;
            self.write_header(&avcc)?;
        }
        // Matroska's AVC is length-prefixed (4-byte lengths, as the avcC says).
        let mut data = Vec::with_capacity(annex_b.len() + 16);
        for unit in nal_units(annex_b) {
            data.extend_from_slice(&(unit.len() as u32).to_be_bytes());
            data.extend_from_slice(unit);
        }
        self.end_ms = self
            .end_ms
            .max(ms + 1000 / u64::from(self.video.fps.max(1)));
        self.enqueue(ms, VIDEO_TRACK, keyframe, data)
    }

    /// Adds a 20 ms Opus packet at `ms`.
    pub fn audio(&mut self, ms: u64, packet: &[u8]) -> Result<(), MkvError> {
        self.end_ms = self.end_ms.max(ms + 20);
        self.enqueue(ms, AUDIO_TRACK, true, packet.to_vec())
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
        let slot = &mut self.latest[usize::from(track - 1)];
        *slot = Some(slot.map_or(ms, |t| t.max(ms)));
        if self.layout.is_none() {
            return Ok(()); // audio before the first keyframe waits for the header
        }
        // A block may go once every track has reached its time (no earlier one can come).
        let horizon = match (self.latest[0], self.audio.and(self.latest[1])) {
            (Some(v), Some(a)) => v.min(a),
            (Some(v), None) if self.audio.is_none() => v,
            _ => 0,
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

    fn write_block(&mut self, ms: u64, block: Block) -> Result<(), MkvError> {
        let new_cluster = match &self.cluster {
            None => true,
            Some(c) => {
                (block.track == VIDEO_TRACK && block.keyframe && c.has_video)
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
                keyframe_at: None,
            });
        }
        let cluster = self.cluster.as_mut().expect("opened above");
        if block.track == VIDEO_TRACK {
            cluster.has_video = true;
            if block.keyframe && cluster.keyframe_at.is_none() {
                cluster.keyframe_at = Some(ms);
            }
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
        self.written[usize::from(block.track - 1)] += 1;
        Ok(())
    }

    fn flush_cluster(&mut self) -> Result<(), MkvError> {
        let (Some(cluster), Some(layout)) = (self.cluster.take(), &self.layout) else {
            return Ok(());
        };
        let position = self.out.stream_position()? - layout.segment_data_at;
        if let Some(at) = cluster.keyframe_at {
            self.cues.push((at, position));
        }
        let mut head = Vec::with_capacity(12);
        put_id(&mut head, id::CLUSTER);
        put_size(&mut head, cluster.body.len() as u64);
        self.out.write_all(&head)?;
        self.out.write_all(&cluster.body)?;
        Ok(())
    }

    fn write_header(&mut self, avcc: &[u8]) -> Result<(), MkvError> {
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

        let tracks = self.tracks(avcc);
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
        buf.extend_from_slice(&seek);
        buf.extend_from_slice(&info);
        buf.extend_from_slice(&tracks);
        self.out.write_all(&buf)?;
        self.layout = Some(Layout {
            segment_size_at,
            segment_data_at,
            duration_at,
            cues_position_at,
        });
        Ok(())
    }

    fn tracks(&self, avcc: &[u8]) -> Vec<u8> {
        let v = self.video;
        let mut buf = Vec::new();
        put_master(&mut buf, id::TRACKS, |b| {
            put_master(b, id::TRACK_ENTRY, |b| {
                put_uint(b, id::TRACK_NUMBER, u64::from(VIDEO_TRACK));
                put_uint(b, id::TRACK_UID, u64::from(VIDEO_TRACK));
                put_uint(b, id::TRACK_TYPE, 1);
                put_uint(b, id::FLAG_LACING, 0);
                put_uint(
                    b,
                    id::DEFAULT_DURATION,
                    1_000_000_000 / u64::from(v.fps.max(1)),
                );
                put_str(b, id::CODEC_ID, "V_MPEG4/ISO/AVC");
                put_bytes(b, id::CODEC_PRIVATE, avcc);
                put_master(b, id::VIDEO, |b| {
                    put_uint(b, id::PIXEL_WIDTH, u64::from(v.width));
                    put_uint(b, id::PIXEL_HEIGHT, u64::from(v.height));
                });
            });
            if let Some(a) = self.audio {
                put_master(b, id::TRACK_ENTRY, |b| {
                    put_uint(b, id::TRACK_NUMBER, u64::from(AUDIO_TRACK));
                    put_uint(b, id::TRACK_UID, u64::from(AUDIO_TRACK));
                    put_uint(b, id::TRACK_TYPE, 2);
                    put_uint(b, id::FLAG_LACING, 0);
                    put_str(b, id::CODEC_ID, "A_OPUS");
                    put_bytes(b, id::CODEC_PRIVATE, &opus_head(a));
                    // Matroska's Opus mapping: the pre-skip in ns, and 80 ms pre-roll.
                    put_uint(
                        b,
                        id::CODEC_DELAY,
                        u64::from(a.pre_skip) * 1_000_000_000 / 48_000,
                    );
                    put_uint(b, id::SEEK_PRE_ROLL, 80_000_000);
                    put_master(b, id::AUDIO, |b| {
                        put_float(b, id::SAMPLING_FREQUENCY, 48_000.0);
                        put_uint(b, id::CHANNELS, u64::from(a.channels));
                    });
                });
            }
        });
        buf
    }

    /// Writes what is queued, the Cues, and the sizes and Duration. Returns the duration in
    /// milliseconds and the output.
    pub fn finish(mut self) -> Result<(u64, W), MkvError> {
        if self.layout.is_none() {
            return Err(MkvError::NoVideo);
        }
        while let Some((ms, block)) = self.queue.pop_first().map(|((ms, _), b)| (ms, b)) {
            self.write_block(ms, block)?;
        }
        self.flush_cluster()?;
        let layout = self.layout.take().expect("checked above");
        let cues_at = self.out.stream_position()? - layout.segment_data_at;
        let mut cues = Vec::new();
        put_master(&mut cues, id::CUES, |b| {
            for &(time, position) in &self.cues {
                put_master(b, id::CUE_POINT, |b| {
                    put_uint(b, id::CUE_TIME, time);
                    put_master(b, id::CUE_TRACK_POSITIONS, |b| {
                        put_uint(b, id::CUE_TRACK, u64::from(VIDEO_TRACK));
                        put_uint(b, id::CUE_CLUSTER_POSITION, position);
                    });
                });
            }
        });
        self.out.write_all(&cues)?;
        let end = self.out.stream_position()?;
        let patch = |out: &mut W, at: u64, bytes: &[u8]| -> io::Result<()> {
            out.seek(SeekFrom::Start(at))?;
            out.write_all(bytes)
        };
        patch(
            &mut self.out,
            layout.cues_position_at,
            &cues_at.to_be_bytes(),
        )?;
        patch(
            &mut self.out,
            layout.duration_at,
            &(self.end_ms as f64).to_be_bytes(),
        )?;
        let mut size = Vec::new();
        super::ebml::put_size_fixed(&mut size, end - layout.segment_data_at, 8);
        patch(&mut self.out, layout.segment_size_at, &size)?;
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()?;
        Ok((self.end_ms, self.out))
    }
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
