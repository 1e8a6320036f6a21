//! Sealed signaling, protocol version 2 (docs/protocol.md, "Version 2: sealed signaling").
//!
//! The signaling server routes opaque envelopes: a room's members prove membership with the
//! room secret, agree pairwise keys with X-Wing (ML-KEM-768 + X25519), and seal every offer,
//! answer, candidate and name with AES-256-GCM. Sans-IO: messages in, messages out.

mod crypto;
pub mod frame;
mod sealer;
mod secret;
#[cfg(test)]
mod vectors_tests;

pub use crypto::{safety_code, Identity, PairKeys, RoomKeys};
pub use sealer::{Hi, Refusal, SealOutput, Sealer};
pub use secret::{RoomSecret, SecretError, SECRET_BYTES};
