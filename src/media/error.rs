//! Why a source could not be opened or read: one error for video and audio sources, so the
//! threads that run them report alike.

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a YUV4MPEG2 file we can read: {reason}")]
    BadY4mHeader { path: String, reason: String },
    #[error("{path}: colourspace {colourspace} is not supported (use 420, 420jpeg, 420paldv, 420mpeg2 or mono)")]
    UnsupportedColourspace { path: String, colourspace: String },
    #[error("{path}: no complete frame in the file")]
    NoFrames { path: String },
    #[error("video size {width}x{height} is not supported (even sizes from {w0}x{h0} to {w1}x{h1})",
        w0 = crate::config::limits::WIDTH.start(), h0 = crate::config::limits::HEIGHT.start(),
        w1 = crate::config::limits::WIDTH.end(), h1 = crate::config::limits::HEIGHT.end())]
    BadSize { width: u32, height: u32 },
    #[error("frame rate {0} is not supported ({lo} to {hi})", lo = crate::config::limits::FPS.start(), hi = crate::config::limits::FPS.end())]
    BadFrameRate(u32),
    #[error("ALSA capture device {device:?}: {reason}")]
    AlsaConfig { device: String, reason: String },
    #[error("V4L2 capture: {0}")]
    V4l2(String),
}
