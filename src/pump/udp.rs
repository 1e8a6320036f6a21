//! The box's UDP sockets: one per local address, shared by every session (str0m tells which
//! session a datagram belongs to), so STUN gathering and host candidates are done once. The
//! set follows the machine's addresses: `refresh` binds a socket for an address that appeared
//! and closes the one of an address that went.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use crate::calls::Datagram;

/// The addresses to gather host candidates on: every up interface's IPv4 address and global
/// or unique-local IPv6 address, not loopback (and not IPv6 link-local: it needs a scope the
/// candidate cannot carry); loopback too when asked (tests run in a namespace that has only
/// loopback).
pub fn candidate_addresses(include_loopback: bool) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|iface| iface.ip())
        .filter(|ip| match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
            IpAddr::V6(v6) => {
                !v6.is_loopback() && !v6.is_unspecified() && !v6.is_unicast_link_local()
            }
        })
        .collect();
    if include_loopback {
        ips.push(IpAddr::from([127, 0, 0, 1]));
    }
    ips.sort();
    ips.dedup();
    ips
}

struct Bound {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    reader: JoinHandle<()>,
}

/// The open sockets, by address; every datagram they receive goes to one channel, tagged with
/// the local address it came in on.
pub struct Sockets {
    include_loopback: bool,
    open: BTreeMap<IpAddr, Bound>,
    tx: mpsc::Sender<Datagram>,
}

impl Sockets {
    pub fn new(include_loopback: bool) -> (Sockets, mpsc::Receiver<Datagram>) {
        let (tx, rx) = mpsc::channel(1024);
        let sockets = Sockets {
            include_loopback,
            open: BTreeMap::new(),
            tx,
        };
        (sockets, rx)
    }

    /// Follows the machine's addresses; true when the set of sockets changed. An address
    /// that cannot be bound yet (IPv6 duplicate address detection) is tried again next time.
    pub async fn refresh(&mut self) -> bool {
        let ips = candidate_addresses(self.include_loopback);
        let gone: Vec<IpAddr> = (self.open.keys())
            .filter(|ip| !ips.contains(ip))
            .copied()
            .collect();
        for ip in &gone {
            if let Some(b) = self.open.remove(ip) {
                tracing::info!(local = %b.local, "address gone: UDP socket closed");
                b.reader.abort();
            }
        }
        let mut changed = !gone.is_empty();
        for ip in ips {
            if self.open.contains_key(&ip) {
                continue;
            }
            match self.bind(ip).await {
                Ok(b) => {
                    tracing::info!(local = %b.local, "UDP socket for WebRTC");
                    self.open.insert(ip, b);
                    changed = true;
                }
                Err(e) => tracing::warn!(%ip, "cannot bind a UDP socket yet: {e}"),
            }
        }
        changed
    }

    async fn bind(&self, ip: IpAddr) -> std::io::Result<Bound> {
        let socket = Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?);
        let local = socket.local_addr()?;
        let (reader, tx) = (socket.clone(), self.tx.clone());
        let reader = tokio::spawn(async move {
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
        Ok(Bound {
            socket,
            local,
            reader,
        })
    }

    /// The local addresses with a socket, sorted.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.open.values().map(|b| b.local).collect()
    }

    /// Sends from the socket of `source`; a gone address or a full buffer drops, as UDP does.
    pub fn send(&self, source: SocketAddr, destination: SocketAddr, contents: &[u8]) {
        let socket = self.open.get(&source.ip()).filter(|b| b.local == source);
        if let Some(Err(e)) = socket.map(|b| b.socket.try_send_to(contents, destination)) {
            tracing::trace!("UDP send to {destination}: {e}");
        }
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        for b in self.open.values() {
            b.reader.abort();
        }
    }
}
