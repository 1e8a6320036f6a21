use super::*;
use axum::http::HeaderValue;
use std::os::unix::fs::PermissionsExt;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roombox-auth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn hashes_are_argon2id_salted_and_verify() {
    let a = hash_password("correct horse");
    let b = hash_password("correct horse");
    assert!(a.starts_with("$argon2id$"), "{a}");
    assert_ne!(a, b, "a fresh salt each time");
    assert!(verify_password(&a, "correct horse"));
    assert!(!verify_password(&a, "correct horsE"));
    assert!(!verify_password("not a hash", "correct horse"));
}

#[test]
fn the_password_file_is_0600_even_over_a_looser_old_file() {
    let dir = temp_dir("file");
    let file = PasswordFile::new(&dir);
    assert!(!file.is_set());
    assert!(!file.verify("anything at all"));
    file.set("first password").unwrap();
    let path = dir.join(PASSWORD_FILE);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert!(file.verify("first password"));
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .starts_with("$argon2id$"));
    // An operator loosened it by mistake: the next change makes it 0600 again.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    file.set("second password").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert!(file.verify("second password") && !file.verify("first password"));
    // Deleting the file is the documented reset: first run again.
    std::fs::remove_file(&path).unwrap();
    assert!(!file.is_set());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_state_directory_is_named() {
    let dir = temp_dir("nodir").join("absent");
    let e = PasswordFile::new(&dir).set("a good password").unwrap_err();
    assert_eq!(e.field, "password");
    assert!(e.message.contains("absent"), "{e}");
}

#[test]
fn new_passwords_are_checked() {
    assert!(check_new_password("short", "short").is_err());
    assert!(check_new_password("long enough", "long enougH")
        .unwrap_err()
        .contains("differ"));
    assert!(check_new_password(&"x".repeat(129), &"x".repeat(129)).is_err());
    check_new_password("long enough", "long enough").unwrap();
}

#[test]
fn sessions_expire_when_idle_and_at_their_maximum_age() {
    let mut sessions = Sessions::default();
    let t0 = Instant::now();
    let admin = sessions.create(true, t0);
    assert_eq!(admin.len(), 64, "256 bits as hex");
    assert!(sessions.get(&admin, t0 + ADMIN_IDLE / 2).unwrap().admin);
    // Used every half hour it stays alive, but not past its maximum age.
    let mut t = t0;
    while t + ADMIN_IDLE / 2 < t0 + ADMIN_MAX_AGE {
        t += ADMIN_IDLE / 2;
        assert!(sessions.get(&admin, t).is_some());
    }
    assert!(sessions
        .get(&admin, t0 + ADMIN_MAX_AGE + Duration::from_secs(1))
        .is_none());
    // Left alone longer than the idle limit, it is gone.
    let idle = sessions.create(true, t0);
    assert!(sessions
        .get(&idle, t0 + ADMIN_IDLE + Duration::from_secs(1))
        .is_none());
    assert!(
        sessions.get(&idle, t0).is_none(),
        "removed, not just hidden"
    );
    let anon = sessions.create(false, t0);
    assert!(!sessions.get(&anon, t0).unwrap().admin);
    assert!(sessions
        .get(&anon, t0 + ANONYMOUS_IDLE + Duration::from_secs(1))
        .is_none());
    assert!(sessions.get("no such token", t0).is_none());
}

#[test]
fn a_password_change_ends_every_other_session() {
    let mut sessions = Sessions::default();
    let now = Instant::now();
    let (a, b) = (sessions.create(true, now), sessions.create(true, now));
    sessions.remove_all_except(&a);
    assert!(sessions.get(&a, now).is_some() && sessions.get(&b, now).is_none());
}

#[test]
fn anonymous_sessions_are_bounded() {
    let mut sessions = Sessions::default();
    let now = Instant::now();
    let admin = sessions.create(true, now);
    for _ in 0..2000 {
        sessions.create(false, now);
    }
    assert!(sessions.map.len() <= MAX_SESSIONS);
    assert!(
        sessions.get(&admin, now).is_some(),
        "admins are never pushed out"
    );
}

#[test]
fn csrf_tokens_must_match_exactly() {
    let mut sessions = Sessions::default();
    let now = Instant::now();
    let s = sessions.create(false, now);
    let csrf = sessions.get(&s, now).unwrap().csrf;
    assert!(tokens_match(&csrf, &csrf.clone()));
    let mut other = csrf.clone();
    other.replace_range(63.., if csrf.ends_with('0') { "1" } else { "0" });
    assert!(!tokens_match(&csrf, &other));
    assert!(!tokens_match(&csrf, ""));
    assert!(!tokens_match(&csrf, &csrf[..32]));
    let other_session = sessions.create(false, now);
    assert!(!tokens_match(
        &csrf,
        &sessions.get(&other_session, now).unwrap().csrf
    ));
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn only_same_origin_requests_change_anything() {
    let ok = [
        headers(&[("host", "192.168.1.20"), ("origin", "http://192.168.1.20")]),
        headers(&[
            ("host", "127.0.0.1:8081"),
            ("origin", "http://127.0.0.1:8081"),
        ]),
        headers(&[("host", "box.local"), ("referer", "http://box.local/login")]),
    ];
    for h in ok {
        check_same_origin(&h).unwrap();
    }
    let refused = [
        // another port of the same host is another origin (the e2e test's forged form)
        headers(&[
            ("host", "127.0.0.1:8081"),
            ("origin", "http://127.0.0.1:9999"),
        ]),
        headers(&[("host", "192.168.1.20"), ("origin", "http://evil.example")]),
        headers(&[("host", "192.168.1.20"), ("origin", "null")]),
        // a prefix trick in the Referer
        headers(&[
            ("host", "box.local"),
            ("referer", "http://box.local.evil.example/"),
        ]),
        headers(&[("host", "box.local")]),
        headers(&[("origin", "http://box.local")]),
    ];
    for h in refused {
        assert!(check_same_origin(&h).is_err(), "{h:?}");
    }
}

#[test]
fn the_session_cookie_is_found_and_locked_down() {
    let h = headers(&[("cookie", "a=1; roombox_session=abc123; b=2")]);
    assert_eq!(session_cookie(&h).as_deref(), Some("abc123"));
    assert_eq!(
        session_cookie(&headers(&[("cookie", "x_roombox_session=1")])),
        None
    );
    let c = session_cookie_header("abc123");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(c.contains(part), "{c}");
    }
}

