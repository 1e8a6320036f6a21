//! Counters for `/metrics`, rendered in the Prometheus text format by hand: a handful of
//! atomics do not justify a metrics registry dependency.

use roombox_protocol::ErrorCode;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Metrics {
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_relayed: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
}

impl Metrics {
    pub fn count_error(&self, code: ErrorCode) {
        self.errors[code.index()].fetch_add(1, Relaxed);
    }

    pub fn errors(&self, code: ErrorCode) -> u64 {
        self.errors[code.index()].load(Relaxed)
    }

    /// The exposition text; `rooms` and `peers` are read from the room table by the caller.
    pub fn render(&self, rooms: usize, peers: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "roombox_signal_connections_open",
            "gauge",
            "WebSocket connections open now.",
            self.connections_open.load(Relaxed),
        );
        metric(
            "roombox_signal_connections_total",
            "counter",
            "WebSocket connections accepted since start.",
            self.connections_total.load(Relaxed),
        );
        metric(
            "roombox_signal_rooms",
            "gauge",
            "Rooms with at least one peer.",
            rooms as u64,
        );
        metric(
            "roombox_signal_peers",
            "gauge",
            "Peers joined to a room.",
            peers as u64,
        );
        metric(
            "roombox_signal_messages_received_total",
            "counter",
            "Text messages received from clients.",
            self.messages_received.load(Relaxed),
        );
        metric(
            "roombox_signal_messages_relayed_total",
            "counter",
            "Offers, answers and ICE candidates relayed to a peer.",
            self.messages_relayed.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP roombox_signal_errors_total Error replies sent, by code.\n# TYPE roombox_signal_errors_total counter"
        );
        for code in ErrorCode::ALL {
            let _ = writeln!(
                out,
                "roombox_signal_errors_total{{code=\"{code}\"}} {}",
                self.errors(code)
            );
        }
        out
    }
}
