//! The page's routes. Every POST passes `guard`: same-origin check, a live session, and the
//! session's CSRF token in the form. Until a password is set, every page leads to /setup, which
//! asks for the claim code.

use super::api::{cpu_celsius, StatusView};
use super::auth::{self, tokens_match};
use super::form::{self, Choices};
use super::pages;
use super::AppState;
use crate::display::qr::Qr;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

type Shared = State<Arc<AppState>>;
type Posted = Form<HashMap<String, String>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/setup", get(setup_page).post(setup_submit))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/settings", post(save_settings))
        .route("/password", post(change_password))
        .route("/room-secret", post(new_room_secret))
        .route("/status", get(status_fragment))
        .route("/api/status", get(status_json))
        .route("/api/levels", get(levels_json))
        .route("/assets/style.css", get(|| async { css(pages::STYLE) }))
        .route("/assets/status.js", get(|| async { js(pages::SCRIPT) }))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// No caching of pages that hold tokens; no framing (clickjacking); scripts only from here.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    ];
    for (k, v) in set {
        h.insert(k, HeaderValue::from_static(v));
    }
    res
}

fn css(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], body).into_response()
}

fn js(body: &'static str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        body,
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn refused(status: StatusCode, why: &str) -> Response {
    tracing::warn!("settings page refused a request: {why}");
    (status, Html(pages::refused(why))).into_response()
}

fn with_cookie(mut res: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

impl AppState {
    fn session(&self, headers: &HeaderMap) -> Option<(String, auth::Session)> {
        let token = auth::session_cookie(headers)?;
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = sessions.get(&token, Instant::now())?;
        Some((token, s))
    }

    fn admin(&self, headers: &HeaderMap) -> Option<(String, auth::Session)> {
        self.session(headers).filter(|(_, s)| s.admin)
    }

    fn new_session(&self, admin: bool) -> (String, auth::Session) {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let token = sessions.create(admin, now);
        let s = sessions.get(&token, now).expect("just created");
        (token, s)
    }

    /// The session of a form page (login, first run): the browser's own, or a new anonymous
    /// one whose cookie the response must set.
    fn form_session(&self, headers: &HeaderMap) -> (auth::Session, Option<String>) {
        match self.session(headers) {
            Some((_, s)) => (s, None),
            None => {
                let (token, s) = self.new_session(false);
                (s, Some(auth::session_cookie_header(&token)))
            }
        }
    }

    fn status_view(&self) -> StatusView {
        let model = self.status.borrow().clone();
        StatusView::new(&model, cpu_celsius(Path::new("/sys/class/thermal")))
    }
}

/// The CSRF locks of every state-changing request: same origin, a live session, and that
/// session's token in the form (compared in constant time).
fn guard(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(String, auth::Session), Box<Response>> {
    let refuse = |why: &str| Box::new(refused(StatusCode::FORBIDDEN, why));
    auth::check_same_origin(headers).map_err(|why| refuse(&why))?;
    let (token, session) = state
        .session(headers)
        .ok_or_else(|| refuse("your session has expired or is unknown: open the page again"))?;
    let given = form.get("csrf").map(String::as_str).unwrap_or("");
    if !tokens_match(&session.csrf, given) {
        return Err(refuse(
            "the form's security token does not match this session: open the page again",
        ));
    }
    Ok((token, session))
}

/// [`guard`], and an admin's session: a visitor's is sent to log in.
fn admin_guard(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(String, auth::Session), Box<Response>> {
    let (token, session) = guard(state, headers, form)?;
    if !session.admin {
        return Err(Box::new(see_other("/login")));
    }
    Ok((token, session))
}

async fn home(
    State(state): Shared,
    headers: HeaderMap,
    q: Query<HashMap<String, String>>,
) -> Response {
    if !state.password.is_set() {
        return see_other("/setup");
    }
    let Some((_, session)) = state.admin(&headers) else {
        return see_other("/login");
    };
    let current = state.settings.borrow().clone();
    let notice = match q.get("done").map(String::as_str) {
        Some("saved") => Some("Saved and applied."),
        Some("password") => Some("Password changed. Other browsers are logged out."),
        Some("secret") => Some(
            "New room secret made: the join link below is new, and the old one no longer works.",
        ),
        _ => None,
    };
    render_home(
        &state,
        &session,
        &form::values_of(&current),
        &HashMap::new(),
        notice,
        StatusCode::OK,
    )
    .await
}

async fn render_home(
    state: &AppState,
    session: &auth::Session,
    values: &HashMap<String, String>,
    errors: &HashMap<String, String>,
    notice: Option<&str>,
    code: StatusCode,
) -> Response {
    let current = state.settings.borrow().clone(); // not held across the await below
    let link = crate::access::join_link(
        &current.signal_url,
        &current.room,
        &state.access.borrow().room_secret,
    );
    let choices = choices(&current).await;
    let status = state.status_view();
    let join_qr = Qr::new(&link).map(|q| q.svg()).unwrap_or_default();
    let html = pages::home(&pages::Home {
        csrf: &session.csrf,
        status: &status,
        values,
        choices: &choices,
        errors,
        notice,
        join_link: &link,
        join_qr: &join_qr,
    });
    (code, Html(html)).into_response()
}

/// The device choices, from the same discovery as `roombox devices` (off the async threads:
/// it opens device nodes).
async fn choices(current: &crate::config::Settings) -> Choices {
    let inventory = tokio::task::spawn_blocking(crate::devices::discover)
        .await
        .unwrap_or_default();
    Choices::new(&inventory, current)
}

async fn setup_page(State(state): Shared, headers: HeaderMap) -> Response {
    if state.password.is_set() {
        return see_other("/");
    }
    state.claim_code(); // made if there is none (the password file was deleted)
    let (session, cookie) = state.form_session(&headers);
    let res = Html(pages::setup(&session.csrf, None)).into_response();
    match cookie {
        Some(c) => with_cookie(res, &c),
        None => res,
    }
}

/// First run: the claim code (through the login rate limit), then the new password; both right,
/// the password is set, the code is used up and the browser is logged in.
async fn setup_submit(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Posted,
) -> Response {
    let (token, session) = match guard(&state, &headers, &f) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let _one_at_a_time = state.save.lock().await;
    if state.password.is_set() {
        return see_other("/login"); // someone else was first
    }
    let page = |code: StatusCode, msg: &str| {
        (code, Html(pages::setup(&session.csrf, Some(msg)))).into_response()
    };
    let given = f.get("claim_code").map(String::as_str).unwrap_or("");
    let claim = state.claim_code();
    let checked = auth::check_claim(
        claim.as_ref(),
        given,
        &mut state
            .throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        peer.ip(),
        Instant::now(),
    );
    match checked {
        Ok(()) => {}
        Err(auth::ClaimRefused::Wrong) => {
            tracing::warn!(client = %peer.ip(), "wrong claim code on the first-run form");
            return page(
                StatusCode::UNAUTHORIZED,
                "claim_code: wrong claim code. It is on the screen on the box's HDMI output, \
                 and in its log (journalctl -u roombox).",
            );
        }
        Err(auth::ClaimRefused::Locked(wait)) => {
            tracing::warn!(client = %peer.ip(), "first-run form locked out: too many wrong codes or passwords");
            return page(StatusCode::TOO_MANY_REQUESTS, &too_many(wait));
        }
    }
    let new = f.get("new_password").map(String::as_str).unwrap_or("");
    let confirm = f.get("confirm").map(String::as_str).unwrap_or("");
    if let Err(e) = auth::check_new_password(new, confirm) {
        return page(StatusCode::BAD_REQUEST, &format!("new_password: {e}"));
    }
    let new = new.to_owned();
    let st = state.clone();
    let set = tokio::task::spawn_blocking(move || st.password.set(&new)).await;
    match set {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => return refused(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
    // The code did its one job: it opens nothing any more.
    state.access.send_modify(|a| a.claim_code = None);
    tracing::info!(client = %peer.ip(), "admin password set with the claim code: the box is claimed");
    log_in(&state, &token)
}

/// What a locked-out client is told (claim codes and passwords share the rate limit).
fn too_many(wait: std::time::Duration) -> String {
    format!(
        "Too many wrong codes or passwords. Try again in {} seconds.",
        wait.as_secs().max(1)
    )
}

/// Replaces the browser's session with a fresh admin one (a new token: no fixation).
fn log_in(state: &AppState, old_token: &str) -> Response {
    state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(old_token);
    let (token, _) = state.new_session(true);
    with_cookie(see_other("/"), &auth::session_cookie_header(&token))
}

async fn login_page(State(state): Shared, headers: HeaderMap) -> Response {
    if !state.password.is_set() {
        return see_other("/setup");
    }
    if state.admin(&headers).is_some() {
        return see_other("/");
    }
    let (session, cookie) = state.form_session(&headers);
    let res = Html(pages::login(&session.csrf, None)).into_response();
    match cookie {
        Some(c) => with_cookie(res, &c),
        None => res,
    }
}

async fn login_submit(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Posted,
) -> Response {
    if !state.password.is_set() {
        return see_other("/setup");
    }
    let (token, session) = match guard(&state, &headers, &f) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let password = f.get("password").cloned().unwrap_or_default();
    match check_password(&state, peer, password).await {
        Ok(()) => {
            tracing::info!(client = %peer.ip(), "admin logged in");
            log_in(&state, &token)
        }
        Err((code, msg)) => (code, Html(pages::login(&session.csrf, Some(&msg)))).into_response(),
    }
}

/// Verifies a password through the rate limit (login and password change alike).
async fn check_password(
    state: &Arc<AppState>,
    peer: SocketAddr,
    password: String,
) -> Result<(), (StatusCode, String)> {
    let ip = peer.ip();
    let locked = |wait: std::time::Duration| (StatusCode::TOO_MANY_REQUESTS, too_many(wait));
    let check = |state: &AppState| {
        state
            .throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(ip, Instant::now())
    };
    check(state).map_err(locked)?;
    let st = state.clone();
    let ok = tokio::task::spawn_blocking(move || st.password.verify(&password))
        .await
        .unwrap_or(false);
    let mut throttle = state
        .throttle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if ok {
        throttle.succeeded(ip);
        return Ok(());
    }
    throttle.failed(ip, Instant::now());
    tracing::warn!(client = %ip, "wrong admin password");
    Err(match throttle.check(ip, Instant::now()) {
        Err(wait) => locked(wait),
        Ok(()) => (StatusCode::UNAUTHORIZED, "Wrong password.".into()),
    })
}

async fn logout(State(state): Shared, headers: HeaderMap, Form(f): Posted) -> Response {
    let (token, _) = match guard(&state, &headers, &f) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&token);
    with_cookie(see_other("/login"), &auth::clear_cookie_header())
}

async fn save_settings(State(state): Shared, headers: HeaderMap, Form(f): Posted) -> Response {
    let (_, session) = match admin_guard(&state, &headers, &f) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let _one_at_a_time = state.save.lock().await;
    let current = state.settings.borrow().clone();
    let choices = choices(&current).await;
    let result = form::parse(&f, &current, &choices).and_then(|new| {
        new.save(&state.config_path)?;
        Ok(new)
    });
    match result {
        Ok(new) => {
            tracing::info!(room = %new.room, "settings saved to {}; applying", state.config_path.display());
            state.settings.send_replace(new);
            see_other("/?done=saved")
        }
        Err(e) => {
            // The field only: the refused value is shown to the admin who typed it, not logged
            // (a password pasted into the wrong field must not end up in the journal).
            tracing::warn!(field = %e.field, "settings refused");
            let mut values = form::values_of(&current);
            for (k, _) in form::FIELDS {
                if let Some(v) = f.get(*k) {
                    values.insert((*k).to_owned(), v.clone());
                }
            }
            let errors = HashMap::from([(e.field.clone(), e.message.clone())]);
            render_home(
                &state,
                &session,
                &values,
                &errors,
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

async fn change_password(
    State(state): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Posted,
) -> Response {
    let (token, session) = match admin_guard(&state, &headers, &f) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let current = state.settings.borrow().clone();
    let fail = |field: &str, msg: String, code| {
        let errors = HashMap::from([(field.to_owned(), format!("{field}: {msg}"))]);
        let values = form::values_of(&current);
        let state = state.clone();
        let session = session.clone();
        async move { render_home(&state, &session, &values, &errors, None, code).await }
    };
    let old = f.get("current_password").cloned().unwrap_or_default();
    if let Err((code, msg)) = check_password(&state, peer, old).await {
        return fail("current_password", msg, code).await;
    }
    let new = f.get("new_password").cloned().unwrap_or_default();
    let confirm = f.get("confirm").map(String::as_str).unwrap_or("");
    if let Err(msg) = auth::check_new_password(&new, confirm) {
        return fail("new_password", msg, StatusCode::BAD_REQUEST).await;
    }
    let _one_at_a_time = state.save.lock().await;
    let st = state.clone();
    match tokio::task::spawn_blocking(move || st.password.set(&new)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return fail("new_password", e.message, StatusCode::INTERNAL_SERVER_ERROR).await
        }
        Err(e) => return refused(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
    tracing::info!("admin password changed; other sessions ended");
    state
        .sessions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove_all_except(&token);
    see_other("/?done=password")
}

/// "New room secret": a fresh secret in the state directory and to the running box, which
/// leaves its room and joins again with it; every join link made with the old one stops working.
async fn new_room_secret(State(state): Shared, headers: HeaderMap, Form(f): Posted) -> Response {
    let (_, session) = match admin_guard(&state, &headers, &f) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let _one_at_a_time = state.save.lock().await;
    let st = state.clone();
    match tokio::task::spawn_blocking(move || st.room_secret.renew()).await {
        Ok(Ok(secret)) => {
            state.access.send_modify(|a| a.room_secret = secret);
            tracing::info!("new room secret made on the settings page: old join links no longer work; rejoining");
            see_other("/?done=secret")
        }
        Ok(Err(e)) => {
            tracing::warn!("new room secret not made: {e}");
            let current = state.settings.borrow().clone();
            let errors = HashMap::from([("room_secret".to_owned(), e.to_string())]);
            render_home(
                &state,
                &session,
                &form::values_of(&current),
                &errors,
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
            )
            .await
        }
        Err(e) => refused(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn status_fragment(State(state): Shared, headers: HeaderMap) -> Response {
    if state.admin(&headers).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Html(pages::status(&state.status_view())).into_response()
}

/// What the JSON API answers without an admin session.
fn log_in_first() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"error": "log in first"})),
    )
        .into_response()
}

async fn status_json(State(state): Shared, headers: HeaderMap) -> Response {
    if state.admin(&headers).is_none() {
        return log_in_first();
    }
    Json(state.status_view()).into_response()
}

/// The meters, polled a few times a second by the page while it is open.
async fn levels_json(State(state): Shared, headers: HeaderMap) -> Response {
    if state.admin(&headers).is_none() {
        return log_in_first();
    }
    let mic = state.status.borrow().mic.label();
    let mut levels = serde_json::to_value(state.meters.view()).unwrap_or_default();
    levels["mic"] = mic.into();
    Json(levels).into_response()
}

#[cfg(test)]
mod tests;
