//! Routes: the WebSocket, the embedded web client, health and metrics.

use crate::Shared;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use include_dir::{include_dir, Dir};
use roombox_protocol::{RoomName, MAX_MESSAGE_BYTES};
use std::sync::Arc;

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// Small socket buffers keep an idle connection cheap; signaling frames are small.
const READ_BUFFER_BYTES: usize = 1024;
const WRITE_BUFFER_BYTES: usize = 0;
/// Frames up to this size are read so the client can be told `too-large` before the close;
/// anything larger breaks the connection at the transport.
const HARD_FRAME_LIMIT: usize = 4 * MAX_MESSAGE_BYTES;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ws", get(websocket))
        .route("/", get(|| async { asset("landing.html") }))
        .route("/r/{room}", get(room_page))
        .route(
            "/assets/{*path}",
            get(|Path(path): Path<String>| async move { asset(&path) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

async fn websocket(ws: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    if shared.shutdown.is_cancelled() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let guard = shared.sockets.token();
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| async move {
            crate::conn::serve_socket(socket, shared).await;
            drop(guard);
        })
}

async fn room_page(Path(room): Path<String>) -> Response {
    if RoomName::parse(&room).is_none() {
        return (
            StatusCode::BAD_REQUEST,
            "room names are 1 to 64 of A-Z a-z 0-9 _ -",
        )
            .into_response();
    }
    asset("index.html")
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let (rooms, peers) = {
        let table = shared.rooms();
        (table.room_count(), table.peer_count())
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        shared.metrics.render(rooms, peers),
    )
        .into_response()
}

fn asset(path: &str) -> Response {
    let Some(file) = WEB.get_file(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            ),
            // The client is embedded in the binary: a new deploy is a new server process.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        file.contents(),
    )
        .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}
