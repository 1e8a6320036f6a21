//! `roombox`: the conference-room box, an always-on WebRTC peer in a room.
//!
//! main.rs holds the command line, logging and wiring only; each concern has its module in the
//! library (lib.rs).

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use roombox::config::{Settings, SettingsText};
use roombox::{access, devices, display, pipeline, record, web};
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
    Run(Box<RunArgs>),
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
        /// Where the settings page listens (`off` for none).
        #[arg(long, default_value = "127.0.0.1:8081")]
        web: web::Listen,
    },
    /// Record what the box sees and hears to a Matroska file (H.264 + Opus), for installers.
    Record(RecordArgs),
    /// Play a talker on the room speaker and measure the echo at the microphone and how much
    /// of it the processing removes (for installers; stop the service first, it holds the
    /// devices).
    EchoCheck(EchoCheckArgs),
    /// List the video inputs and ALSA devices (for installers; what the settings page offers).
    Devices {
        /// Print the inventory as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Flags override the config file, which overrides the defaults.
#[derive(Args, Debug)]
struct RunArgs {
    /// The TOML settings file (see docs/configuration.md); the settings page saves here. A
    /// missing file means every default.
    #[arg(long, default_value = "/etc/roombox/roombox.toml")]
    config: PathBuf,
    /// Where the box keeps its room secret (`room-secret`) and the settings page its admin
    /// password hash (`admin-password`); systemd's StateDirectory. Made (0700) if missing.
    #[arg(long, default_value = "/var/lib/roombox")]
    state_dir: PathBuf,
    /// Where the settings page listens, e.g. 0.0.0.0:80 or 127.0.0.1:8081; `off` for none.
    /// Default: `web_listen` from the config file, else 0.0.0.0:80.
    #[arg(long)]
    web: Option<web::Listen>,
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
    /// The room display's decoder: auto | openh264 | v4l2:/dev/videoN
    #[arg(long)]
    decoder: Option<String>,
    #[arg(long)]
    min_kbps: Option<u32>,
    #[arg(long)]
    max_kbps: Option<u32>,
    /// balanced (scale the picture down on a slow link) | maintain-resolution
    #[arg(long)]
    degradation: Option<String>,
    /// Also offer loopback candidates (tests on one machine).
    #[arg(long)]
    ice_loopback: bool,
    /// Also write what the room's display shows of the call (people's screen shares, else the
    /// status screen) to a file: y4m:PATH, 1280x720, a frame each time the picture changes.
    #[arg(long)]
    display_out: Option<roombox::pipeline::call_view::DisplaySink>,
    /// Also record what each person sends the box, as they send it (their Opus and H.264, not
    /// re-encoded), into DIR/<name>-<peer id>-<unix seconds>.mkv, finished when they leave
    /// and when the box stops (tests and diagnosis; docs/configuration.md).
    #[arg(long, value_name = "DIR")]
    record_remote: Option<PathBuf>,
}

/// `echo-check` takes the box's speaker, microphone and processing from its settings file
/// unless flags name them.
#[derive(Args, Debug)]
struct EchoCheckArgs {
    #[arg(long, default_value = "/etc/roombox/roombox.toml")]
    config: PathBuf,
    /// alsa:DEVICE (default: the settings' audio_out)
    #[arg(long)]
    audio_out: Option<String>,
    /// alsa:DEVICE (default: the settings' audio_in)
    #[arg(long)]
    audio_in: Option<String>,
    /// Seconds of talk after a second of silence (at least 4: the canceller converges in
    /// the first 2).
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Write played.wav, heard.wav and sent.wav into this directory.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Fail (exit 1) unless the echo was heard and reduced by at least this many dB.
    #[arg(long)]
    min_erle: Option<f32>,
}

impl EchoCheckArgs {
    fn check(&self) -> anyhow::Result<roombox::audio::echo_check::EchoCheck> {
        let mut s = if self.config.exists() {
            SettingsText::read(&self.config)?
        } else {
            SettingsText::default()
        };
        if let Some(v) = &self.audio_out {
            s.audio_out = v.clone();
        }
        if let Some(v) = &self.audio_in {
            s.audio_in = v.clone();
        }
        let s = s.parse()?;
        anyhow::ensure!(self.seconds >= 4, "seconds: must be at least 4");
        Ok(roombox::audio::echo_check::EchoCheck {
            speaker: s.audio_out,
            mic: s.audio_in,
            seconds: self.seconds,
            processing: s.processing,
            save: self.save.clone(),
        })
    }
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
    /// Benchmarks: write exactly this many frames from a y4m file or the test pattern, read
    /// as fast as the encoder goes (no pacing, none dropped); needs --audio-in none.
    #[arg(long)]
    frames: Option<u64>,
}

impl RecordArgs {
    fn recording(self) -> anyhow::Result<record::Recording> {
        let d = SettingsText::default();
        let s = SettingsText {
            video: self.video,
            audio_in: self.audio_in,
            width: self.width.unwrap_or(d.width),
            height: self.height.unwrap_or(d.height),
            fps: self.fps.unwrap_or(d.fps),
            name: self.name.unwrap_or_else(|| d.name.clone()),
            encoder: self.encoder,
            ..d
        };
        let s = s.parse()?;
        anyhow::ensure!(self.seconds > 0, "seconds: must be at least 1");
        Ok(record::Recording {
            video: s.video,
            audio: s.audio_in,
            seconds: self.seconds,
            out: self.out,
            width: s.width,
            height: s.height,
            fps: s.fps,
            name: s.name,
            encoder: s.encoder,
            frames: self.frames,
        })
    }
}

impl RunArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = if self.config.exists() {
            SettingsText::read(&self.config)?
        } else {
            tracing::warn!(
                "{} does not exist: every setting has its default (the settings page creates it)",
                self.config.display()
            );
            SettingsText::default()
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { s.$field = v.clone(); } )* };
        }
        set!(
            signal_url,
            room,
            name,
            video,
            audio_in,
            audio_out,
            width,
            height,
            fps,
            encoder,
            decoder,
            min_kbps,
            max_kbps,
            degradation
        );
        s.ice_loopback |= self.ice_loopback;
        Ok(s.parse()?)
    }
}

