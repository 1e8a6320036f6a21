//! The settings page the box serves on the LAN (axum): status, settings, the room's join link
//! and the admin password.
//!
//! Server-rendered HTML forms and one small script that refreshes the status; everything is
//! embedded in the binary. The page shares these channels with the running box: it reads the
//! `StatusModel` feed of the HDMI-out screen and the audio threads' live levels, sends saved
//! `Settings` that the pipeline applies live (pipeline::run_box), and sends the box's `Access`
//! (a new room secret; the claim code made while no password is set, then used up).

mod api;
mod auth;
mod form;
mod pages;
mod routes;

pub use auth::ClaimCode;

use crate::access::{Access, RoomSecretFile};
use crate::audio::levels::AudioMeters;
use crate::config::Settings;
use crate::display::StatusModel;
use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

pub use crate::config::Listen;

pub struct WebConfig {
    pub listen: Listen,
    /// The settings file the page saves (`--config`).
    pub config_path: PathBuf,
    /// Where the admin password hash and the room secret live (`--state-dir`).
    pub state_dir: PathBuf,
}

/// What every request handler shares.
pub(crate) struct AppState {
    config_path: PathBuf,
    password: auth::PasswordFile,
    sessions: Mutex<auth::Sessions>,
    throttle: Mutex<auth::Throttle>,
    /// The running box's settings; a save sends the new ones, the pipeline applies them.
    settings: watch::Sender<Settings>,
    status: watch::Receiver<StatusModel>,
    /// The live audio levels (the page's meters).
    meters: Arc<AudioMeters>,
    /// The box's room secret and claim code; the pipeline shows them and signals with them.
    access: watch::Sender<Access>,
    /// Where a new room secret is written.
    room_secret: RoomSecretFile,
    /// One save (or password change) at a time.
    save: tokio::sync::Mutex<()>,
}

impl AppState {
    /// While no admin password is set, the claim code the first-run form asks for: made when
    /// there is none (at start, or after the password file was deleted) and then printed to
    /// the journal, once; the screen shows it from the `access` channel.
    fn claim_code(&self) -> Option<ClaimCode> {
        if self.password.is_set() {
            return None;
        }
        let mut made = None;
        self.access.send_if_modified(|a| {
            if a.claim_code.is_some() {
                return false;
            }
            let code = ClaimCode::generate();
            made = Some(code.expose());
            a.claim_code = Some(code);
            true
        });
        if let Some(code) = made {
            // The one place the code is written anywhere but the screen.
            tracing::info!("claim code for the settings page: {code}");
        }
        self.access.borrow().claim_code.clone()
    }
}

/// A running page: its address for people (the status screen's QR code) and its task.
pub struct Page {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Page {
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Binds the page's address (failing here, at start, names it) and serves in a task.
/// `Ok(None)` when the page is `off`.
pub async fn start(
    config: WebConfig,
    settings: watch::Sender<Settings>,
    access: watch::Sender<Access>,
    status: watch::Receiver<StatusModel>,
    meters: Arc<AudioMeters>,
) -> anyhow::Result<Option<Page>> {
    let Listen::Addr(addr) = config.listen else {
        tracing::info!("settings page off");
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("settings page: cannot listen on {addr} (--web or web_listen)"))?;
    let local = listener.local_addr()?;
    let url = people_url(local);
    tracing::info!("settings page on http://{local}/ ({url})");
    let state = Arc::new(AppState {
        config_path: config.config_path,
        password: auth::PasswordFile::new(&config.state_dir),
        sessions: Mutex::default(),
        throttle: Mutex::default(),
        settings,
        status,
        meters,
        access,
        room_secret: RoomSecretFile::new(&config.state_dir),
        save: tokio::sync::Mutex::new(()),
    });
    if state.claim_code().is_some() {
        tracing::warn!(
            "no admin password yet: the settings page asks for the claim code (on the HDMI-out \
             screen, and above in this log) to set it"
        );
    }
    let app = routes::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("settings page stopped: {e}");
        }
    });
    Ok(Some(Page { url, task }))
}

/// The address to show people: a wildcard listen address becomes the box's first LAN address.
fn people_url(local: SocketAddr) -> String {
    let ip = if local.ip().is_unspecified() {
        crate::pump::udp::candidate_addresses(false)
            .into_iter()
            .next()
            .unwrap_or(IpAddr::from([127, 0, 0, 1]))
    } else {
        local.ip()
    };
    match local.port() {
        80 => format!("http://{ip}/"),
        port => format!("http://{}/", SocketAddr::new(ip, port)),
    }
}
