//! The three candidates behind one interface: 10 ms of what the box plays and of what the
//! microphone heard in, 10 ms to send out. Each is set up as a conference box would run it.

use roombox_roomsim::scenario::{from_i16, to_i16};
use roombox_roomsim::{BLOCK, RATE};
use std::collections::VecDeque;

/// What the box knows of its echo path before any canceller runs: the delay from a sample
/// handed to the playback device to its direct sound at the microphone (ALSA's buffer sizes
/// give most of it). `None`: nothing, the canceller must find it.
pub type DelayHint = Option<f32>;

pub trait Canceller {
    fn name(&self) -> String;
    /// One block: `far` goes to the speaker, `mic` came from the microphone.
    fn process(&mut self, far: &[f32], mic: &[f32], out: &mut [f32]);
}

/// Which processing is on besides the echo canceller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// AEC + noise suppression (+ each one's high-pass filter): the headline configuration.
    /// No AGC on any: it would move the gain measures for reasons that are not echo.
    AecNs,
    /// The echo canceller alone (with its own residual-echo suppressor, which is part of it).
    AecOnly,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::AecNs => "AEC+NS",
            Mode::AecOnly => "AEC only",
        }
    }
}

// --- sonora: AEC3 ---------------------------------------------------------------------------

pub struct Sonora {
    apm: sonora::AudioProcessing,
    mode: Mode,
    delay_ms: i32,
    scratch: Vec<f32>,
}

impl Sonora {
    pub fn new(mode: Mode, hint: DelayHint) -> Self {
        use sonora::config::{EchoCanceller, HighPassFilter, NoiseSuppression};
        let ns = mode == Mode::AecNs;
        let config = sonora::Config {
            echo_canceller: Some(EchoCanceller::default()),
            noise_suppression: ns.then(NoiseSuppression::default),
            high_pass_filter: ns.then(HighPassFilter::default),
            ..Default::default()
        };
        let apm = sonora::AudioProcessing::builder()
            .config(config)
            .capture_config(sonora::StreamConfig::new(RATE, 1))
            .render_config(sonora::StreamConfig::new(RATE, 1))
            .build();
        Sonora {
            apm,
            mode,
            // AEC3 estimates the delay itself; the hint is passed as an integration would.
            delay_ms: hint.map_or(0, |d| d.round() as i32),
            scratch: vec![0.0; BLOCK],
        }
    }
}

impl Canceller for Sonora {
    fn name(&self) -> String {
        format!("sonora 0.2 AEC3, {}", self.mode.label())
    }

    fn process(&mut self, far: &[f32], mic: &[f32], out: &mut [f32]) {
        self.apm
            .process_render_f32(&[far], &mut [&mut self.scratch])
            .expect("render block");
        self.apm
            .set_stream_delay_ms(self.delay_ms)
            .expect("delay in range");
        self.apm
            .process_capture_f32(&[mic], &mut [out])
            .expect("capture block");
    }
}

// --- speexdsp: MDF echo canceller + preprocessor ---------------------------------------------

/// Debian's libspeexdsp 1.2.1, declared by hand (six functions; no bindgen, no -sys crate).
mod ffi {
    use std::ffi::{c_int, c_void};
    #[repr(C)]
    pub struct SpeexEchoState {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct SpeexPreprocessState {
        _private: [u8; 0],
    }
    pub const SPEEX_ECHO_SET_SAMPLING_RATE: c_int = 24;
    pub const SPEEX_PREPROCESS_SET_DENOISE: c_int = 0;
    pub const SPEEX_PREPROCESS_SET_NOISE_SUPPRESS: c_int = 18;
    pub const SPEEX_PREPROCESS_SET_ECHO_STATE: c_int = 24;
    #[link(name = "speexdsp")]
    extern "C" {
        pub fn speex_echo_state_init(
            frame_size: c_int,
            filter_length: c_int,
        ) -> *mut SpeexEchoState;
        pub fn speex_echo_state_destroy(st: *mut SpeexEchoState);
        pub fn speex_echo_cancellation(
            st: *mut SpeexEchoState,
            rec: *const i16,
            play: *const i16,
            out: *mut i16,
        );
        pub fn speex_echo_ctl(st: *mut SpeexEchoState, request: c_int, ptr: *mut c_void) -> c_int;
        pub fn speex_preprocess_state_init(
            frame_size: c_int,
            sampling_rate: c_int,
        ) -> *mut SpeexPreprocessState;
        pub fn speex_preprocess_state_destroy(st: *mut SpeexPreprocessState);
        pub fn speex_preprocess_ctl(
            st: *mut SpeexPreprocessState,
            request: c_int,
            ptr: *mut c_void,
        ) -> c_int;
        pub fn speex_preprocess_run(st: *mut SpeexPreprocessState, x: *mut i16) -> c_int;
    }
}

pub struct Speex {
    echo: *mut ffi::SpeexEchoState,
    pre: *mut ffi::SpeexPreprocessState,
    mode: Mode,
    tail_ms: u32,
    /// speexdsp has no delay estimation: with a hint the reference is delayed here so that the
    /// direct sound lands 10 ms into the filter and the whole filter covers the room's tail.
    /// Without one the filter must cover delay + tail by itself.
    reference: VecDeque<f32>,
    predelay: usize,
}

impl Speex {
    pub fn new(mode: Mode, hint: DelayHint, tail_ms: u32) -> Self {
        let filter = (RATE * tail_ms / 1000) as i32;
        // SAFETY: plain constructors and controls; the pointers are checked and owned by Self.
        unsafe {
            let echo = ffi::speex_echo_state_init(BLOCK as i32, filter);
            let pre = ffi::speex_preprocess_state_init(BLOCK as i32, RATE as i32);
            assert!(!echo.is_null() && !pre.is_null(), "speexdsp init");
            let mut rate = RATE as i32;
            ffi::speex_echo_ctl(
                echo,
                ffi::SPEEX_ECHO_SET_SAMPLING_RATE,
                (&raw mut rate).cast(),
            );
            ffi::speex_preprocess_ctl(pre, ffi::SPEEX_PREPROCESS_SET_ECHO_STATE, echo.cast());
            // The residual-echo suppressor lives in the preprocessor's gain, which only applies
            // with denoise on; AEC-only keeps it and sets the noise floor to 0 dB (no NS).
            let mut on = 1i32;
            ffi::speex_preprocess_ctl(pre, ffi::SPEEX_PREPROCESS_SET_DENOISE, (&raw mut on).cast());
            if mode == Mode::AecOnly {
                let mut zero_db = 0i32;
                ffi::speex_preprocess_ctl(
                    pre,
                    ffi::SPEEX_PREPROCESS_SET_NOISE_SUPPRESS,
                    (&raw mut zero_db).cast(),
                );
            }
            let predelay = hint.map_or(0, |d| {
                ((d - 10.0).max(0.0) / 1000.0 * RATE as f32).round() as usize
            });
            Speex {
                echo,
                pre,
                mode,
                tail_ms,
                reference: std::iter::repeat_n(0.0, predelay).collect(),
                predelay,
            }
        }
    }
}

impl Canceller for Speex {
    fn name(&self) -> String {
        let hint = if self.predelay > 0 {
            ""
        } else {
            ", no pre-delay"
        };
        format!(
            "speexdsp 1.2.1 MDF {} ms{hint}, {}",
            self.tail_ms,
            self.mode.label()
        )
    }

