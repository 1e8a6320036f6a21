//! The settings page the box serves on the LAN (axum): status, settings and the admin password.
//!
//! Server-rendered HTML forms and one small script that refreshes the status; everything is
//! embedded in the binary. The page shares two channels with the running box: it reads the
//! `StatusModel` feed of the HDMI-out screen and the audio threads' live levels, and sends saved
//! `Settings` that the pipeline applies live (pipeline::run_box).

mod api;
mod auth;
mod form;
mod pages;
mod routes;

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
    /// Where the admin password hash lives (`--state-dir`).
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
    /// One save (or password change) at a time.
    save: tokio::sync::Mutex<()>,
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
        save: tokio::sync::Mutex::new(()),
    });
    if !state.password.is_set() {
        tracing::warn!("no admin password yet: the first visitor of the settings page sets it");
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
