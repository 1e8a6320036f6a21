//! The box's UDP sockets: one per local address, shared by every session (str0m tells which
//! session a datagram belongs to), so STUN gathering and host candidates are done once.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

pub use crate::calls::Datagram;

/// The addresses to gather host candidates on: every up IPv4 interface but loopback, and
/// loopback too when asked (tests run in a namespace that has only loopback).
pub fn candidate_addresses(include_loopback: bool) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|iface| iface.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .collect();
    if include_loopback {
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    ips.sort();
    ips.dedup();
    ips
}

/// Binds a socket on each address and starts a reader for each; datagrams arrive on the
/// returned channel tagged with the local address they came in on.
pub async fn bind_all(
    ips: &[IpAddr],
) -> std::io::Result<(Vec<Arc<UdpSocket>>, mpsc::Receiver<Datagram>)> {
    let (tx, rx) = mpsc::channel(1024);
    let mut sockets = Vec::new();
    for ip in ips {
        let socket = Arc::new(UdpSocket::bind(SocketAddr::new(*ip, 0)).await?);
        let local = socket.local_addr()?;
        tracing::info!(%local, "UDP socket for WebRTC");
        let reader = socket.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                match reader.recv_from(&mut buf).await {
                    Ok((n, source)) => {
                        let d = Datagram {
                            source,
                            destination: local,
                            contents: buf[..n].to_vec(),
                        };
                        if tx.send(d).await.is_err() {
                            return;
                        }
                    }
                    // ICMP errors surface here on Linux; they concern one packet, not the socket.
                    Err(e) => tracing::debug!(%local, "UDP receive: {e}"),
                }
            }
        });
        sockets.push(socket);
    }
    Ok((sockets, rx))
}
