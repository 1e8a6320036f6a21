//! `roombox`: the conference-room box.
//!
//! Today it has one command, `demo`, which runs the signaling server in-process and serves the
//! web client, so a room can be tried from browsers on one machine. The box's own media peer
//! (capture, encode, play out) is the next piece of work and is not here yet.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;

#[derive(Parser, Debug)]
#[command(version, about = "roombox: a conference-room box as an always-on WebRTC peer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the signaling server in-process and print the room URL to open.
    Demo {
        /// Where the in-process signaling server listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The room to open.
        #[arg(long, default_value = "demo")]
        room: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Demo { listen, room } => demo(listen, room).await,
    }
}

async fn demo(listen: SocketAddr, room: String) -> anyhow::Result<()> {
    anyhow::ensure!(
        roombox_signal::protocol::RoomName::parse(&room).is_some(),
        "--room {room:?}: room names are 1 to 64 of A-Z a-z 0-9 _ -"
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (is another demo running?)"))?;
    let addr = listener.local_addr()?;
    println!("roombox demo: open http://{addr}/r/{room} in two browser tabs (Ctrl-C to stop)");
    roombox_signal::serve(
        listener,
        roombox_signal::Config::default(),
        roombox_signal::shutdown_signal(),
    )
    .await?;
    Ok(())
}
