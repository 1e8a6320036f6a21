//! What the call looks like now: each sender's latest decoded picture, shared (cheaply, the
//! frames behind `Arc`s) with whoever draws it: the HDMI-out screen at its mode's size, the file
//! sink at its own.

use super::compose::{compose, compose_overlay, lone_picture, Rect, Tile, VideoKind};
use crate::display::framebuffer::MemoryFramebuffer;
use crate::media::VideoFrame;
use std::sync::Arc;

/// Each shown picture's name, kind, speaking and size: what a layout is drawn from.
pub type LayoutKey = Vec<(String, VideoKind, bool, u32, u32)>;

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
        compose(&self.tiles(), out)
    }

    /// Draws the call but its one picture, for a video plane (see [`compose_overlay`]).
    pub fn draw_overlay(&self, out: &mut MemoryFramebuffer) -> Option<(&VideoFrame, Rect)> {
        compose_overlay(&self.tiles(), out)
    }

    /// The one picture a video plane would show on a `w` x `h` display, and where.
    pub fn lone_picture(&self, w: u32, h: u32) -> Option<(&VideoFrame, Rect)> {
        lone_picture(&self.tiles(), w, h)
    }

    /// What the layout and the overlay depend on (not the pictures' contents): equal keys
    /// draw the same overlay.
    pub fn layout_key(&self) -> LayoutKey {
        self.shown
            .iter()
            .map(|s| {
                let (w, h) = (s.frame.width, s.frame.height);
                (s.name.clone(), s.kind, s.speaking, w, h)
            })
            .collect()
    }

    fn tiles(&self) -> Vec<Tile<'_>> {
        self.shown
            .iter()
            .map(|s| Tile {
                name: &s.name,
                kind: s.kind,
                speaking: s.speaking,
                frame: &s.frame,
            })
            .collect()
    }
}
