//! The box under a stand-in for systemd: a real `roombox run` child is given a NOTIFY_SOCKET
//! and a 2 s watchdog, and must say READY=1, keep sending WATCHDOG=1, say STOPPING=1 on SIGTERM
//! and exit 0, all while its signaling server is unreachable (it keeps retrying).
//!
//! The child runs in its own network namespace with only loopback up (`unshare --net`, so root),
//! so nothing it does can reach another machine.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Box {
    child: Child,
    dir: PathBuf,
}

impl Drop for Box {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Box {
    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

/// Receives datagrams until one has a line equal to `want`; returns every line seen.
fn wait_for(sock: &UnixDatagram, want: &str, within: Duration, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok(n) = sock.recv(&mut buf) else {
            return false;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let mut found = false;
        for line in text.lines() {
            found |= line == want;
            seen.push(line.to_owned());
        }
        if found {
            return true;
        }
    }
    false
}

#[test]
fn ready_watchdog_status_and_stopping_over_notify_socket() {
    let dir = std::env::temp_dir().join(format!("roombox-notify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).expect("bind the notify socket");

    // WATCHDOG_PID must be the box's own pid: `exec` keeps the shell's, which is `$$`.
    let script = r#"ip link set lo up && WATCHDOG_PID=$$ exec "$0" "$@""#;
    let child = Command::new("unshare")
        .args(["--net", "sh", "-c", script, env!("CARGO_BIN_EXE_roombox")])
        .args(
            "run --signal-url http://127.0.0.1:9 --room notify-test --video test --audio-in test \
             --audio-out none --width 320 --height 240 --ice-loopback --web off"
                .split_whitespace(),
        )
        // The room secret is made in the test's own directory, not in /var/lib/roombox.
        .arg("--state-dir")
        .arg(&dir)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "2000000")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run `unshare` (util-linux; the test needs root for a network namespace)");
    let mut the_box = Box { child, dir };
    let pid = the_box.child.id();

    let mut seen = Vec::new();
    let ready = wait_for(&sock, "READY=1", Duration::from_secs(60), &mut seen);
    assert!(ready, "no READY=1; got {seen:?}\n{}", the_box.stderr());
    // A 2 s watchdog is petted at least once a second.
    for _ in 0..3 {
        let pinged = wait_for(&sock, "WATCHDOG=1", Duration::from_secs(2), &mut seen);
        assert!(pinged, "no WATCHDOG=1; got {seen:?}\n{}", the_box.stderr());
    }
    assert!(
        the_box.child.try_wait().unwrap().is_none(),
        "the box exited"
    );
    assert!(
        seen.iter()
            .any(|l| l == "STATUS=room notify-test: 0 peers connected"),
        "no STATUS line naming the room; got {seen:?}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = wait_for(&sock, "STOPPING=1", Duration::from_secs(10), &mut seen);
    assert!(
        stopping,
        "no STOPPING=1; got {seen:?}\n{}",
        the_box.stderr()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = the_box.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the box did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = the_box.stderr();
    assert!(status.success(), "exit status {status}\n{log}");
    // Nobody listens at the signaling URL: the box kept retrying instead of giving up.
    let retries = log.matches("signaling connect failed").count();
    assert!(retries >= 2, "{retries} signaling retries\n{log}");
}
