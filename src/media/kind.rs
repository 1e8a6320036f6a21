//! What a remote picture is, as its sender labels it (docs/protocol.md, `media`): the room's
//! display gives a shared screen the whole screen and puts cameras in a grid.

/// A camera or a shared screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoKind {
    Screen,
    Camera,
}

impl VideoKind {
    /// The label on the wire (`"screen"`, `"camera"`); `None` for any other.
    pub fn from_label(label: &str) -> Option<VideoKind> {
        match label {
            "screen" => Some(VideoKind::Screen),
            "camera" => Some(VideoKind::Camera),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            VideoKind::Screen => "screen",
            VideoKind::Camera => "camera",
        }
    }
}
