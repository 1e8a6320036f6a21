//! A minimal STUN Binding client (RFC 5389) to learn the box's server-reflexive address.
//!
//! str0m answers STUN for ICE itself but does not gather candidates; this is the few lines
//! of the protocol gathering needs, rather than a dependency: a request with a random
//! transaction id (given by the caller), and XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) read from the success response.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const MAGIC_COOKIE: u32 = 0x2112_A442;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const HEADER_LEN: usize = 20;

pub type TransactionId = [u8; 12];

/// A Binding request with the caller's transaction id (random: the call core's seeded rng).
pub fn binding_request(txid: TransactionId) -> [u8; HEADER_LEN] {
    let mut msg = [0u8; HEADER_LEN];
    msg[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Message length 0: no attributes.
    msg[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    msg[8..20].copy_from_slice(&txid);
    msg
}

/// The mapped address from a Binding success response to `txid`; None for anything else.
pub fn parse_binding_success(packet: &[u8], txid: &TransactionId) -> Option<SocketAddr> {
    if packet.len() < HEADER_LEN
        || u16::from_be_bytes([packet[0], packet[1]]) != BINDING_SUCCESS
        || u32::from_be_bytes(packet[4..8].try_into().ok()?) != MAGIC_COOKIE
        || &packet[8..20] != txid
    {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let body = packet.get(HEADER_LEN..HEADER_LEN + len)?;
    let mut plain = None;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + alen)?;
        match kind {
            ATTR_XOR_MAPPED_ADDRESS => return parse_address(value, Some(txid)),
            ATTR_MAPPED_ADDRESS => plain = parse_address(value, None),
            _ => {}
        }
        at += 4 + alen.div_ceil(4) * 4; // attributes are padded to 4 bytes
    }
    plain
}

/// Whether a datagram looks like STUN addressed to us as a client (a response, not a request
/// that ICE must answer).
pub fn is_binding_response(packet: &[u8]) -> bool {
    packet.len() >= HEADER_LEN && u16::from_be_bytes([packet[0], packet[1]]) == BINDING_SUCCESS
}

fn parse_address(value: &[u8], xor_with: Option<&TransactionId>) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let mut port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]);
    let cookie = MAGIC_COOKIE.to_be_bytes();
    if xor_with.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match family {
        0x01 => {
            let mut b: [u8; 4] = value.get(4..8)?.try_into().ok()?;
            if xor_with.is_some() {
                b.iter_mut().zip(cookie).for_each(|(x, k)| *x ^= k);
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        0x02 => {
            let mut b: [u8; 16] = value.get(4..20)?.try_into().ok()?;
            if let Some(txid) = xor_with {
                let key: Vec<u8> = cookie.iter().chain(txid.iter()).copied().collect();
                b.iter_mut().zip(key).for_each(|(x, k)| *x ^= k);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Host and port of a `stun:` URL (`stun:host[:port]`, default port 3478); None for others.
pub fn stun_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("stun:")?;
    let rest = rest.split('?').next()?;
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?))
        }
        _ => Some((rest.trim_matches(['[', ']']).to_owned(), 3478)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a success response as a STUN server would, with XOR-MAPPED-ADDRESS.
    fn response(txid: &TransactionId, addr: SocketAddr) -> Vec<u8> {
        let mut value = vec![0u8, 0];
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let cookie = MAGIC_COOKIE.to_be_bytes();
        match addr.ip() {
            IpAddr::V4(ip) => {
                value[1] = 1;
                value.extend(port.to_be_bytes());
                value.extend(ip.octets().iter().zip(cookie).map(|(a, k)| a ^ k));
            }
            IpAddr::V6(ip) => {
                value[1] = 2;
                value.extend(port.to_be_bytes());
                let key: Vec<u8> = cookie.iter().chain(txid).copied().collect();
                value.extend(ip.octets().iter().zip(key).map(|(a, k)| a ^ k));
            }
        }
        // An unknown attribute with padding first, to exercise the walk.
        let mut body = vec![0x80, 0x22, 0, 3, b'a', b'b', b'c', 0];
        body.extend(ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
        body.extend((value.len() as u16).to_be_bytes());
        body.extend(value);
        let mut msg = Vec::new();
        msg.extend(BINDING_SUCCESS.to_be_bytes());
        msg.extend((body.len() as u16).to_be_bytes());
        msg.extend(MAGIC_COOKIE.to_be_bytes());
        msg.extend(txid);
        msg.extend(body);
        msg
    }

    #[test]
    fn request_layout() {
        let txid = [7u8; 12];
        let req = binding_request(txid);
        assert_eq!(&req[0..4], &[0, 1, 0, 0]);
        assert_eq!(&req[4..8], &MAGIC_COOKIE.to_be_bytes());
        assert_eq!(&req[8..], &txid);
    }

    #[test]
    fn parses_xor_mapped_v4_and_v6() {
        let txid = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        for addr in ["203.0.113.7:54321", "[2001:db8::42]:3478"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(
                parse_binding_success(&response(&txid, addr), &txid),
                Some(addr)
            );
        }
    }

    #[test]
    fn ignores_other_transactions_and_garbage() {
        let txid = [1u8; 12];
        let other = [2u8; 12];
        let r = response(&other, "203.0.113.7:1".parse().unwrap());
        assert_eq!(parse_binding_success(&r, &txid), None);
        assert_eq!(parse_binding_success(&r[..10], &other), None);
        assert_eq!(parse_binding_success(&[0xff; 40], &txid), None);
    }

    #[test]
    fn stun_urls() {
        assert_eq!(
            stun_host_port("stun:stun.l.google.com:19302"),
            Some(("stun.l.google.com".into(), 19302))
        );
        assert_eq!(
            stun_host_port("stun:example.org"),
            Some(("example.org".into(), 3478))
        );
        assert_eq!(
            stun_host_port("stun:[2001:db8::1]:5000"),
            Some(("2001:db8::1".into(), 5000))
        );
        assert_eq!(stun_host_port("turn:example.org"), None);
    }
}
