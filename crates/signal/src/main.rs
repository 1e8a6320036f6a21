//! `roombox-signal`: the signaling server binary.

use anyhow::Context;
use clap::Parser;
use roombox_signal::{default_ice_servers, protocol::IceServer, Config, RateConfig, TurnRest};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "roombox signaling server: rooms over WebSocket, and the web client"
)]
struct Args {
    /// Address to listen on. Default: 0.0.0.0:$PORT when PORT is set (Render), else 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Peers a room holds at most.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(2..=64))]
    max_peers: u16,
    /// Comma-separated ICE server URLs handed to clients ("" for none). Default: Google's public STUN.
    #[arg(long, env = "ROOMBOX_ICE_SERVERS")]
    ice_servers: Option<String>,
    /// Shared secret of the TURN server (coturn's `static-auth-secret`): each client gets a
    /// time-limited username and password made with it, never the secret. Needs --turn-urls.
    #[arg(long, env = "ROOMBOX_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// Comma-separated turn:/turns: URLs the credentials are for.
    #[arg(long, env = "ROOMBOX_TURN_URLS")]
    turn_urls: Option<String>,
    /// Seconds a TURN credential stays valid (60 to 604800).
    #[arg(long, env = "ROOMBOX_TURN_TTL", default_value_t = 86_400)]
    turn_ttl: u64,
    /// Milliseconds between WebSocket pings; a socket silent for three is closed.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    ping_interval_ms: u64,
    /// Messages a connection may send in a burst.
    #[arg(long, default_value_t = 200)]
    rate_burst: u32,
    /// Sustained messages a second per connection; 0 turns the limit off.
    #[arg(long, default_value_t = 50)]
    rate_per_sec: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args = Args::parse();

    let listen = match args.listen {
        Some(addr) => addr,
        None => match std::env::var("PORT") {
            Ok(port) => {
                let port: u16 = port
                    .parse()
                    .with_context(|| format!("PORT={port:?} is not a port number"))?;
                SocketAddr::from(([0, 0, 0, 0], port))
            }
            Err(_) => SocketAddr::from(([127, 0, 0, 1], 8080)),
        },
    };
    let ice_servers = match args.ice_servers {
        None => default_ice_servers(),
        Some(list) => parse_ice_servers(&list)?,
    };
    let turn = match (&args.turn_secret, &args.turn_urls) {
        (None, None) => None,
        (Some(secret), Some(urls)) => Some(TurnRest::new(
            secret,
            urls,
            Duration::from_secs(args.turn_ttl),
        )?),
        (Some(_), None) => anyhow::bail!("--turn-secret needs --turn-urls"),
        (None, Some(_)) => {
            anyhow::bail!("--turn-urls needs --turn-secret (clients get credentials made with it)")
        }
    };
    if let Some(t) = &turn {
        tracing::info!("TURN: {t:?}");
    }
    let config = Config {
        max_peers: args.max_peers.into(),
        ice_servers,
        turn,
        ping_interval: Duration::from_millis(args.ping_interval_ms),
        rate: RateConfig {
            burst: args.rate_burst.max(1).into(),
            per_sec: args.rate_per_sec.into(),
        },
    };

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    // Tests and scripts read the real port from this line.
    println!("listening on http://{local}");
    std::io::stdout().flush()?;
    roombox_signal::serve(listener, config, roombox_signal::shutdown_signal()).await?;
    Ok(())
}

fn parse_ice_servers(list: &str) -> anyhow::Result<Vec<IceServer>> {
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    for url in &urls {
        anyhow::ensure!(
            ["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|p| url.starts_with(p)),
            "--ice-servers: {url:?} is not a stun:, stuns:, turn: or turns: URL"
        );
    }
    Ok(if urls.is_empty() {
        Vec::new()
    } else {
        vec![IceServer {
            urls,
            username: None,
            credential: None,
        }]
    })
}