    fn process(&mut self, far: &[f32], mic: &[f32], out: &mut [f32]) {
        self.reference.extend(far);
        let play: Vec<f32> = self.reference.drain(..BLOCK).collect();
        let (play, rec) = (to_i16(&play), to_i16(mic));
        let mut cleaned = vec![0i16; BLOCK];
        // SAFETY: every buffer is BLOCK samples, the frame size both states were made with.
        unsafe {
            ffi::speex_echo_cancellation(
                self.echo,
                rec.as_ptr(),
                play.as_ptr(),
                cleaned.as_mut_ptr(),
            );
            ffi::speex_preprocess_run(self.pre, cleaned.as_mut_ptr());
        }
        out.copy_from_slice(&from_i16(&cleaned));
    }
}

impl Drop for Speex {
    fn drop(&mut self) {
        // SAFETY: made in new, freed once.
        unsafe {
            ffi::speex_preprocess_state_destroy(self.pre);
            ffi::speex_echo_state_destroy(self.echo);
        }
    }
}

// --- webrtc-audio-processing 0.5 over Debian's libwebrtc-audio-processing 0.3: the old AEC ----

pub struct WebRtc03 {
    apm: webrtc_audio_processing::Processor,
    mode: Mode,
    agnostic: bool,
    render: Vec<Vec<f32>>,
    capture: Vec<Vec<f32>>,
}

impl WebRtc03 {
    pub fn new(mode: Mode, hint: DelayHint) -> Self {
        use webrtc_audio_processing as w;
        let mut apm = w::Processor::new(&w::InitializationConfig {
            num_capture_channels: 1,
            num_render_channels: 1,
            ..Default::default()
        })
        .expect("APM 0.3 init");
        let ns = mode == Mode::AecNs;
        apm.set_config(w::Config {
            echo_cancellation: Some(w::EchoCancellation {
                suppression_level: w::EchoCancellationSuppressionLevel::Moderate,
                // 32 partitions (128 ms at 16 kHz) instead of 12 (48 ms): a room's tail is longer
                // than 48 ms, and it is what Chrome shipped for the old AEC.
                enable_extended_filter: true,
                // With a hint the AEC trusts it; without one its delay estimator (DA-AEC) runs.
                enable_delay_agnostic: hint.is_none(),
                stream_delay_ms: hint.map(|d| d.round() as i32),
            }),
            noise_suppression: ns.then_some(w::NoiseSuppression {
                suppression_level: w::NoiseSuppressionLevel::Moderate,
            }),
            enable_high_pass_filter: ns,
            ..Default::default()
        });
        WebRtc03 {
            apm,
            mode,
            agnostic: hint.is_none(),
            render: vec![vec![0.0; BLOCK]],
            capture: vec![vec![0.0; BLOCK]],
        }
    }
}

impl Canceller for WebRtc03 {
    fn name(&self) -> String {
        let hint = if self.agnostic { " delay-agnostic" } else { "" };
        format!("webrtc APM 0.3 AEC{hint}, {}", self.mode.label())
    }

    fn process(&mut self, far: &[f32], mic: &[f32], out: &mut [f32]) {
        self.render[0].copy_from_slice(far);
        self.apm
            .process_render_frame_noninterleaved(&mut self.render)
            .expect("render block");
        self.capture[0].copy_from_slice(mic);
        self.apm
            .process_capture_frame_noninterleaved(&mut self.capture)
            .expect("capture block");
        out.copy_from_slice(&self.capture[0]);
    }
}
