//! `roombox`: the conference-room box, an always-on WebRTC peer in a room.
//!
//! main.rs holds the command line, logging and wiring only; each concern has its module.

mod config;
mod devices;
mod display;
mod fanout;
mod media;
mod peer;
mod pipeline;
mod record;
mod service;
mod signaling;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use config::Settings;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "roombox: a conference-room box as an always-on WebRTC peer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Join a room and stay there: publish video and room audio, play the remote voices.
    Run(RunArgs),
    /// A signaling server in-process plus the box with test sources; prints the URL to open.
    Demo {
        /// Where the in-process signaling server listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The room to open.
        #[arg(long, default_value = "demo")]
        room: String,
        /// Where the box plays the room's voices: alsa:DEVICE, wav:PATH or none.
        #[arg(long, default_value = "none")]
        audio_out: String,
        /// Also offer loopback candidates (a browser started with loopback allowed).
        #[arg(long)]
        ice_loopback: bool,
    },
    /// Record what the box sees and hears to a Matroska file (H.264 + Opus), for installers.
    Record(RecordArgs),
    /// List the video inputs and ALSA devices (for installers; what the settings page offers).
    Devices {
        /// Print the inventory as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Flags override the config file, which overrides the defaults.
#[derive(Args, Debug, Default)]
struct RunArgs {
    /// A TOML settings file (see docs/configuration.md).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    signal_url: Option<String>,
    #[arg(long)]
    room: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// test | y4m:PATH | v4l2:DEVICE
    #[arg(long)]
    video: Option<String>,
    /// test | alsa:DEVICE | none
    #[arg(long)]
    audio_in: Option<String>,
    /// alsa:DEVICE | wav:PATH | none
    #[arg(long)]
    audio_out: Option<String>,
    #[arg(long)]
    width: Option<u32>,
    #[arg(long)]
    height: Option<u32>,
    #[arg(long)]
    fps: Option<u32>,
    /// auto | openh264 | v4l2:/dev/videoN
    #[arg(long)]
    encoder: Option<String>,
    #[arg(long)]
    min_kbps: Option<u32>,
    #[arg(long)]
    max_kbps: Option<u32>,
    /// Also offer loopback candidates (tests on one machine).
    #[arg(long)]
    ice_loopback: bool,
}

/// `record` takes the box's sources and sizes; unset sizes are `run`'s defaults.
#[derive(Args, Debug)]
struct RecordArgs {
    /// test | y4m:PATH | v4l2:DEVICE
    #[arg(long, default_value = "test")]
    video: String,
    /// test | alsa:DEVICE | none
    #[arg(long, default_value = "test")]
    audio_in: String,
    /// How long to record.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// The Matroska file to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    width: Option<u32>,
    #[arg(long)]
    height: Option<u32>,
    #[arg(long)]
    fps: Option<u32>,
    /// The box's name, shown on the "no signal" slate.
    #[arg(long)]
    name: Option<String>,
    /// auto | openh264 | v4l2:DEVICE (as the box's `encoder` setting).
    #[arg(long, default_value = "auto")]
    encoder: String,
}

impl RecordArgs {
    fn recording(self) -> anyhow::Result<record::Recording> {
        let d = Settings::default();
        let s = Settings {
            video: self.video,
            audio_in: self.audio_in,
            width: self.width.unwrap_or(d.width),
            height: self.height.unwrap_or(d.height),
            fps: self.fps.unwrap_or(d.fps),
            name: self.name.unwrap_or_else(|| d.name.clone()),
            encoder: self.encoder,
            ..d
        };
        s.validate()?;
        anyhow::ensure!(self.seconds > 0, "seconds: must be at least 1");
        Ok(record::Recording {
            video: s.video.parse().context("video")?,
            audio: s.audio_in.parse().context("audio_in")?,
            seconds: self.seconds,
            out: self.out,
            width: s.width,
            height: s.height,
            fps: s.fps,
            name: s.name,
            encoder: s
                .encoder
                .parse()
                .map_err(|e: String| anyhow::anyhow!("encoder: {e}"))?,
        })
    }
}

impl RunArgs {
    fn settings(self) -> anyhow::Result<Settings> {
        let mut s = match &self.config {
            Some(path) => Settings::load(path)?,
            None => Settings::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { s.$field = v; } )* };
        }
        set!(
            signal_url, room, name, video, audio_in, audio_out, width, height, fps, encoder,
            min_kbps, max_kbps
        );
        s.ice_loopback |= self.ice_loopback;
        s.validate()?;
        Ok(s)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,str0m=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        Command::Run(args) => pipeline::run_box(args.settings()?, shutdown()).await,
        Command::Demo {
            listen,
            room,
            audio_out,
            ice_loopback,
        } => demo(listen, room, audio_out, ice_loopback).await,
        Command::Record(args) => {
            let recording = args.recording()?;
            let report = tokio::task::block_in_place(|| record::record(&recording))?;
            println!("{report}");
            Ok(())
        }
        Command::Devices { json } => {
            let inventory = devices::discover();
            if json {
                println!("{}", serde_json::to_string_pretty(&inventory)?);
            } else {
                print!("{}", devices::report(&inventory));
            }
            Ok(())
        }
    }
}

async fn demo(
    listen: SocketAddr,
    room: String,
    audio_out: String,
    ice_loopback: bool,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (is another demo running?)"))?;
    let addr = listener.local_addr()?;
    let settings = Settings {
        signal_url: format!("http://{addr}"),
        room: room.clone(),
        audio_out,
        ice_loopback,
        ..Settings::default()
    };
    settings.validate()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server_stop = stop.clone();
    let server = tokio::spawn(roombox_signal::serve(
        listener,
        roombox_signal::Config::default(),
        async move { server_stop.cancelled().await },
    ));
    println!("roombox demo: open http://{addr}/r/{room} in a browser (Ctrl-C to stop)");
    let result = pipeline::run_box(settings, shutdown()).await;
    stop.cancel();
    let _ = server.await;
    result
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown() {
    roombox_signal::shutdown_signal().await
}
