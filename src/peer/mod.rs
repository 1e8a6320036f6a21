//! The WebRTC side of the box: one session per remote participant, all driven by one task.

pub mod driver;
pub mod session;
pub mod stun;
pub mod udp;
