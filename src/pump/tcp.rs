//! Streams to TURN servers (TURN over TCP, and over TLS with rustls for `turns:`): connect,
//! carry bytes both ways, report what happened. One task per stream; the call core sees only
//! `TcpEvent`s and plaintext.

use crate::calls::turn::{TcpCommand, TcpEvent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// A TURN server that does not accept within this is reported closed (and retried later).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Streams {
    writers: HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>,
    events: mpsc::Sender<(u64, TcpEvent)>,
    /// Loaded at the first `turns:` stream (it reads the system's CA bundle).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Streams {
    pub fn new() -> (Streams, mpsc::Receiver<(u64, TcpEvent)>) {
        let (events, rx) = mpsc::channel(256);
        let streams = Streams {
            writers: HashMap::new(),
            events,
            tls: None,
        };
        (streams, rx)
    }

    pub fn command(&mut self, c: TcpCommand) {
        match c {
            TcpCommand::Connect { conn, server, tls } => {
                let (tx, rx) = mpsc::unbounded_channel();
                self.writers.insert(conn, tx);
                let tls = tls.map(|name| {
                    let config = self.tls.get_or_insert_with(super::tls::turn_tls_config);
                    (name, config.clone())
                });
                tokio::spawn(carry(conn, server, tls, rx, self.events.clone()));
            }
            // A stream the core already closed may still get a send: dropped.
            TcpCommand::Send { conn, data } => {
                if let Some(w) = self.writers.get(&conn) {
                    let _ = w.send(data);
                }
            }
            // Dropping the writer's sender ends the writer, which shuts the stream down.
            TcpCommand::Close { conn } => {
                self.writers.remove(&conn);
            }
        }
    }
}

async fn carry(
    conn: u64,
    server: SocketAddr,
    tls: Option<(String, Arc<rustls::ClientConfig>)>,
    outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::Sender<(u64, TcpEvent)>,
) {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(%server, "cannot connect to the TURN server: {e}");
            let _ = events.send((conn, TcpEvent::Closed)).await;
            return;
        }
        Err(_) => {
            tracing::info!(%server, "the TURN server did not accept within {CONNECT_TIMEOUT:?}");
            let _ = events.send((conn, TcpEvent::Closed)).await;
            return;
        }
    };
    // Media goes through this stream: no Nagle delay.
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else {
        let _ = events.send((conn, TcpEvent::Closed)).await;
        return;
    };
    let Some((name, config)) = tls else {
        return pipe(conn, local, stream, outgoing, events).await;
    };
    let handshake = async {
        let name = ServerName::try_from(name.clone()).map_err(|e| e.to_string())?;
        let connector = TlsConnector::from(config);
        tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream))
            .await
            .map_err(|_| "TLS handshake timed out".to_owned())?
            .map_err(|e| e.to_string())
    };
    match handshake.await {
        Ok(stream) => pipe(conn, local, stream, outgoing, events).await,
        Err(e) => {
            // A certificate that does not verify lands here: say which server and why.
            tracing::warn!(%server, %name, "TLS to the TURN server failed: {e}");
            let _ = events.send((conn, TcpEvent::Closed)).await;
        }
    }
}

/// Carries bytes between the stream and the core until either side ends.
async fn pipe<S: AsyncRead + AsyncWrite>(
    conn: u64,
    local: SocketAddr,
    stream: S,
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
    events: mpsc::Sender<(u64, TcpEvent)>,
) {
    if events
        .send((conn, TcpEvent::Connected { local }))
        .await
        .is_err()
    {
        return;
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    let writing = async {
        while let Some(data) = outgoing.recv().await {
            if writer.write_all(&data).await.is_err() || writer.flush().await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    };
    let reading = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => {
                    tracing::debug!(conn, "the TURN server closed the stream");
                    return;
                }
                Err(e) => {
                    tracing::debug!(conn, "TURN stream: {e}");
                    return;
                }
                Ok(n) => {
                    if events
                        .send((conn, TcpEvent::Data(buf[..n].to_vec())))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    // Either side ending ends the stream.
    tokio::select! {
        () = writing => {}
        () = reading => {}
    }
    let _ = events.send((conn, TcpEvent::Closed)).await;
}
