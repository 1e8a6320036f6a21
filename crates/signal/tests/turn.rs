//! TURN REST credentials end to end: the server hands each client a time-limited username and
//! password in `welcome`, and a real coturn (Debian's `coturn`, `use-auth-secret`) grants an
//! allocation with them and refuses a forged one. Everything on 127.0.0.1.

mod common;

use common::{id_of, Server};
use serde_json::Value;
use std::net::UdpSocket;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "roombox-test-secret";

/// coturn on a free loopback port, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Coturn {
    fn start() -> Coturn {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("roombox-coturn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                "--use-auth-secret",
                &format!("--static-auth-secret={SECRET}"),
                "--realm=roombox.test",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--allow-loopback-peers",
                "--simple-log",
                &format!("--log-file={}", dir.join("turn.log").display()),
                &format!("--pidfile={}", dir.join("turn.pid").display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver (Debian's coturn) runs: bash scripts/deps/install.sh test");
        // Up when it answers a STUN binding on its port.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let binding = [
            0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        let mut buf = [0u8; 512];
        for _ in 0..100 {
            probe.send_to(&binding, ("127.0.0.1", port)).unwrap();
            if probe.recv(&mut buf).is_ok() {
                return Coturn {
                    child,
                    port,
                    _dir: TempDir(dir),
                };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("coturn did not answer on 127.0.0.1:{port}");
    }

    /// Two relayed clients sending each other 5 messages through allocations made with
    /// `username`/`password` (coturn's own test client).
    fn allocate(&self, username: &str, password: &str) -> Output {
        Command::new("timeout")
            .args([
                "20",
                "turnutils_uclient",
                "-y",
                "-n",
                "5",
                "-m",
                "1",
                "-l",
                "100",
            ])
            .args(["-p", &self.port.to_string(), "-u", username, "-w", password])
            .arg("127.0.0.1")
            .output()
            .expect("turnutils_uclient (Debian's coturn) runs")
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn turn_entry(welcome: &Value) -> &Value {
    welcome["iceServers"]
        .as_array()
        .expect("iceServers")
        .iter()
        .find(|s| {
            s["urls"][0]
                .as_str()
                .is_some_and(|u| u.starts_with("turn:"))
        })
        .expect("a TURN entry in welcome")
}

/// A signaling server handing out credentials for `coturn` that last `ttl` seconds; and the
/// TURN URL it names.
fn server_for(coturn: &Coturn, ttl: u32) -> (Server, String) {
    let urls = format!("turn:127.0.0.1:{}?transport=udp", coturn.port);
    let ttl = ttl.to_string();
    let flags = [
        "--turn-secret",
        SECRET,
        "--turn-urls",
        &urls,
        "--turn-ttl",
        &ttl,
    ];
    (Server::start(&flags), urls)
}

#[tokio::test]
async fn each_client_gets_credentials_that_coturn_accepts_and_a_forgery_is_refused() {
    let coturn = Coturn::start();
    let (server, urls) = server_for(&coturn, 600);
    let mut a = server.client().await;
    let mut b = server.client().await;
    let wa = a.join("turn", "A").await;
    let wb = b.join("turn", "B").await;

    // STUN stays; the TURN entry is the client's own.
    assert_eq!(wa["iceServers"].as_array().unwrap().len(), 2, "{wa}");
    let (ta, tb) = (turn_entry(&wa), turn_entry(&wb));
    assert_eq!(ta["urls"], serde_json::json!([urls]));
    let username = ta["username"].as_str().unwrap();
    let password = ta["credential"].as_str().unwrap();
    let (expiry, id) = username.split_once(':').expect("EXPIRY:ID");
    assert_eq!(id, id_of(&wa));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (now + 590..=now + 610).contains(&expiry),
        "expires in --turn-ttl seconds: {expiry} vs now {now}"
    );
    assert_ne!(tb["username"], ta["username"]);
    assert_ne!(tb["credential"], ta["credential"]);
    assert!(
        !wa.to_string().contains(SECRET),
        "the secret never reaches a client"
    );

    let granted = coturn.allocate(username, password);
    let log = String::from_utf8_lossy(&granted.stdout);
    assert!(
        granted.status.success() && log.contains("tot_recv_bytes ~ 2000"),
        "coturn relays with the welcome's credentials:\n{log}"
    );

    // Another peer's password under this username, or a username with a later expiry, fails.
    let tb_password = tb["credential"].as_str().unwrap();
    let refused = coturn.allocate(username, tb_password);
    assert!(!refused.status.success(), "a swapped password is refused");
    let later = format!("{}:{id}", expiry + 3600);
    let refused = coturn.allocate(&later, password);
    assert!(!refused.status.success(), "an extended expiry is refused");
}

#[test]
fn turn_settings_that_cannot_work_stop_the_server_with_their_name() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_roombox-signal"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("ROOMBOX_TURN_SECRET")
            .env_remove("ROOMBOX_TURN_URLS")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&["--turn-urls", "turn:127.0.0.1:3478"]).contains("--turn-secret"));
    assert!(run(&["--turn-secret", "x"]).contains("--turn-urls"));
    assert!(run(&["--turn-secret", "x", "--turn-urls", "stun:a:1"]).contains("stun:a:1"));
    assert!(run(&[
        "--turn-secret",
        "x",
        "--turn-urls",
        "turn:a",
        "--turn-ttl",
        "5"
    ])
    .contains("--turn-ttl"));
}

#[tokio::test]
async fn credentials_are_renewed_at_half_their_lifetime_and_coturn_takes_the_new_ones() {
    let coturn = Coturn::start();
    let (server, _) = server_for(&coturn, 60);
    let mut a = server.client().await;
    let welcome = a.join("renew", "A").await;
    let first = turn_entry(&welcome).clone();
    // The shortest lifetime is 60 s: nothing for the first 25 s (pings answered meanwhile),
    // the renewal at 30 s.
    a.expect_silence(Duration::from_secs(25)).await;
    let renewed = a.recv().await;
    assert_eq!(renewed["type"], "ice-servers", "{renewed}");
    assert_eq!(
        renewed["iceServers"].as_array().unwrap().len(),
        2,
        "{renewed}"
    );
    let fresh = turn_entry(&renewed);
    let expiry = |e: &serde_json::Value| -> u64 {
        let u = e["username"].as_str().unwrap();
        u.split_once(':').unwrap().0.parse().unwrap()
    };
    assert!(
        (28..=32).contains(&(expiry(fresh) - expiry(&first))),
        "the new credential lasts 30 s longer: {first} then {fresh}"
    );
    assert_eq!(
        fresh["username"]
            .as_str()
            .unwrap()
            .split_once(':')
            .unwrap()
            .1,
        id_of(&welcome)
    );
    let granted = coturn.allocate(
        fresh["username"].as_str().unwrap(),
        fresh["credential"].as_str().unwrap(),
    );
    assert!(
        granted.status.success(),
        "coturn takes the renewed credentials"
    );
}
