//! The settings page's routes through the real axum router, without a server: the first-run
//! password, login and its rate limit, the CSRF and origin locks on every POST, validation that
//! names the field and keeps the old config, and the security headers.

use super::*;
use crate::config::Settings;
use crate::display::StatusModel;
use axum::body::Body;
use axum::http::{Method, Request};
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::watch;
use tower::ServiceExt;

const HOST: &str = "192.168.1.20";
const PASSWORD: &str = "correct horse battery";

struct Page {
    app: Router,
    state: Arc<AppState>,
    settings: watch::Receiver<Settings>,
    config_path: PathBuf,
    dir: PathBuf,
}

impl Drop for Page {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn page(name: &str) -> Page {
    let dir = std::env::temp_dir().join(format!("roombox-routes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("roombox.toml");
    Settings::default().save(&config_path).unwrap();
    let (settings_tx, settings) = watch::channel(Settings::default());
    let (_status_tx, status) = watch::channel(StatusModel::default());
    let state = Arc::new(AppState {
        config_path: config_path.clone(),
        password: auth::PasswordFile::new(&dir),
        sessions: Mutex::default(),
        throttle: Mutex::default(),
        settings: settings_tx,
        status,
        meters: Arc::default(),
        save: tokio::sync::Mutex::new(()),
    });
    Page {
        app: router(state.clone()),
        state,
        settings,
        config_path,
        dir,
    }
}

/// What came back: status, where it redirects, the session cookie it sets, the body.
struct Reply {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    /// The CSRF token of the page's form.
    fn csrf(&self) -> String {
        let at = self.body.find(r#"name="csrf" value=""#).expect("a form");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

struct Req<'a> {
    method: Method,
    path: &'a str,
    cookie: Option<&'a str>,
    origin: Option<&'a str>,
    form: &'a [(&'a str, &'a str)],
}

fn get<'a>(path: &'a str, cookie: Option<&'a str>) -> Req<'a> {
    Req {
        method: Method::GET,
        path,
        cookie,
        origin: None,
        form: &[],
    }
}

fn post<'a>(path: &'a str, cookie: Option<&'a str>, form: &'a [(&'a str, &'a str)]) -> Req<'a> {
    Req {
        method: Method::POST,
        path,
        cookie,
        origin: Some("same"),
        form,
    }
}

impl Page {
    async fn send(&self, r: Req<'_>) -> Reply {
        let mut b = Request::builder()
            .method(r.method)
            .uri(r.path)
            .header(header::HOST, HOST);
        if let Some(c) = r.cookie {
            b = b.header(header::COOKIE, format!("roombox_session={c}"));
        }
        match r.origin {
            Some("same") => b = b.header(header::ORIGIN, format!("http://{HOST}")),
            Some(o) => b = b.header(header::ORIGIN, o),
            None => {}
        }
        let body = if r.form.is_empty() {
            Body::empty()
        } else {
            b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            let mut enc = String::new();
            for (i, (k, v)) in r.form.iter().enumerate() {
                if i > 0 {
                    enc.push('&');
                }
                enc.push_str(&format!("{k}={}", url_encode(v)));
            }
            Body::from(enc)
        };
        let mut req = b.body(body).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 168, 1, 50], 40000))));
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let cookie = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("roombox_session="))
            .map(|c| c[..c.find(';').unwrap_or(c.len())].to_owned());
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            location,
            cookie,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Sets the first password and returns the admin session's cookie.
    async fn set_up(&self) -> String {
        let form = self.send(get("/setup", None)).await;
        let anon = form
            .cookie
            .clone()
            .expect("an anonymous session for the form");
        let csrf = form.csrf();
        let done = self
            .send(post(
                "/setup",
                Some(&anon),
                &[
                    ("csrf", &csrf),
                    ("new_password", PASSWORD),
                    ("confirm", PASSWORD),
                ],
            ))
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        let admin = done.cookie.expect("a fresh admin session");
        assert_ne!(admin, anon, "a new token on login (no session fixation)");
        admin
    }

    /// The settings form as an admin sees it, with the current values.
    async fn settings_form(&self, admin: &str) -> (String, Vec<(String, String)>) {
        let home = self.send(get("/", Some(admin))).await;
        assert_eq!(home.status, StatusCode::OK);
        let values = form::values_of(&self.settings.borrow());
        (home.csrf(), values.into_iter().collect())
    }

    fn config_file(&self) -> String {
        std::fs::read_to_string(&self.config_path).unwrap()
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn a_new_box_leads_every_page_to_setup_and_the_first_password_logs_in() {
    let p = page("setup");
    for path in ["/", "/login"] {
        let r = p.send(get(path, None)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location.as_deref(), Some("/setup"), "{path}");
    }
    let r = p.send(get("/api/status", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A too-short password is refused, naming the field; nothing is set.
    let form = p.send(get("/setup", None)).await;
    let anon = form.cookie.clone().unwrap();
    let csrf = form.csrf();
    let short = [
        ("csrf", csrf.as_str()),
        ("new_password", "short"),
        ("confirm", "short"),
    ];
    let r = p.send(post("/setup", Some(&anon), &short)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("new_password"), "{}", r.body);
    assert!(!p.state.password.is_set());

    let admin = p.set_up().await;
    assert!(p.state.password.is_set());
    let home = p.send(get("/", Some(&admin))).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains(r#"name="room""#), "the settings form");
    let status = p.send(get("/api/status", Some(&admin))).await;
    assert_eq!(status.status, StatusCode::OK);
    assert!(serde_json::from_str::<serde_json::Value>(&status.body).is_ok());
    // The live meters: what the audio threads last wrote.
    p.state.meters.mic(-23.0, -31.0);
    let levels = p.send(get("/api/levels", Some(&admin))).await;
    assert_eq!(levels.status, StatusCode::OK);
    let l: serde_json::Value = serde_json::from_str(&levels.body).unwrap();
    assert_eq!(
        (l["mic_dbfs"].as_f64(), l["sent_dbfs"].as_f64()),
        (Some(-23.0), Some(-31.0))
    );
    assert_eq!(l["mic"], "off");
    assert!(
        home.body.contains(r#"id="m-speaker""#),
        "the speaker's meter"
    );
    assert!(home
        .body
        .contains(r#"name="echo_cancellation" id="f-echo_cancellation" checked"#));
    // Setup is over: its page sends people home, a second setup cannot take the box.
    let r = p.send(get("/setup", Some(&admin))).await;
    assert_eq!(r.location.as_deref(), Some("/"));
}

#[tokio::test]
async fn every_post_needs_the_same_origin_a_session_and_its_csrf_token() {
    let p = page("csrf");
    let form = p.send(get("/setup", None)).await;
    let anon = form.cookie.clone().unwrap();
    let csrf = form.csrf();
    let fields = [
        ("csrf", csrf.as_str()),
        ("new_password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let refused = |r: &Reply, why: &str| {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{why}: {}", r.body);
    };
    // Another site's page posting into the box.
    let mut r = post("/setup", Some(&anon), &fields);
    r.origin = Some("http://evil.example");
    refused(&p.send(r).await, "cross-site origin");
    // No Origin and no Referer at all.
    let mut r = post("/setup", Some(&anon), &fields);
    r.origin = None;
    refused(&p.send(r).await, "no origin");
    // No session cookie.
    refused(&p.send(post("/setup", None, &fields)).await, "no session");
    // Another session's token.
    let other = p.send(get("/setup", None)).await;
    refused(
        &p.send(post("/setup", other.cookie.as_deref(), &fields))
            .await,
        "someone else's token",
    );
    // A wrong token.
    let wrong = [
        ("csrf", "0000"),
        ("new_password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    refused(
        &p.send(post("/setup", Some(&anon), &wrong)).await,
        "wrong token",
    );
    assert!(!p.state.password.is_set(), "nothing got through");
    // The real thing.
    let r = p.send(post("/setup", Some(&anon), &fields)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(p.state.password.is_set());
}

#[tokio::test]
async fn login_checks_the_password_and_locks_out_guessing() {
    let p = page("login");
    let admin = p.set_up().await;
    let form = p.send(get("/login", None)).await;
    assert_eq!(form.status, StatusCode::OK);
    let anon = form.cookie.clone().unwrap();
    let csrf = form.csrf();
    let right = [("csrf", csrf.as_str()), ("password", PASSWORD)];
    let wrong = [("csrf", csrf.as_str()), ("password", "not it")];

    let r = p.send(post("/login", Some(&anon), &wrong)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong password"), "{}", r.body);
    let r = p.send(post("/login", Some(&anon), &right)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let second = r.cookie.expect("an admin session");
    assert_ne!(second, admin);
    assert_eq!(p.send(get("/", Some(&second))).await.status, StatusCode::OK);

    // Guessing (from a new form: logging in ended the anonymous session): after a few wrong
    // passwords even the right one waits.
    let form = p.send(get("/login", None)).await;
    let anon = form.cookie.clone().unwrap();
    let csrf = form.csrf();
    let right = [("csrf", csrf.as_str()), ("password", PASSWORD)];
    let wrong = [("csrf", csrf.as_str()), ("password", "not it")];
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = p.send(post("/login", Some(&anon), &wrong)).await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let r = p.send(post("/login", Some(&anon), &right)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("Try again in"), "{}", r.body);

    // Logging out ends the session.
    let home = p.send(get("/", Some(&second))).await;
    let csrf = home.csrf();
    let r = p
        .send(post("/logout", Some(&second), &[("csrf", csrf.as_str())]))
        .await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    let r = p.send(get("/", Some(&second))).await;
    assert_eq!(r.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn a_bad_setting_is_refused_naming_the_field_and_the_old_config_is_kept() {
    let p = page("validate");
    let admin = p.set_up().await;
    let before = p.config_file();
    let (csrf, values) = p.settings_form(&admin).await;

    let mut bad = values.clone();
    bad.push(("csrf".into(), csrf.clone()));
    for (k, v) in &mut bad {
        if k == "fps" {
            *v = "0".into();
        }
    }
    let r = p.send(post("/settings", Some(&admin), &pairs(&bad))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("fps"), "the error names the field");
    assert_eq!(p.config_file(), before, "the config file is unchanged");
    assert_eq!(p.settings.borrow().fps, Settings::default().fps);

    // A device the page did not offer (a path on the box) is refused too.
    let mut sneaky = values.clone();
    sneaky.push(("csrf".into(), csrf.clone()));
    for (k, v) in &mut sneaky {
        if k == "audio_out" {
            *v = "wav:/etc/passwd".into();
        }
    }
    let r = p
        .send(post("/settings", Some(&admin), &pairs(&sneaky)))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("not one of the choices offered"),
        "{}",
        r.body
    );
    assert_eq!(p.config_file(), before);

    // A good change is saved and sent to the running box.
    let mut good = values;
    good.push(("csrf".into(), csrf));
    for (k, v) in &mut good {
        if k == "room" {
            *v = "board-room".into();
        }
    }
    let r = p.send(post("/settings", Some(&admin), &pairs(&good))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/?done=saved"));
    assert_eq!(p.settings.borrow().room.as_str(), "board-room");
    assert_eq!(
        Settings::load(&p.config_path).unwrap().room.as_str(),
        "board-room"
    );

    // The same change from another site, with the admin's cookie riding along, is refused.
    let (csrf, values) = p.settings_form(&admin).await;
    let mut forged = values;
    forged.push(("csrf".into(), csrf));
    for (k, v) in &mut forged {
        if k == "room" {
            *v = "attacker-room".into();
        }
    }
    let forged = pairs(&forged);
    let mut r = post("/settings", Some(&admin), &forged);
    r.origin = Some("http://attacker.example");
    assert_eq!(p.send(r).await.status, StatusCode::FORBIDDEN);
    assert_eq!(p.settings.borrow().room.as_str(), "board-room");
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_need_a_login() {
    let p = page("headers");
    let admin = p.set_up().await;
    let r = p.send(get("/", Some(&admin))).await;
    for (name, want) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(r.headers.get(name).unwrap(), want, "{name}");
    }
    assert!(r
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    for path in ["/status", "/api/status", "/api/levels"] {
        assert_eq!(
            p.send(get(path, None)).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        p.send(get("/", None)).await.location.as_deref(),
        Some("/login")
    );
}
