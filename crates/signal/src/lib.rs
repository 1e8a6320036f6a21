//! `roombox-signal`: rooms over WebSocket (protocol v1, docs/protocol.md) and the web client.
//!
//! Used as a binary (deployed on Render, or self-hosted) and as a library by `roombox demo`,
//! which runs the server in-process beside the box.

mod conn;
mod http;
mod metrics;
mod outbox;
mod ratelimit;
mod rooms;
mod turn;

pub use ratelimit::RateConfig;
pub use roombox_protocol as protocol;
pub use turn::{TurnConfigError, TurnRest};

use metrics::Metrics;
use roombox_protocol::IceServer;
use rooms::Rooms;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, Clone)]
pub struct Config {
    /// Peers a room holds at most.
    pub max_peers: usize,
    /// Handed to every client in `welcome`.
    pub ice_servers: Vec<IceServer>,
    /// TURN servers: every `welcome` gets credentials of its own for them (see `turn`).
    pub turn: Option<TurnRest>,
    /// How often the server pings each socket; three silent intervals close it.
    pub ping_interval: Duration,
    pub rate: RateConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_peers: 6,
            ice_servers: default_ice_servers(),
            turn: None,
            ping_interval: Duration::from_secs(5),
            rate: RateConfig::default(),
        }
    }
}

/// Google's public STUN servers, as in the architecture plan.
pub fn default_ice_servers() -> Vec<IceServer> {
    vec![IceServer {
        urls: vec![
            "stun:stun.l.google.com:19302".into(),
            "stun:stun1.l.google.com:19302".into(),
        ],
        username: None,
        credential: None,
    }]
}

/// State every connection and route shares.
pub(crate) struct Shared {
    config: Config,
    rooms: Mutex<Rooms>,
    metrics: Metrics,
    shutdown: CancellationToken,
    sockets: TaskTracker,
}

impl Shared {
    fn rooms(&self) -> MutexGuard<'_, Rooms> {
        // A panic while holding the lock would be a bug in rooms.rs; the table stays usable.
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Serves until `shutdown` resolves, then closes every socket with 1001 (going away) and
/// waits briefly for them to finish.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        rooms: Mutex::new(Rooms::new(config.max_peers)),
        config,
        metrics: Metrics::default(),
        shutdown: CancellationToken::new(),
        sockets: TaskTracker::new(),
    });
    let app = http::router(shared.clone());
    let token = shared.shutdown.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        token.cancel();
    });
    server.await?;
    shared.sockets.close();
    if tokio::time::timeout(Duration::from_secs(3), shared.sockets.wait())
        .await
        .is_err()
    {
        tracing::warn!("some sockets did not close in time");
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