/// RUST_LOG, else info. The TURN client's crates log every message they handle at info and
/// every refused one at error, which `calls::turn` already reports once, plainly: they are
/// quiet unless RUST_LOG names them.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let env = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter =
        tracing_subscriber::EnvFilter::try_new(&env).unwrap_or_else(|_| "info,str0m=warn".into());
    if env.is_empty() {
        filter = "info,str0m=warn".into();
    }
    for quiet in [
        "turn_client_proto",
        "turn_client_rustls",
        "stun_proto",
        "turn_types",
    ] {
        if !env.contains(quiet) {
            filter = filter.add_directive(format!("{quiet}=off").parse().expect("a directive"));
        }
    }
    filter
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        Command::Run(args) => {
            let settings = args.settings()?;
            let listen = match &args.web {
                Some(l) => *l,
                None => settings.web_listen,
            };
            let secret = room_secret(&args.state_dir)?;
            let web = web::WebConfig {
                listen,
                config_path: args.config,
                state_dir: args.state_dir,
            };
            run_with_page(settings, secret, web, args.display_out, args.record_remote).await
        }
        Command::Demo {
            listen,
            room,
            audio_out,
            ice_loopback,
            web,
        } => demo(listen, room, audio_out, ice_loopback, web).await,
        Command::Record(args) => {
            let recording = args.recording()?;
            let report = tokio::task::block_in_place(|| record::record(&recording))?;
            println!("{report}");
            Ok(())
        }
        Command::EchoCheck(args) => {
            let check = args.check()?;
            let report = tokio::task::block_in_place(|| roombox::audio::echo_check::run(&check))?;
            println!("{report}");
            if let Some(min) = args.min_erle {
                match report.erle_db {
                    Some(erle) if erle >= min => Ok(()),
                    Some(erle) => anyhow::bail!("echo reduced by {erle:.1} dB, less than {min} dB"),
                    None => anyhow::bail!("no echo heard: ERLE not measurable"),
                }
            } else {
                Ok(())
            }
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

/// The box's room secret from `<state_dir>/room-secret`, made there if there is none. A file
/// that holds no secret stops the box, naming the file (it is never overwritten silently).
fn room_secret(state_dir: &std::path::Path) -> anyhow::Result<roombox_seal::RoomSecret> {
    let file = access::RoomSecretFile::new(state_dir);
    Ok(file.load_or_create()?)
}

/// The box and its settings page, sharing the settings, the room secret and claim code, and
/// the status feed.
async fn run_with_page(
    settings: Settings,
    secret: roombox_seal::RoomSecret,
    web: web::WebConfig,
    display_out: Option<pipeline::call_view::DisplaySink>,
    record_remote: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (settings_tx, settings_rx) = tokio::sync::watch::channel(settings);
    let (access_tx, access_rx) = tokio::sync::watch::channel(access::Access::new(secret));
    let (status_tx, status_rx) = tokio::sync::watch::channel(display::StatusModel::default());
    let meters = std::sync::Arc::new(roombox::audio::levels::AudioMeters::default());
    let page = web::start(web, settings_tx, access_tx, status_rx, meters.clone()).await?;
    if let Some(page) = &page {
        status_tx.send_modify(|m| m.settings_url = page.url.clone());
    }
    let result = pipeline::run_box(
        settings_rx,
        access_rx,
        status_tx,
        meters,
        display_out,
        record_remote,
        shutdown(),
    )
    .await;
    if let Some(page) = page {
        page.abort();
    }
    result
}

async fn demo(
    listen: SocketAddr,
    room: String,
    audio_out: String,
    ice_loopback: bool,
    web: web::Listen,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (is another demo running?)"))?;
    let addr = listener.local_addr()?;
    let settings = SettingsText {
        signal_url: format!("http://{addr}"),
        room,
        audio_out,
        ice_loopback,
        ..SettingsText::default()
    }
    .parse()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server_stop = stop.clone();
    let server = tokio::spawn(roombox_signal::serve(
        listener,
        roombox_signal::Config::default(),
        async move { server_stop.cancelled().await },
    ));
    // The demo's settings, password and room secret live in a fresh directory of its own.
    let state_dir = std::env::temp_dir().join(format!("roombox-demo-{}", std::process::id()));
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let secret = room_secret(&state_dir)?;
    // The join link is the demo's output: printed for the person at this machine, not logged.
    let link = access::join_link(&settings.signal_url, &settings.room, &secret);
    println!("roombox demo: open {link} in a browser (Ctrl-C to stop)");
    let web = web::WebConfig {
        listen: web,
        config_path: state_dir.join("roombox.toml"),
        state_dir,
    };
    let result = run_with_page(settings, secret, web, None, None).await;
    stop.cancel();
    let _ = server.await;
    result
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown() {
    roombox_signal::shutdown_signal().await;
}
