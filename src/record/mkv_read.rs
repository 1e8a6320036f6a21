//! A small Matroska reader for the tests: it walks the EBML elements the writer produces,
//! checks the structure (the Segment's size patched to the file's end, the SeekHead's Cues
//! entry and every cue pointing at what they name, blocks in time order) and returns the
//! tracks, the blocks and the cues. Void elements are skipped, as any reader skips them.

/// Reads a variable-size integer; returns (value with the marker removed, length).
pub fn vint(b: &[u8]) -> (u64, usize) {
    let len = b[0].leading_zeros() as usize + 1;
    let mut v = u64::from(b[0]) & (0xff >> len);
    for &x in &b[1..len] {
        v = (v << 8) | u64::from(x);
    }
    (v, len)
}

/// Reads an element ID (marker kept, as IDs are written).
pub fn read_id(b: &[u8]) -> (u32, usize) {
    let len = b[0].leading_zeros() as usize + 1;
    let id = b[..len].iter().fold(0u32, |a, &x| (a << 8) | u32::from(x));
    (id, len)
}

/// (id, offset of the body, body) of each element in `b`.
pub fn children(b: &[u8]) -> Vec<(u32, usize, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let (id, il) = read_id(&b[at..]);
        let (size, sl) = vint(&b[at + il..]);
        let body_at = at + il + sl;
        let end = body_at + size as usize;
        assert!(end <= b.len(), "element {id:#x} runs past its parent");
        out.push((id, body_at, &b[body_at..end]));
        at = end;
    }
    out
}

pub fn find<'a>(elems: &[(u32, usize, &'a [u8])], id: u32) -> Vec<&'a [u8]> {
    elems.iter().filter(|e| e.0 == id).map(|e| e.2).collect()
}

pub fn uint(b: &[u8]) -> u64 {
    b.iter().fold(0, |a, &x| (a << 8) | u64::from(x))
}

pub const VOID: u32 = 0xec;

#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    pub number: u8,
    /// 1 video, 2 audio.
    pub kind: u64,
    pub codec: String,
    pub codec_private: Vec<u8>,
    pub size: Option<(u64, u64)>,
    pub name: Option<String>,
    pub channels: Option<u64>,
    pub default_duration: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct BlockInfo {
    pub track: u8,
    pub ms: i64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

#[derive(Debug)]
pub struct Parsed {
    pub tracks: Vec<TrackInfo>,
    pub blocks: Vec<BlockInfo>,
    pub duration_ms: f64,
    /// (time, track) of each cue point; each was checked to point at a Cluster.
    pub cues: Vec<(u64, u8)>,
    pub clusters: usize,
}

impl Parsed {
    pub fn track(&self, number: u8) -> Option<&TrackInfo> {
        self.tracks.iter().find(|t| t.number == number)
    }

    pub fn blocks_of(&self, track: u8) -> impl Iterator<Item = &BlockInfo> {
        self.blocks.iter().filter(move |b| b.track == track)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("UTF-8")
}

/// Parses a finished file, asserting its structure.
pub fn parse(file: &[u8]) -> Parsed {
    let top = children(file);
    assert_eq!(top.len(), 2, "EBML header and one Segment");
    assert_eq!(find(&children(top[0].2), 0x4282), [b"matroska"]);
    let (segment_id, segment_at, segment) = top[1];
    assert_eq!(segment_id, 0x18538067);
    assert_eq!(
        segment_at + segment.len(),
        file.len(),
        "segment size patched"
    );
    let parts = children(segment);

    let info = children(find(&parts, 0x1549a966)[0]);
    assert_eq!(uint(find(&info, 0x2ad7b1)[0]), 1_000_000);
    let duration_ms = f64::from_be_bytes(find(&info, 0x4489)[0].try_into().expect("8 bytes"));

    let tracks_el = find(&parts, 0x1654ae6b);
    assert_eq!(tracks_el.len(), 1);
    let tracks = find(&children(tracks_el[0]), 0xae)
        .into_iter()
        .map(|e| {
            let e = children(e);
            let one = |id| find(&e, id).first().copied();
            let video = one(0xe0).map(children);
            let audio = one(0xe1).map(children);
            TrackInfo {
                number: uint(one(0xd7).expect("TrackNumber")) as u8,
                kind: uint(one(0x83).expect("TrackType")),
                codec: text(one(0x86).expect("CodecID")),
                codec_private: one(0x63a2).map(<[u8]>::to_vec).unwrap_or_default(),
                size: video.map(|v| (uint(find(&v, 0xb0)[0]), uint(find(&v, 0xba)[0]))),
                name: one(0x536e).map(text),
                channels: audio.map(|a| uint(find(&a, 0x9f)[0])),
                default_duration: one(0x23e383).map(uint),
            }
        })
        .collect();

    // The SeekHead's Cues entry points at the Cues.
    let seeks: Vec<_> = find(&children(find(&parts, 0x114d9b74)[0]), 0x4dbb)
        .into_iter()
        .map(children)
        .collect();
    let cues_pos = seeks
        .iter()
        .find(|s| find(s, 0x53ab)[0] == [0x1c, 0x53, 0xbb, 0x6b])
        .map(|s| uint(find(s, 0x53ac)[0]))
        .expect("a Seek for the Cues") as usize;
    assert_eq!(
        read_id(&segment[cues_pos..]).0,
        0x1c53bb6b,
        "Cues where said"
    );

    let mut blocks = Vec::new();
    let clusters: Vec<_> = parts.iter().filter(|p| p.0 == 0x1f43b675).collect();
    let mut last = i64::MIN;
    for (_, _, body) in &clusters {
        let elems = children(body);
        let base = uint(find(&elems, 0xe7)[0]) as i64;
        for block in find(&elems, 0xa3) {
            let ms = base + i64::from(i16::from_be_bytes([block[1], block[2]]));
            assert!(ms >= last, "block at {ms} after {last}");
            last = ms;
            blocks.push(BlockInfo {
                track: block[0] & 0x7f,
                ms,
                keyframe: block[3] & 0x80 != 0,
                data: block[4..].to_vec(),
            });
        }
    }

    let cue_points: Vec<_> = find(&children(children(&segment[cues_pos..])[0].2), 0xbb)
        .into_iter()
        .map(children)
        .collect();
    let cues = cue_points
        .iter()
        .map(|cp| {
            let pos = children(find(cp, 0xb7)[0]);
            let at = uint(find(&pos, 0xf1)[0]) as usize;
            assert_eq!(
                read_id(&segment[at..]).0,
                0x1f43b675,
                "a cue points at a Cluster"
            );
            (uint(find(cp, 0xb3)[0]), uint(find(&pos, 0xf7)[0]) as u8)
        })
        .collect();
    Parsed {
        tracks,
        blocks,
        duration_ms,
        cues,
        clusters: clusters.len(),
    }
}

/// The Tracks element's children that are Voids (tracks the writer took back), for tests that
/// check what was left in the file.
pub fn voids_in_tracks(file: &[u8]) -> usize {
    let top = children(file);
    let parts = children(top[1].2);
    let tracks = children(find(&parts, 0x1654ae6b)[0]);
    tracks.iter().filter(|e| e.0 == VOID).count()
}

/// A length-prefixed (avcC, 4-byte lengths) access unit back in Annex B.
pub fn annex_b(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u32::from_be_bytes(data[..4].try_into().expect("4 bytes")) as usize;
        assert!(
            4 + len <= data.len(),
            "a NAL unit's length runs past the block"
        );
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&data[4..4 + len]);
        data = &data[4 + len..];
    }
    assert!(data.is_empty(), "bytes left after the last NAL unit");
    out
}
