//! `roombox`: the conference-room box, an always-on WebRTC peer in a room, as a library: the
//! binary (main.rs) is its command line, and tests, examples and benchmarks use the same code.
//! docs/architecture.md draws the flow between these modules.

pub mod access;
pub mod audio;
pub mod calls;
pub mod capture;
pub mod config;
pub mod devices;
pub mod display;
pub mod encode;
pub mod fanout;
pub mod m2m;
pub mod media;
pub mod pipeline;
pub mod pump;
pub mod record;
pub mod remote_video;
pub mod service;
pub mod signaling;
pub mod web;
