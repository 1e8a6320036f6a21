//! ALSA capture and playback for the box: 20 ms frames of 48 kHz mono S16 on our side,
//! whatever rate and channel count the device has on the other (resampled and mixed), with
//! xruns recovered and vanished devices retried without stopping anything. Both block in the
//! device call (or on a stand-in clock while the device is away), so run each on its own
//! thread.

mod capture;
mod convert;
mod device;
mod playback;
mod watch;

pub use capture::AlsaCapture;
pub use playback::AlsaPlayback;
