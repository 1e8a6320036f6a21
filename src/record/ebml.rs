//! The few EBML (RFC 8794) pieces a Matroska writer needs: element IDs, variable-size
//! integers for sizes, and elements built in memory so their sizes are known when written.

/// Appends an element ID. IDs carry their own length marker, so their bytes go out as is.
pub fn put_id(buf: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    buf.extend_from_slice(&bytes[skip..]);
}

/// Appends `size` as the shortest variable-size integer (1 to 8 bytes). The all-ones value
/// of each length is reserved for "unknown", so it moves up a length.
pub fn put_size(buf: &mut Vec<u8>, size: u64) {
    let len = (1..=8u32)
        .find(|&n| size < (1u64 << (7 * n)) - 1)
        .expect("sizes stay below 2^56 - 1");
    put_size_fixed(buf, size, len as usize);
}

/// Appends `size` as a variable-size integer of exactly `len` bytes (for values patched in
/// place later, such as the Segment's size).
pub fn put_size_fixed(buf: &mut Vec<u8>, size: u64, len: usize) {
    debug_assert!((1..=8).contains(&len) && size < (1u64 << (7 * len)) - 1);
    let marked = size | (1u64 << (7 * len));
    buf.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

/// The 8-byte "unknown size" value.
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

/// Appends an element with `data` as its body.
pub fn put_bytes(buf: &mut Vec<u8>, id: u32, data: &[u8]) {
    put_id(buf, id);
    put_size(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// Appends an unsigned integer element in the fewest bytes (at least one).
pub fn put_uint(buf: &mut Vec<u8>, id: u32, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    put_bytes(buf, id, &bytes[skip..]);
}

/// Appends an unsigned integer element in exactly 8 bytes (patched in place later).
pub fn put_uint8(buf: &mut Vec<u8>, id: u32, v: u64) {
    put_bytes(buf, id, &v.to_be_bytes());
}

/// Appends a 64-bit float element.
pub fn put_float(buf: &mut Vec<u8>, id: u32, v: f64) {
    put_bytes(buf, id, &v.to_be_bytes());
}

/// Appends a string element (ASCII or UTF-8).
pub fn put_str(buf: &mut Vec<u8>, id: u32, s: &str) {
    put_bytes(buf, id, s.as_bytes());
}

/// Appends a master element whose children `body` writes.
pub fn put_master(buf: &mut Vec<u8>, id: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    put_bytes(buf, id, &inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(v: u64) -> Vec<u8> {
        let mut b = Vec::new();
        put_size(&mut b, v);
        b
    }

    #[test]
    fn sizes_are_shortest_vints() {
        assert_eq!(size(0), [0x80]);
        assert_eq!(size(126), [0xfe]);
        // 127 is all ones in one byte ("unknown"), so it takes two.
        assert_eq!(size(127), [0x40, 0x7f]);
        assert_eq!(size(16_382), [0x7f, 0xfe]);
        assert_eq!(size(16_383), [0x20, 0x3f, 0xff]);
        let mut b = Vec::new();
        put_size_fixed(&mut b, 5, 8);
        assert_eq!(b, [0x01, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn elements_carry_id_size_and_body() {
        let mut b = Vec::new();
        put_uint(&mut b, 0x4286, 1); // EBMLVersion
        assert_eq!(b, [0x42, 0x86, 0x81, 0x01]);
        b.clear();
        put_uint(&mut b, 0xd7, 0); // TrackNumber 0: one zero byte
        assert_eq!(b, [0xd7, 0x81, 0x00]);
        b.clear();
        put_uint(&mut b, 0x2ad7b1, 1_000_000); // TimestampScale
        assert_eq!(b, [0x2a, 0xd7, 0xb1, 0x83, 0x0f, 0x42, 0x40]);
        b.clear();
        put_master(&mut b, 0x1a45dfa3, |b| put_str(b, 0x4282, "matroska"));
        assert_eq!(&b[..5], [0x1a, 0x45, 0xdf, 0xa3, 0x8b]);
        assert_eq!(&b[5..8], [0x42, 0x82, 0x88]);
        assert_eq!(&b[8..], b"matroska");
        b.clear();
        put_float(&mut b, 0xb5, 48_000.0);
        assert_eq!(b[..2], [0xb5, 0x88]);
        assert_eq!(f64::from_be_bytes(b[2..].try_into().unwrap()), 48_000.0);
    }
}
