//! What the call looks like now: each sender's latest decoded picture, shared (cheaply, the
//! frames behind `Arc`s) with whoever draws it: the HDMI-out screen at its mode's size, the file
//! sink at its own.

use super::compose::{compose, Tile, VideoKind};
use crate::display::framebuffer::MemoryFramebuffer;
use crate::media::VideoFrame;
use std::sync::Arc;

/// One sender's latest picture.
#[derive(Clone, Debug)]
pub struct Shown {
    pub name: String,
    pub kind: VideoKind,
    pub speaking: bool,
    pub frame: Arc<VideoFrame>,
}

/// The pictures to show; `generation` changes with every change, so a drawer redraws only then.
#[derive(Clone, Debug, Default)]
pub struct CallPicture {
    pub generation: u64,
    pub shown: Vec<Shown>,
}

impl CallPicture {
    /// Nobody sends video: the status screen is what to show.
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    /// Draws the call over the whole of `out` (see [`compose`]); false when it is empty.
    pub fn draw(&self, out: &mut MemoryFramebuffer) -> bool {
        let tiles: Vec<Tile> = self
            .shown
            .iter()
            .map(|s| Tile {
                name: &s.name,
                kind: s.kind,
                speaking: s.speaking,
                frame: &s.frame,
            })
            .collect();
        compose(&tiles, out)
    }
}
