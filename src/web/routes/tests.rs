//! The settings page's routes through the real axum router, without a server: the first-run
//! claim code and password, login and its rate limit, the CSRF and origin locks on every POST,
//! validation that names the field and keeps the old config, the join link and a new room
//! secret, the security headers, and that no secret reaches the log.

use super::*;
use crate::access::{Access, RoomSecretFile};
use crate::config::Settings;
use crate::display::StatusModel;
use axum::body::Body;
use axum::http::{Method, Request};
use roombox_seal::RoomSecret;
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::watch;
use tower::ServiceExt;

const HOST: &str = "192.168.1.20";
const PASSWORD: &str = "correct horse battery";
/// The room secret every test page starts with (as a test writes `<state_dir>/room-secret`).
const SECRET: [u8; 16] = *b"known room key!!";

struct Page {
    app: Router,
    state: Arc<AppState>,
    settings: watch::Receiver<Settings>,
    /// What the pipeline gets: the room secret and the claim code (the screen shows the code).
    access: watch::Receiver<Access>,
    /// The HDMI-out's model, as the pipeline would publish it.
    status: watch::Sender<StatusModel>,
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
    let (status_tx, status) = watch::channel(StatusModel::default());
    let secret = RoomSecret::from_bytes(SECRET);
    RoomSecretFile::new(&dir).write(&secret).unwrap();
    let (access_tx, access) = watch::channel(Access::new(secret));
    let state = Arc::new(AppState {
        config_path: config_path.clone(),
        password: auth::PasswordFile::new(&dir),
        sessions: Mutex::default(),
        throttle: Mutex::default(),
        settings: settings_tx,
        status,
        meters: Arc::default(),
        access: access_tx,
        room_secret: RoomSecretFile::new(&dir),
        save: tokio::sync::Mutex::new(()),
    });
    state.claim_code(); // as web::start does
    Page {
        app: router(state.clone()),
        state,
        settings,
        access,
        status: status_tx,
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

    /// The claim code as the HDMI-out screen shows it (`None` once the box is claimed).
    fn claim_code(&self) -> Option<String> {
        self.access
            .borrow()
            .claim_code
            .as_ref()
            .map(auth::ClaimCode::expose)
    }

    /// Sets the first password with the claim code and returns the admin session's cookie.
    async fn set_up(&self) -> String {
        let form = self.send(get("/setup", None)).await;
        let anon = form
            .cookie
            .clone()
            .expect("an anonymous session for the form");
        let csrf = form.csrf();
        let code = self
            .claim_code()
            .expect("an unclaimed box shows a claim code");
        let done = self
            .send(post(
                "/setup",
                Some(&anon),
                &[
                    ("csrf", &csrf),
                    ("claim_code", &code),
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
    let code = p.claim_code().unwrap();
    let short = [
        ("csrf", csrf.as_str()),
        ("claim_code", code.as_str()),
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
    let code = p.claim_code().unwrap();
    let fields = [
        ("csrf", csrf.as_str()),
        ("claim_code", code.as_str()),
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
        ("claim_code", code.as_str()),
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

/// The first-run form of a new box, with its fields.
async fn setup_form(p: &Page) -> (String, String) {
    let form = p.send(get("/setup", None)).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains(r#"name="claim_code""#), "{}", form.body);
    (form.cookie.clone().unwrap(), form.csrf())
}

#[tokio::test]
async fn the_first_password_needs_the_claim_code_which_works_once() {
    let p = page("claim");
    let code = p.claim_code().expect("made at start");
    assert_eq!(code.len(), 9, "1234-5678: {code}");
    assert!(code[..4]
        .bytes()
        .chain(code[5..].bytes())
        .all(|b| b.is_ascii_digit()));
    assert_eq!(&code[4..5], "-");
    let (anon, csrf) = setup_form(&p).await;
    assert_eq!(
        p.claim_code().as_deref(),
        Some(code.as_str()),
        "one code per start"
    );

    // No code, or a wrong one: refused, saying where the code is; nothing set.
    let wrong_code = if code.starts_with('1') { "2" } else { "1" }.to_owned() + &code[1..];
    for given in ["", wrong_code.as_str(), "12345678901234567890"] {
        let form = [
            ("csrf", csrf.as_str()),
            ("claim_code", given),
            ("new_password", PASSWORD),
            ("confirm", PASSWORD),
        ];
        let r = p.send(post("/setup", Some(&anon), &form)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{given:?}: {}", r.body);
        assert!(r.body.contains("wrong claim code"), "{}", r.body);
        assert!(r.body.contains("HDMI"), "where to find it: {}", r.body);
        assert!(!r.body.contains(&code), "the code is not on the page");
        assert!(!p.state.password.is_set());
    }
    // The right code with a bad password: the password is refused, the code still works.
    let digits_only = code.replace('-', "");
    let mismatch = [
        ("csrf", csrf.as_str()),
        ("claim_code", digits_only.as_str()),
        ("new_password", PASSWORD),
        ("confirm", "something else"),
    ];
    let r = p.send(post("/setup", Some(&anon), &mismatch)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("the two passwords differ"), "{}", r.body);
    assert_eq!(p.claim_code().as_deref(), Some(code.as_str()));
    // The right code (typed with spaces) and a good password: claimed, and the code is void.
    let spaced = format!(" {} {} ", &code[..4], &code[5..]);
    let good = [
        ("csrf", csrf.as_str()),
        ("claim_code", spaced.as_str()),
        ("new_password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let r = p.send(post("/setup", Some(&anon), &good)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/"));
    assert!(p.state.password.is_set());
    assert_eq!(p.claim_code(), None, "the screen no longer shows a code");

    // A second use, from another browser, is refused: the box is claimed.
    let other = p.send(get("/setup", None)).await;
    assert_eq!(other.location.as_deref(), Some("/"));
    let login = p.send(get("/login", None)).await;
    let (anon2, csrf2) = (login.cookie.clone().unwrap(), login.csrf());
    let again = [
        ("csrf", csrf2.as_str()),
        ("claim_code", code.as_str()),
        ("new_password", "an attacker's password"),
        ("confirm", "an attacker's password"),
    ];
    let r = p.send(post("/setup", Some(&anon2), &again)).await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    assert!(p.state.password.verify(PASSWORD));

    // The documented reset (the password file deleted): a new code, the old one refused.
    std::fs::remove_file(p.dir.join(auth::PASSWORD_FILE)).unwrap();
    let (anon3, csrf3) = setup_form(&p).await;
    let fresh = p.claim_code().expect("a new code after a reset");
    let old = [
        ("csrf", csrf3.as_str()),
        ("claim_code", code.as_str()),
        ("new_password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    if fresh != code {
        let r = p.send(post("/setup", Some(&anon3), &old)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert!(!p.state.password.is_set());
    }
    let new = [
        ("csrf", csrf3.as_str()),
        ("claim_code", fresh.as_str()),
        ("new_password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let r = p.send(post("/setup", Some(&anon3), &new)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(p.claim_code(), None);
}

#[tokio::test]
async fn guessing_the_claim_code_is_rate_limited_like_passwords() {
    let p = page("claim-guess");
    let code = p.claim_code().unwrap();
    let (anon, csrf) = setup_form(&p).await;
    let attempt = |given: String| {
        let (anon, csrf) = (anon.clone(), csrf.clone());
        let p = &p;
        async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("claim_code", given.as_str()),
                ("new_password", PASSWORD),
                ("confirm", PASSWORD),
            ];
            p.send(post("/setup", Some(&anon), &form)).await
        }
    };
    let mut last = StatusCode::OK;
    for guess in 0..auth::FREE_FAILURES_PER_IP + 1 {
        let guess = format!("{:08}", if guess.to_string() == code { 99 } else { guess });
        last = attempt(guess).await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let r = attempt(code).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right code waits"
    );
    assert!(r.body.contains("Try again in"), "{}", r.body);
    assert!(!p.state.password.is_set());
    assert!(
        p.claim_code().is_some(),
        "locked out, the code still stands"
    );
}

#[tokio::test]
async fn the_page_shows_the_join_link_and_a_new_room_secret_replaces_it() {
    let p = page("secret");
    let admin = p.set_up().await;
    let old = RoomSecret::from_bytes(SECRET).expose();
    let link = format!("http://127.0.0.1:8080/r/demo#k={old}");
    let home = p.send(get("/", Some(&admin))).await;
    assert!(home.body.contains(&link), "the join link: {}", home.body);
    assert!(home.body.contains("<svg "), "its QR code");
    assert!(home.body.contains("New room secret"));
    assert!(
        home.body.contains("The old link stops working"),
        "the page says so"
    );
    let csrf = home.csrf();

    // Without the session's token, or from another site: refused, nothing changes.
    let r = p
        .send(post("/room-secret", Some(&admin), &[("csrf", "guess")]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let fields = [("csrf", csrf.as_str())];
    let mut forged = post("/room-secret", Some(&admin), &fields);
    forged.origin = Some("http://attacker.example");
    assert_eq!(p.send(forged).await.status, StatusCode::FORBIDDEN);
    // Not logged in: to the login page.
    let login = p.send(get("/login", None)).await;
    let (anon, anon_csrf) = (login.cookie.clone().unwrap(), login.csrf());
    let r = p
        .send(post("/room-secret", Some(&anon), &[("csrf", &anon_csrf)]))
        .await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    assert_eq!(p.access.borrow().room_secret.expose(), old);

    let r = p
        .send(post("/room-secret", Some(&admin), &[("csrf", &csrf)]))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/?done=secret"));
    let new = p.access.borrow().room_secret.clone();
    assert_ne!(new.expose(), old, "the running box got a new secret");
    let file = RoomSecretFile::new(&p.dir);
    assert_eq!(file.read().unwrap(), Some(new.clone()), "and it is kept");
    let home = p.send(get("/?done=secret", Some(&admin))).await;
    assert!(home.body.contains(&format!("#k={}", new.expose())));
    assert!(!home.body.contains(&old), "the old link is gone");
    assert!(
        home.body.contains("the old one no longer works"),
        "{}",
        home.body
    );
}

/// Collects everything logged through `tracing` on this thread, every level, as text.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Drives the real code paths that touch each secret with known values, and looks for them
/// where they must never be: the log (every level), the status API and fragment, error pages.
#[tokio::test]
async fn no_secret_reaches_the_log_the_status_api_or_an_error_message() {
    let log = LogCapture::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    // Start: a room secret made in an empty state directory, and the page's claim code.
    let p = page("no-leaks");
    std::fs::remove_file(p.dir.join(crate::access::ROOM_SECRET_FILE)).unwrap();
    let made = RoomSecretFile::new(&p.dir).load_or_create().unwrap();
    let mut secrets = vec![made.expose(), RoomSecret::from_bytes(SECRET).expose()];
    let code = p.claim_code().unwrap();
    // The screen's model holds the join link and the claim code, as the pipeline sets it.
    p.status.send_modify(|m| {
        m.join_link =
            crate::display::OnScreenOnly::new(format!("http://h/r/demo#k={}", secrets[1]));
        m.claim_code = Some(crate::display::OnScreenOnly::new(code.clone()));
    });

    // Every form that carries a secret, right and wrong.
    let (anon, csrf) = setup_form(&p).await;
    let wrong_code = format!(
        "{:08}",
        (code.replace('-', "").parse::<u32>().unwrap() + 1) % 100_000_000
    );
    let mut pages = Vec::new();
    for (given, password, confirm) in [
        (wrong_code.as_str(), PASSWORD, PASSWORD),
        (code.as_str(), PASSWORD, "correct horse batterY"),
        (code.as_str(), "short", "short"),
    ] {
        let form = [
            ("csrf", csrf.as_str()),
            ("claim_code", given),
            ("new_password", password),
            ("confirm", confirm),
        ];
        pages.push(p.send(post("/setup", Some(&anon), &form)).await.body);
    }
    let admin = p.set_up().await;
    let login = p.send(get("/login", None)).await;
    let (anon, csrf) = (login.cookie.clone().unwrap(), login.csrf());
    for password in ["correct horse battery?", PASSWORD] {
        let form = [("csrf", csrf.as_str()), ("password", password)];
        pages.push(p.send(post("/login", Some(&anon), &form)).await.body);
    }
    let home = p.send(get("/", Some(&admin))).await;
    let csrf = home.csrf();
    for (current, new) in [("not the password", "a new password"), (PASSWORD, "short")] {
        let form = [
            ("csrf", csrf.as_str()),
            ("current_password", current),
            ("new_password", new),
            ("confirm", new),
        ];
        pages.push(p.send(post("/password", Some(&admin), &form)).await.body);
    }
    let (csrf, values) = p.settings_form(&admin).await;
    let mut settings = values;
    settings.push(("csrf".into(), csrf.clone()));
    for (k, v) in &mut settings {
        if k == "fps" {
            *v = PASSWORD.into(); // a secret typed into the wrong field is not echoed to the log
        }
    }
    // (The refused value goes back into the admin's own form, so not into `pages`.)
    let r = p
        .send(post("/settings", Some(&admin), &pairs(&settings)))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = p
        .send(post("/room-secret", Some(&admin), &[("csrf", &csrf)]))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    secrets.push(p.access.borrow().room_secret.expose());
    let status_api = p.send(get("/api/status", Some(&admin))).await.body;
    let status_html = p.send(get("/status", Some(&admin))).await.body;
    // A careless debug line of every struct that holds a secret.
    let access = p.access.borrow().clone();
    let settings_now = p.settings.borrow().clone();
    let signaling = crate::signaling::SignalingConfig {
        url: settings_now.signal_url.clone(),
        room: settings_now.room.clone(),
        name: settings_now.name.clone(),
        secret: access.room_secret.clone(),
    };
    let model = p.status.borrow().clone();
    tracing::debug!(?access, ?signaling, ?model, settings = ?settings_now, "everything");
    let error = RoomSecretFile::new(&p.dir.join("absent"))
        .renew()
        .unwrap_err();
    tracing::warn!("{error} / {error:?}");
    drop(_logging);

    let log = log.text();
    assert!(log.contains("everything"), "the capture works: {log}");
    for s in &secrets {
        assert!(
            !log.contains(s.as_str()),
            "a room secret in the log:\n{log}"
        );
        assert!(!status_api.contains(s.as_str()) && !status_html.contains(s.as_str()));
    }
    let digits = code.replace('-', "");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&code) || l.contains(&digits))
        .collect();
    // At most its one intended line. That the line is there is checked on the real binary
    // (tests/room_secret.rs): here other tests run in parallel threads of the same process,
    // and tracing's per-callsite interest, cached process-wide, can miss a thread-local
    // subscriber's event now and then (a CI run saw none).
    assert!(
        lines.len() <= 1,
        "the claim code in one line only: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains("claim code for the settings page:")),
        "{lines:#?}"
    );
    assert!(!status_api.contains(&code) && !status_html.contains(&code));
    for secret in [
        PASSWORD,
        "correct horse batterY",
        "correct horse battery?",
        "a new password",
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
        assert!(!status_api.contains(secret));
    }
    for page in &pages {
        assert!(!page.contains(PASSWORD) && !page.contains(&code) && !page.contains(&wrong_code));
    }
}