#[test]
fn logins_are_rate_limited_per_ip_then_globally() {
    let mut t = Throttle::default();
    let now = Instant::now();
    let a: IpAddr = [192, 168, 1, 5].into();
    let b: IpAddr = [192, 168, 1, 6].into();
    for _ in 0..FREE_FAILURES_PER_IP - 1 {
        t.check(a, now).unwrap();
        t.failed(a, now);
    }
    t.check(a, now).unwrap();
    t.failed(a, now); // the fifth: locked for a second
    assert_eq!(t.check(a, now), Err(Duration::from_secs(1)));
    t.check(b, now).unwrap(); // another client is not locked out by a's failures
                              // Each further failure doubles the wait.
    let later = now + Duration::from_secs(2);
    t.check(a, later).unwrap();
    t.failed(a, later);
    assert_eq!(t.check(a, later), Err(Duration::from_secs(2)));
    t.failed(a, later);
    assert_eq!(t.check(a, later), Err(Duration::from_secs(4)));
    for _ in 0..30 {
        t.failed(a, later);
    }
    assert_eq!(t.check(a, later), Err(MAX_LOCKOUT), "capped");
    // A success clears the client's own record (not the global one).
    let mut t = Throttle::default();
    t.failed(a, now);
    t.succeeded(a);
    t.check(a, now).unwrap();
    // Many clients, a few failures each: the global limit stops them all.
    let mut t = Throttle::default();
    for i in 0..FREE_FAILURES_GLOBAL {
        let ip: IpAddr = [10, 0, (i / 200) as u8, (i % 200) as u8].into();
        t.failed(ip, now);
    }
    assert!(t.check([10, 9, 9, 9].into(), now).is_err());
    assert!(t.check([10, 9, 9, 9].into(), now + MAX_LOCKOUT).is_ok());
}

#[test]
fn claim_codes_are_eight_digits_read_as_two_groups_and_never_print() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let code = ClaimCode::generate();
        let text = code.expose();
        assert_eq!(text.len(), 9, "{text}");
        assert_eq!(&text[4..5], "-");
        assert!(text.replace('-', "").bytes().all(|b| b.is_ascii_digit()));
        assert!(
            !format!("{code:?}").contains(&text[..4]),
            "Debug is redacted"
        );
        seen.insert(text);
    }
    assert!(seen.len() > 190, "random: {} distinct of 200", seen.len());
}

#[test]
fn a_claim_code_matches_as_people_type_it() {
    let code = ClaimCode(*b"04179352");
    assert_eq!(code.expose(), "0417-9352");
    for typed in ["0417-9352", "04179352", " 0417 9352 ", "0417 - 9352"] {
        assert!(code.matches(typed), "{typed:?}");
    }
    for typed in [
        "0417-9353",
        "0417935",
        "041793520",
        "",
        "04l7-9352",
        "٠٤١٧٩٣٥٢",
    ] {
        assert!(!code.matches(typed), "{typed:?}");
    }
}

#[test]
fn claim_codes_share_the_login_rate_limit_and_open_once() {
    let code = ClaimCode(*b"12345678");
    let mut t = Throttle::default();
    let now = Instant::now();
    let a: IpAddr = [192, 168, 1, 5].into();
    assert_eq!(
        check_claim(Some(&code), "1234-5678", &mut t, a, now),
        Ok(())
    );
    // Used: the caller passes None, and the same code is refused (and counted).
    assert_eq!(
        check_claim(None, "1234-5678", &mut t, a, now),
        Err(ClaimRefused::Wrong)
    );
    let mut t = Throttle::default();
    for _ in 0..FREE_FAILURES_PER_IP - 1 {
        assert_eq!(
            check_claim(Some(&code), "0000-0000", &mut t, a, now),
            Err(ClaimRefused::Wrong)
        );
    }
    assert_eq!(
        check_claim(Some(&code), "0000-0000", &mut t, a, now),
        Err(ClaimRefused::Locked(Duration::from_secs(1))),
        "the fifth wrong code locks, as the fifth wrong password does"
    );
    assert_eq!(
        check_claim(Some(&code), "1234-5678", &mut t, a, now),
        Err(ClaimRefused::Locked(Duration::from_secs(1))),
        "while locked even the right code waits"
    );
    // Wrong passwords and wrong codes add up.
    let later = now + Duration::from_secs(2);
    t.failed(a, later);
    assert_eq!(
        check_claim(Some(&code), "1234-5678", &mut t, a, later),
        Err(ClaimRefused::Locked(Duration::from_secs(2)))
    );
    let after = later + Duration::from_secs(2);
    assert_eq!(
        check_claim(Some(&code), "1234-5678", &mut t, a, after),
        Ok(())
    );
    t.check(a, after).unwrap();
}
