//! The HDMI-out status screen: room, participants, HDMI-in state and the settings address (text
//! and QR code), drawn with embedded-graphics into a memory framebuffer and shown through a
//! DRM/KMS dumb buffer.
//!
//! - [`model`]: what is shown ([`StatusModel`]), compared for equality to redraw only on change.
//! - [`render`]: the layout, drawn into any `DrawTarget` (tests use `framebuffer::MemoryFramebuffer`).
//! - [`drm`]: the KMS output (find a connected connector, set its mode, copy frames in).
//! - [`screen`]: the loop that rescans outputs every 2 s and redraws on change, on its own
//!   thread ([`StatusScreen::start`]); while somebody sends the box video it shows the call's
//!   picture (`remote_video::CallPicture`) instead of the status.
//!
//! Wiring: keep a `tokio::sync::watch::Sender<StatusModel>` and one of `CallPicture`, call
//! `StatusScreen::start(tx.subscribe(), call_rx, lit_tx)` once (`lit_tx` hears whether a
//! display is lit), `send_replace`/`send_if_modified` new
//! models; dropping the model's sender ends the thread and returns the display to the console.
//!
//! Not run on a Pi yet: the DRM path ran against qemu's virtual `bochs-drm` display, not real
//! HDMI hotplug; see docs/display.md.

pub mod drm;
pub mod framebuffer;
pub mod model;
pub mod planes;
pub mod qr;
pub mod render;
pub mod screen;
pub mod text;
mod video_plane;

#[cfg(test)]
mod render_tests;

pub use model::{
    EncoderStatus, HdmiIn, MicState, OnScreenOnly, Participant, PeerState, Quality, RelayState,
    SignalingState, StatusModel,
};
pub use screen::StatusScreen;

/// Why nothing is on the screen; each logged once per change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisplayError {
    /// No KMS-capable `/dev/dri/card*` (no GPU driver, or a headless board).
    #[error("no DRM display device")]
    NoDevice,
    /// Another program (a desktop, a second roombox) holds DRM master.
    #[error("the display is in use by another program")]
    Busy,
    #[error("DRM {op}: {source}")]
    Drm {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl DisplayError {
    fn drm(op: &'static str) -> impl FnOnce(std::io::Error) -> DisplayError {
        move |source| DisplayError::Drm { op, source }
    }
}
