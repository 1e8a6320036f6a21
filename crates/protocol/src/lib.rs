//! Wire types of the roombox signaling protocol, version 1 (see docs/protocol.md).
//!
//! Shared by the server (`roombox-signal`) and the box (`roombox`). Parsing is split in two
//! steps so that every failure maps to a stable error code: first the frame must be a JSON
//! object with a string `type` (else `bad-json`), then the type must be known (else
//! `unknown-type`), then its fields must fit (else `bad-json`, naming the field).

mod error;
mod ids;
mod messages;

pub use error::{ErrorCode, ParseError};
pub use ids::{PeerId, RoomName, MAX_NAME_CHARS};
pub use messages::{
    parse_client_message, ClientMessage, IceCandidateInit, IceServer, Join, MemberKey, PeerInfo,
    PeerKind, Relay, RelayKind, Resume, ServerMessage, ViewWish, Welcome,
};

/// Largest text frame the server accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
