//! The box's secrets at start, through the real binary: a malformed `<state_dir>/room-secret`
//! stops `roombox run` naming the file (and is left alone); a fresh state directory gets a new
//! secret and, the page having no password, one claim-code line in the log; `roombox demo`
//! prints its join link with the secret it made. The secret never appears in the log.
//!
//! The boxes that start run in their own network namespace with only loopback up
//! (`unshare --net`, so root), as in tests/service_notify.rs.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BOX: &str = env!("CARGO_BIN_EXE_roombox");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("roombox-secret-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_args(state_dir: &Path, web: &str) -> Vec<String> {
    let mut args: Vec<String> = "run --signal-url http://127.0.0.1:9 --room secret-test \
         --video test --audio-in test --audio-out none --width 320 --height 240 --ice-loopback"
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    args.extend(["--web".into(), web.into()]);
    args.extend([
        "--config".into(),
        state_dir.join("none.toml").display().to_string(),
    ]);
    args.extend(["--state-dir".into(), state_dir.display().to_string()]);
    args
}

/// A child in a network namespace of its own with loopback up; its stdout and stderr lines.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[String]) -> Running {
        let script = r#"ip link set lo up && exec "$0" "$@""#;
        let mut child = Command::new("unshare")
            .args(["--net", "sh", "-c", script, BOX])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run `unshare` (util-linux; the test needs root for a network namespace)");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for pipe in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `want`; returns it.
    fn wait_for(&mut self, want: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(want) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {want:?}; got:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Stops the child and returns everything it printed.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

#[test]
fn a_malformed_room_secret_stops_the_box_naming_the_file() {
    let dir = temp_dir("malformed");
    let file = dir.join("room-secret");
    std::fs::write(&file, "not-a-secret\n").unwrap();
    let out = Command::new(BOX)
        .args(run_args(&dir, "off"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the box started:\n{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("22 base64url characters"), "{stderr}");
    assert!(
        !stderr.contains("not-a-secret"),
        "the contents are not echoed: {stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "not-a-secret\n",
        "kept"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_new_box_makes_its_secret_and_logs_one_claim_code() {
    let dir = temp_dir("fresh");
    let mut running = Running::start(&run_args(&dir, "127.0.0.1:0"));
    running.wait_for("made a new room secret");
    let line = running.wait_for("claim code for the settings page: ");
    let code = line
        .rsplit("claim code for the settings page: ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(code.len(), 9, "{line}");
    running.wait_for("signaling connect failed"); // well into its run
    let log = running.stop();
    let secret = std::fs::read_to_string(dir.join("room-secret")).unwrap();
    assert_eq!(secret.len(), 23, "22 characters and a newline");
    assert!(
        !log.contains(secret.trim()),
        "the room secret in the log:\n{log}"
    );
    assert_eq!(log.matches(&code).count(), 1, "the code once:\n{log}");

    // Started again: the same secret, read, not made; still unclaimed, so a new code.
    let mut again = Running::start(&run_args(&dir, "127.0.0.1:0"));
    let line = again.wait_for("claim code for the settings page: ");
    let log = again.stop();
    assert!(!log.contains("made a new room secret"), "{log}");
    assert_eq!(
        std::fs::read_to_string(dir.join("room-secret")).unwrap(),
        secret
    );
    assert!(!log.contains(secret.trim()), "{log}");
    assert!(
        !line.ends_with(&code),
        "a new code each start (equal once in 10^8)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_demo_prints_its_join_link_with_a_fresh_secret() {
    let mut demo = Running::start(
        &"demo --listen 127.0.0.1:0 --web 127.0.0.1:0 --ice-loopback"
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    );
    let line = demo.wait_for("roombox demo: open ");
    let pid = demo.child.id();
    let log = demo.stop();
    // "roombox demo: open http://127.0.0.1:PORT/r/demo#k=SECRET in a browser (Ctrl-C to stop)"
    let link = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("{line}"));
    let (page, secret) = link.split_once("#k=").unwrap_or_else(|| panic!("{line}"));
    assert!(
        page.starts_with("http://127.0.0.1:") && page.ends_with("/r/demo"),
        "{line}"
    );
    assert_eq!(secret.len(), 22, "{line}");
    assert_eq!(
        log.matches(secret).count(),
        1,
        "only on the line printed:\n{log}"
    );
    // The demo's secret is the one in its fresh state directory (the shell exec'd the box, so
    // the child's pid is the box's).
    let state = std::env::temp_dir().join(format!("roombox-demo-{pid}"));
    let kept = std::fs::read_to_string(state.join("room-secret"));
    let _ = std::fs::remove_dir_all(&state);
    assert_eq!(kept.unwrap().trim(), secret);
}
