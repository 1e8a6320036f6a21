//! The picture size an H.264 sequence parameter set declares (ITU-T H.264 7.3.2.1.1): what a
//! container needs to say about a stream it did not encode itself (a recording of what people
//! send the box). Only the fields in front of the size are read; VUI and the rest are not.

/// The width and height, after cropping, that `sps` (an SPS NAL unit, header byte included,
/// start code not) declares; None when it is not an SPS or is cut short.
pub fn picture_size(sps: &[u8]) -> Option<(u32, u32)> {
    if sps.first()? & 0x1f != super::h264::nal::SPS {
        return None;
    }
    let rbsp = unescape(&sps[1..]);
    let mut r = Bits::new(&rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = false;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            separate_planes = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            // seq_scaling_matrix_present_flag: the lists are skipped, not kept.
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue()? {
                r.se()?; // offset_for_ref_frame
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    // Cropping is in chroma samples (7.4.2.1.1: CropUnitX, CropUnitY).
    let fields = if frame_mbs_only { 1 } else { 2 };
    let (sub_width, sub_height) = match (chroma_format, separate_planes) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        // 4:4:4, and ChromaArrayType 0 (monochrome, or 4:4:4 as separate planes): in luma
        // samples.
        _ => (1, 1),
    };
    let width = (width_mbs * 16).checked_sub(sub_width * (left + right))?;
    let height =
        (fields * height_map_units * 16).checked_sub(sub_height * fields * (top + bottom))?;
    (width > 0 && height > 0).then_some((width, height))
}

/// The payload without emulation prevention bytes (00 00 03 -> 00 00).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// A big-endian bit reader with Exp-Golomb codes (9.1).
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, at: 0 }
    }

    fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.at / 8)?;
        let b = byte >> (7 - self.at % 8) & 1;
        self.at += 1;
        Some(b == 1)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |v, _| Some(v << 1 | u32::from(self.bit()?)))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        ((1u64 << zeros) - 1 + u64::from(rest)).try_into().ok()
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::h264::{nal, nal_type, nal_units};
    use crate::encode::openh264::grey_idr;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// SPSs written by x264 (ffmpeg's libx264), an encoder other than the box's: High with
    /// cropping (1088 coded lines shown as 1080), High 4:4:4 and 4:2:2 with odd crops,
    /// Constrained Baseline, and an interlaced (field) stream. Emulation prevention included.
    #[test]
    fn reads_the_size_of_other_encoders_sps() {
        for (sps, size) in [
            (
                "67640028acd940780227e5c044000003000400000300283c60c658",
                (1920, 1080),
            ),
            (
                "67f4000a919b28e4f1b1f808800000030080000005078912cb",
                (100, 50),
            ),
            (
                "677a0016bcd940a02fea2f0110000003001000000300a0f162d960",
                (638, 358),
            ),
            ("6742c00ad902c4ec044000000300400000030283c48992", (176, 144)),
            (
                "6764001eacd940b424d8088000000300800000190f8a14cb",
                (720, 576),
            ),
        ] {
            assert_eq!(picture_size(&hex(sps)), Some(size), "{sps}");
        }
    }

    #[test]
    fn reads_the_size_of_openh264s_sps() {
        for (w, h) in [(160, 90), (640, 360), (1280, 720), (1920, 1080), (66, 38)] {
            let au = grey_idr(w, h);
            let sps = nal_units(&au)
                .find(|u| nal_type(u) == Some(nal::SPS))
                .expect("an SPS in front of the IDR");
            assert_eq!(picture_size(sps), Some((w, h)));
        }
    }

    #[test]
    fn refuses_what_is_not_a_whole_sps() {
        assert_eq!(picture_size(&[]), None);
        assert_eq!(picture_size(&[0x68, 0xce, 0x3c, 0x80]), None, "a PPS");
        let sps = hex("6742c00ad902c4ec044000000300400000030283c48992");
        assert_eq!(picture_size(&sps[..5]), None, "cut short");
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 3]),
            [0, 0, 1, 0, 0, 0, 3]
        );
    }
}
