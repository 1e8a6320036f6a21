//! A conversation with the room: the far end talks alone (the canceller converges), both talk
//! (double talk), the room talks alone, the far end talks alone again (after double talk).

use crate::{db_to_amp, talker, EchoPath, Voice, RATE};

/// Who is talking in a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Talk {
    FarOnly,
    DoubleTalk,
    NearOnly,
}

/// A stretch of the scenario, in samples.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub talk: Talk,
    pub start: usize,
    pub end: usize,
}

/// The signals of one simulated call at 48 kHz, all the same length.
pub struct Scenario {
    /// What the box plays on the speaker (the echo canceller's reference).
    pub far: Vec<f32>,
    /// What the microphone picks up: echo + near-end speech + noise.
    pub mic: Vec<f32>,
    /// The near-end talker alone, as the microphone hears them (what a perfect canceller
    /// sends).
    pub near: Vec<f32>,
    /// The echo alone.
    pub echo: Vec<f32>,
    pub phases: Vec<Phase>,
}

/// The layout: far only 10 s, double talk 6 s, near only 3 s, far only 6 s.
const LAYOUT: [(Talk, f32); 4] = [
    (Talk::FarOnly, 10.0),
    (Talk::DoubleTalk, 6.0),
    (Talk::NearOnly, 3.0),
    (Talk::FarOnly, 6.0),
];
/// The room talker at the microphone, against the far end's -20 dBFS on the speaker.
const NEAR_DBFS: f32 = -26.0;
/// The room's noise floor (fans, air conditioning), white.
const NOISE_DBFS: f32 = -60.0;

impl Scenario {
    /// The standard conversation over `path`. The far end is a low voice, the room a high one.
    pub fn conversation(path: EchoPath) -> Scenario {
        let seconds = Self::total_samples() as f32 / RATE as f32;
        let far_voice = talker::speech(Voice::LOW, seconds, RATE, path.seed);
        let near_voice = talker::speech(Voice::HIGH, seconds, RATE, path.seed + 1000);
        Self::from_talkers(&far_voice, &near_voice, path)
    }

    /// The same conversation with recorded talkers (at [`RATE`], active speech at -20 dBFS, as
    /// [`talker::speech`] gives; see [`talker::set_active_level`]). A voice shorter than the
    /// conversation is repeated from its start.
    pub fn from_talkers(far_voice: &[f32], near_voice: &[f32], path: EchoPath) -> Scenario {
        assert!(
            !far_voice.is_empty() && !near_voice.is_empty(),
            "a talker says something"
        );
        let len = Self::total_samples();
        let mut phases = Vec::new();
        let mut far = vec![0f32; len];
        let mut near = vec![0f32; len];
        let mut start = 0;
        let near_gain = db_to_amp(NEAR_DBFS + 20.0);
        for (talk, seconds) in LAYOUT {
            let end = start + (seconds * RATE as f32) as usize;
            if talk != Talk::NearOnly {
                for n in start..end {
                    far[n] = far_voice[n % far_voice.len()];
                }
            }
            if talk != Talk::FarOnly {
                for n in start..end {
                    near[n] = near_voice[n % near_voice.len()] * near_gain;
                }
            }
            phases.push(Phase { talk, start, end });
            start = end;
        }
        let echo = path.echo(&far, RATE);
        let noise = white_noise(len, NOISE_DBFS, path.seed + 2000);
        let mic = (0..len).map(|n| echo[n] + near[n] + noise[n]).collect();
        Scenario {
            far,
            mic,
            near,
            echo,
            phases,
        }
    }

    /// The conversation's length in samples.
    pub fn total_samples() -> usize {
        LAYOUT.iter().map(|(_, s)| (s * RATE as f32) as usize).sum()
    }

    /// The phases where only `talk` happens.
    pub fn phases_of(&self, talk: Talk) -> impl Iterator<Item = &Phase> {
        self.phases.iter().filter(move |p| p.talk == talk)
    }
}

fn white_noise(len: usize, dbfs: f32, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Uniform in [-a, a] has RMS a/sqrt(3).
    let a = db_to_amp(dbfs) * 3f32.sqrt();
    (0..len).map(|_| rng.random_range(-a..a)).collect()
}

/// Converts to the i16 samples a device delivers.
pub fn to_i16(x: &[f32]) -> Vec<i16> {
    x.iter()
        .map(|&s| (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)
        .collect()
}

/// Converts device samples back.
pub fn from_i16(x: &[i16]) -> Vec<f32> {
    x.iter().map(|&s| f32::from(s) / 32_768.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conversation_has_its_phases_and_levels() {
        let s = Scenario::conversation(EchoPath::default());
        assert_eq!(s.mic.len(), 25 * 48_000);
        assert_eq!(s.phases.len(), 4);
        let first = s.phases[0];
        // The far end talks, the echo arrives 6 dB down (plus the pauses' share), no near end.
        let far = crate::rms_dbfs(&s.far[first.start..first.end]);
        let echo = crate::rms_dbfs(&s.echo[first.start..first.end]);
        assert!((far - echo - 6.0).abs() < 1.5, "far {far}, echo {echo}");
        assert!(s.near[first.start..first.end].iter().all(|&x| x == 0.0));
        let near_only = s.phases_of(Talk::NearOnly).next().expect("a near phase");
        assert!(s.far[near_only.start..near_only.end]
            .iter()
            .all(|&x| x == 0.0));
    }

    #[test]
    fn recorded_talkers_are_laid_out_and_repeated() {
        // Two short "recordings": the far end repeats to fill its phases.
        let far_voice: Vec<f32> = (0..48_000)
            .map(|n| ((n % 97) as f32 - 48.0) / 480.0)
            .collect();
        let near_voice = vec![0.1f32; 1000];
        let s = Scenario::from_talkers(&far_voice, &near_voice, EchoPath::default());
        assert_eq!(s.mic.len(), Scenario::total_samples());
        assert_eq!(s.far[48_000 + 5], far_voice[5], "repeated from its start");
        let dt = s.phases_of(Talk::DoubleTalk).next().expect("double talk");
        assert_eq!(s.far[dt.start], far_voice[dt.start % 48_000]);
        assert!((s.near[dt.start] - 0.1 * db_to_amp(NEAR_DBFS + 20.0)).abs() < 1e-6);
        assert!(s.near[..s.phases[0].end].iter().all(|&x| x == 0.0));
    }
}
