use super::*;

fn key(kid: u8) -> SenderKey {
    SenderKey {
        kid,
        key: [kid; 32],
    }
}

/// An access unit shaped like an encoder's: SPS, PPS, an IDR slice and a second slice, with
/// payloads full of the byte patterns escaping is about.
fn access_unit() -> Vec<u8> {
    let mut au = vec![0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40];
    au.extend([0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    au.extend([0, 0, 1, 0x65, 0x88, 0x84]);
    for i in 0..600u32 {
        au.push(match i % 7 {
            0 | 1 => 0,
            2 => 3,
            _ => (i * 37 % 251) as u8 + 1,
        });
    }
    au.extend([0, 0, 1, 0x65, 0x00, 0x9a, 0x00, 0x00, 0x03, 0x01, 0x55]);
    au
}

fn counter_iv() -> impl FnMut() -> [u8; 12] {
    let mut n = 0u8;
    move || {
        n += 1;
        [n; 12]
    }
}

#[test]
fn an_access_unit_round_trips_with_its_parameter_sets_and_headers_clear() {
    let au = access_unit();
    let sealed = key(3).cipher().seal_h264(&au, counter_iv());
    let plain_units = nal_units(&au);
    let sealed_units = nal_units(&sealed);
    assert_eq!(
        sealed_units.len(),
        plain_units.len(),
        "no start code emulated"
    );
    for ((sc_a, a), (sc_b, b)) in plain_units.iter().zip(&sealed_units) {
        assert_eq!(sc_a, sc_b);
        assert_eq!(a[0], b[0], "NAL headers clear");
        if is_slice(a) {
            assert_eq!(a[1], b[1], "the first slice-header byte clear");
            assert_ne!(a, b);
            assert!(b.len() >= a.len() + OVERHEAD);
            assert_ne!(*b.last().unwrap(), 0, "no NAL unit ends in zero");
        } else {
            assert_eq!(a, b, "SPS and PPS pass clear");
        }
    }
    let mut ring = KeyRing::default();
    ring.insert(key(3));
    assert_eq!(ring.open_h264(&sealed).unwrap(), au);
}

#[test]
fn a_frame_does_not_open_without_its_key_or_once_changed() {
    let au = access_unit();
    let sealed = key(3).cipher().seal_h264(&au, counter_iv());
    let mut other = KeyRing::default();
    other.insert(SenderKey {
        kid: 3,
        key: [9; 32],
    });
    assert!(other.open_h264(&sealed).is_none(), "wrong key");
    let mut empty = KeyRing::default();
    assert!(empty.open_h264(&sealed).is_none(), "no key");
    let mut ring = KeyRing::default();
    ring.insert(key(3));
    let mut changed = sealed.clone();
    let n = changed.len();
    changed[n - 40] ^= 0x10;
    assert!(ring.open_h264(&changed).is_none(), "altered");
    // The clear slice-header byte is authenticated too.
    let slice_at = sealed
        .windows(4)
        .position(|w| w == [0, 0, 1, 0x65])
        .unwrap()
        + 4;
    let mut header = sealed.clone();
    header[slice_at] ^= 0x01;
    assert!(ring.open_h264(&header).is_none(), "altered clear byte");
}

#[test]
fn opus_keeps_its_toc_byte_clear() {
    let frame = [0x78u8, 1, 2, 3, 0, 0, 0, 4];
    let sealed = key(1).cipher().seal_opus(&frame, [7; 12]);
    assert_eq!(sealed[0], 0x78);
    assert_eq!(sealed.len(), frame.len() + OVERHEAD);
    assert_eq!(*sealed.last().unwrap(), 1, "kid last");
    let mut ring = KeyRing::default();
    ring.insert(key(1));
    assert_eq!(ring.open_opus(&sealed).unwrap(), frame);
    let mut toc = sealed.clone();
    toc[0] = 0x79;
    assert!(ring.open_opus(&toc).is_none());
}

#[test]
fn receivers_ratchet_ahead_a_little_and_keep_four_keys() {
    let first = SenderKey::generate(254);
    let mut ring = KeyRing::default();
    ring.insert(first.clone());
    let two_on = first.ratchet().ratchet();
    assert_eq!(two_on.kid, 1, "after 255 comes 1");
    let frame = two_on.cipher().seal_opus(&[1, 2, 3], [1; 12]);
    assert_eq!(
        ring.open_opus(&frame).unwrap(),
        [1, 2, 3],
        "ratcheted by itself"
    );
    let three_on = two_on.ratchet().ratchet().ratchet();
    let far = three_on.cipher().seal_opus(&[1, 2, 3], [1; 12]);
    assert!(
        ring.open_opus(&far).is_none(),
        "three ahead: wait for the envelope"
    );
    // A fresh key (someone left) cannot be guessed; sent, it opens; old ones stay a while.
    let fresh = two_on.fresh();
    let sealed = fresh.cipher().seal_opus(&[4], [2; 12]);
    assert!(ring.open_opus(&sealed).is_none());
    ring.insert(fresh.clone());
    assert!(ring.open_opus(&sealed).is_some());
    assert!(
        ring.open_opus(&frame).is_some(),
        "the previous key kept for late frames"
    );
    let mut k = fresh;
    for _ in 0..4 {
        k = k.fresh();
        ring.insert(k.clone());
    }
    assert!(
        ring.open_opus(&frame).is_none(),
        "only the last four are kept"
    );
}

#[test]
fn escaping_undoes_exactly() {
    let samples: [&[u8]; 6] = [
        &[0, 0, 0],
        &[0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4],
        &[0, 0, 3, 0, 0, 3, 3],
        &[1, 0, 0],
        &[0; 9],
        &[],
    ];
    for s in samples {
        let mut out = Vec::new();
        escape_into(s, &mut out);
        assert!(
            !out.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2),
            "{s:?} -> {out:?}"
        );
        assert_eq!(unescape(&out), s, "{s:?}");
    }
}

#[test]
fn nal_units_split_on_three_and_four_byte_start_codes() {
    let s = [9, 9, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 2];
    let units = nal_units(&s);
    let got: Vec<(usize, &[u8])> = units.iter().map(|(sc, n)| (sc.len(), *n)).collect();
    assert_eq!(
        got,
        [
            (0, &[9u8, 9][..]),
            (4, &[0x67, 1][..]),
            (3, &[0x68, 2, 2][..])
        ]
    );
}
