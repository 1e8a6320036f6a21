//! A per-peer audio jitter buffer keyed by RTP sequence number. Pure: the caller passes the
//! time in, pushes packets as they arrive and pops one 20 ms frame per playout tick.
//!
//! - Sequence numbers are extended past the u16 wrap; a jump of more than [`SLOTS`] packets
//!   either way (a new SSRC, a restarted sender) restarts the buffer.
//! - Playout starts once the first packet has waited the target delay (40 ms at first).
//! - A missing packet plays as [`Playout::Lost`] (with the following packet, if it is here,
//!   for FEC). If it arrives later anyway it is "late": dropped, the target grows by 20 ms
//!   (bounded 20..200 ms) and one concealed frame is inserted to actually add the delay.
//! - After 5 s without a late packet the target shrinks by 10 ms. When more than three frames
//!   above the target are queued, one frame is skipped per tick to bring latency back down.
//! - Running dry (the sender paused) returns [`Playout::Empty`] and re-buffers for the target
//!   delay when packets come back.

use std::time::{Duration, Instant};

use crate::media::frame::AUDIO_FRAME_DURATION;

/// Packets the buffer can hold (1.28 s of 20 ms frames).
pub const SLOTS: usize = 64;
const MIN_DELAY: Duration = Duration::from_millis(20);
const MAX_DELAY: Duration = Duration::from_millis(200);
const START_DELAY: Duration = Duration::from_millis(40);
const GROW_STEP: Duration = Duration::from_millis(20);
const SHRINK_STEP: Duration = Duration::from_millis(10);
/// Pops (20 ms each) without a late packet before the target shrinks: 5 s.
const SHRINK_AFTER: u32 = 250;
/// Frames queued above the target before frames are skipped.
const TRIM_SLACK: u64 = 3;
/// Extended sequence numbers start here so they never go below zero.
const EXT_BASE: u64 = 1 << 32;

/// What to play for one 20 ms tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The packet for this tick.
    Packet(&'a [u8]),
    /// This tick's packet is missing: conceal it, using `next` (the following packet) for FEC
    /// when present.
    Lost { next: Option<&'a [u8]> },
    /// Nothing to play (not started, or the sender paused).
    Empty,
}

/// Counters for the status line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicate: u64,
    pub skipped: u64,
    pub resets: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No packet yet.
    Idle,
    /// Waiting for the target delay from `since` (the first packet after a start or a dry run).
    Buffering {
        since: Option<Instant>,
    },
    Playing,
}

#[derive(Debug, Default)]
struct Slot {
    seq: u64,
    full: bool,
    data: Vec<u8>,
}

/// The jitter buffer of one remote peer's audio.
#[derive(Debug)]
pub struct JitterBuffer {
    slots: Vec<Slot>,
    state: State,
    /// Extended sequence number of the next frame to play.
    next: u64,
    /// Highest extended sequence number received.
    highest: u64,
    target: Duration,
    /// Concealed frames still to insert after the target grew.
    stretch: u32,
    calm_pops: u32,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterBuffer {
    pub fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            state: State::Idle,
            next: 0,
            highest: 0,
            target: START_DELAY,
            stretch: 0,
            calm_pops: 0,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The current target delay.
    pub fn target_delay(&self) -> Duration {
        self.target
    }

    /// Frames queued from the next one to play up to the highest received.
    pub fn queued(&self) -> u64 {
        if self.state == State::Idle || self.highest < self.next {
            0
        } else {
            self.highest - self.next + 1
        }
    }

    /// Takes in a packet that arrived at `now`.
    pub fn push(&mut self, seq: u16, payload: &[u8], now: Instant) {
        self.stats.received += 1;
        if self.state == State::Idle {
            self.restart(EXT_BASE + u64::from(seq), now);
            self.store(EXT_BASE + u64::from(seq), payload);
            return;
        }
        // Extend against the highest seen: the nearest value with these low 16 bits.
        let delta = i64::from(seq.wrapping_sub(self.highest as u16) as i16);
        let ext = self.highest.saturating_add_signed(delta);
        let window = SLOTS as u64;
        if ext >= self.next + window || ext + window < self.next {
            // Far outside the window: a new stream, not a late or early packet.
            self.stats.resets += 1;
            self.restart(ext, now);
        } else if ext < self.next {
            if matches!(self.state, State::Buffering { .. }) && self.highest < ext + window {
                // Not playing yet: an earlier packet simply starts the stream sooner.
                self.next = ext;
            } else {
                self.stats.late += 1;
                self.grow();
                return;
            }
        }
        let slot = &self.slots[(ext % window) as usize];
        if slot.full && slot.seq == ext {
            self.stats.duplicate += 1;
            return;
        }
        if let State::Buffering {
            since: since @ None,
        } = &mut self.state
        {
            *since = Some(now);
        }
        self.store(ext, payload);
    }

    /// What to play for the tick at `now`.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        match self.state {
            State::Idle => return Playout::Empty,
            State::Buffering { since } => match since {
                Some(t) if now.saturating_duration_since(t) >= self.target => {
                    self.state = State::Playing;
                }
                _ => return Playout::Empty,
            },
            State::Playing => {}
        }
        if self.highest < self.next {
            // Ran dry: wait for the target delay again once packets return.
            self.state = State::Buffering { since: None };
            return Playout::Empty;
        }
        self.adapt();
        if self.stretch > 0 {
            self.stretch -= 1;
            self.stats.lost += 1;
            return Playout::Lost { next: None };
        }
        let target_frames = (self.target.as_millis() / AUDIO_FRAME_DURATION.as_millis()) as u64;
        if self.queued() > target_frames + TRIM_SLACK {
            self.drop_slot(self.next);
            self.next += 1;
            self.stats.skipped += 1;
        }
        let seq = self.next;
        self.next += 1;
        let window = SLOTS as u64;
        let idx = (seq % window) as usize;
        if self.slots[idx].full && self.slots[idx].seq == seq {
            self.slots[idx].full = false;
            self.stats.played += 1;
            return Playout::Packet(&self.slots[idx].data);
        }
        self.stats.lost += 1;
        let following = &self.slots[((seq + 1) % window) as usize];
        let next = (following.full && following.seq == seq + 1).then_some(&following.data[..]);
        Playout::Lost { next }
    }

    /// Forgets everything; the next packet starts a new stream.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            slot.full = false;
        }
        self.state = State::Idle;
    }

    fn restart(&mut self, ext: u64, now: Instant) {
        for slot in &mut self.slots {
            slot.full = false;
        }
        self.state = State::Buffering { since: Some(now) };
        self.next = ext;
        self.highest = ext;
        self.stretch = 0;
    }

    fn store(&mut self, ext: u64, payload: &[u8]) {
        let slot = &mut self.slots[(ext % SLOTS as u64) as usize];
        slot.seq = ext;
        slot.full = true;
        // Reuses the slot's allocation once it has seen a packet this large.
        slot.data.clear();
        slot.data.extend_from_slice(payload);
        self.highest = self.highest.max(ext);
    }

    fn drop_slot(&mut self, ext: u64) {
        let slot = &mut self.slots[(ext % SLOTS as u64) as usize];
        if slot.seq == ext {
            slot.full = false;
        }
    }

    fn grow(&mut self) {
        self.calm_pops = 0;
        let grown = (self.target + GROW_STEP).min(MAX_DELAY);
        if grown > self.target && self.state == State::Playing {
            self.stretch += 1;
        }
        self.target = grown;
    }

    fn adapt(&mut self) {
        self.calm_pops += 1;
        if self.calm_pops >= SHRINK_AFTER {
            self.calm_pops = 0;
            self.target = self.target.saturating_sub(SHRINK_STEP).max(MIN_DELAY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(20);

    fn payload(seq: u16) -> [u8; 2] {
        seq.to_be_bytes()
    }

    /// Pops until the first non-Empty result (at most 20 ticks) and returns what was played
    /// in the next `n` ticks: Some(seq) for a packet, None for a loss.
    fn play(jb: &mut JitterBuffer, now: &mut Instant, n: usize) -> Vec<Option<u16>> {
        let mut out = vec![];
        for _ in 0..20 {
            if jb.pop_peek_ready(*now) {
                break;
            }
            *now += TICK;
        }
        for _ in 0..n {
            match jb.pop(*now) {
                Playout::Packet(p) => out.push(Some(u16::from_be_bytes([p[0], p[1]]))),
                Playout::Lost { .. } => out.push(None),
                Playout::Empty => {}
            }
            *now += TICK;
        }
        out
    }

    impl JitterBuffer {
        fn pop_peek_ready(&self, now: Instant) -> bool {
            match self.state {
                State::Buffering { since: Some(t) } => {
                    now.saturating_duration_since(t) >= self.target
                }
                State::Playing => true,
                _ => false,
            }
        }
    }

    #[test]
    fn waits_the_target_delay_then_plays_in_order() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        jb.push(10, &payload(10), t0);
        assert_eq!(jb.pop(t0), Playout::Empty);
        assert_eq!(jb.pop(t0 + TICK), Playout::Empty);
        jb.push(11, &payload(11), t0 + TICK);
        jb.push(12, &payload(12), t0 + 2 * TICK);
        assert_eq!(jb.pop(t0 + 2 * TICK), Playout::Packet(&payload(10)));
        assert_eq!(jb.pop(t0 + 3 * TICK), Playout::Packet(&payload(11)));
        assert_eq!(jb.pop(t0 + 4 * TICK), Playout::Packet(&payload(12)));
        // Dry: empty, not lost.
        assert_eq!(jb.pop(t0 + 5 * TICK), Playout::Empty);
        assert_eq!(jb.stats().played, 3);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn reorders() {
        let mut jb = JitterBuffer::new();
        let mut now = Instant::now();
        for seq in [100, 102, 101, 104, 103] {
            jb.push(seq, &payload(seq), now);
        }
        assert_eq!(
            play(&mut jb, &mut now, 5),
            [Some(100), Some(101), Some(102), Some(103), Some(104)]
        );
    }

    #[test]
    fn earlier_packet_while_buffering_starts_sooner() {
        let mut jb = JitterBuffer::new();
        let mut now = Instant::now();
        jb.push(7, &payload(7), now);
        jb.push(5, &payload(5), now);
        jb.push(6, &payload(6), now);
        assert_eq!(play(&mut jb, &mut now, 3), [Some(5), Some(6), Some(7)]);
    }

    #[test]
    fn conceals_loss_and_offers_fec() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        for seq in [1, 2, 4, 5] {
            jb.push(seq, &payload(seq), t0);
        }
        let t = t0 + START_DELAY;
        assert_eq!(jb.pop(t), Playout::Packet(&payload(1)));
        assert_eq!(jb.pop(t), Playout::Packet(&payload(2)));
        assert_eq!(
            jb.pop(t),
            Playout::Lost {
                next: Some(&payload(4)[..])
            }
        );
        assert_eq!(jb.pop(t), Playout::Packet(&payload(4)));
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn drops_duplicates_and_late_packets_and_grows() {
        let mut jb = JitterBuffer::new();
        let mut now = Instant::now();
        for seq in [1, 1, 2, 4] {
            jb.push(seq, &payload(seq), now);
        }
        assert_eq!(jb.stats().duplicate, 1);
        assert_eq!(play(&mut jb, &mut now, 3), [Some(1), Some(2), None]);
        let before = jb.target_delay();
        jb.push(3, &payload(3), now);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.target_delay(), before + GROW_STEP);
        // The grown target is made real with one inserted concealment frame.
        jb.push(5, &payload(5), now);
        assert_eq!(play(&mut jb, &mut now, 3), [None, Some(4), Some(5)]);
        // A late duplicate of something already played is also just late.
        jb.push(1, &payload(1), now);
        assert_eq!(jb.stats().late, 2);
    }

    #[test]
    fn target_stays_bounded() {
        let mut jb = JitterBuffer::new();
        let mut now = Instant::now();
        jb.push(50, &payload(50), now);
        play(&mut jb, &mut now, 1);
        for _ in 0..30 {
            jb.push(10, &payload(10), now);
        }
        assert_eq!(jb.target_delay(), MAX_DELAY);
        // Calm for a long time: shrinks down to the minimum.
        let mut seq = 51u16;
        for _ in 0..(SHRINK_AFTER as usize * 25) {
            jb.push(seq, &payload(seq), now);
            seq = seq.wrapping_add(1);
            let _ = jb.pop(now);
            now += TICK;
        }
        assert_eq!(jb.target_delay(), MIN_DELAY);
    }

    #[test]
    fn wraps_at_65535() {
        let mut jb = JitterBuffer::new();
        let mut now = Instant::now();
        for seq in [65534, 0, 65535, 1, 2] {
            jb.push(seq, &payload(seq), now);
        }
        assert_eq!(
            play(&mut jb, &mut now, 5),
            [Some(65534), Some(65535), Some(0), Some(1), Some(2)]
        );
        jb.push(3, &payload(3), now);
        assert_eq!(play(&mut jb, &mut now, 1), [Some(3)]);
        assert_eq!(jb.stats().late + jb.stats().resets, 0);
    }

    #[test]
    fn big_jump_restarts() {
        let mut jb = JitterBuffer::new();
        let mut now = Instant::now();
        for seq in 100..105 {
            jb.push(seq, &payload(seq), now);
        }
        assert_eq!(play(&mut jb, &mut now, 2), [Some(100), Some(101)]);
        // A new SSRC with a random start: neither late nor a thousand losses.
        for seq in [40_000, 40_001] {
            jb.push(seq, &payload(seq), now);
        }
        assert_eq!(jb.stats().resets, 1);
        assert_eq!(play(&mut jb, &mut now, 2), [Some(40_000), Some(40_001)]);
        // Backwards jumps restart too.
        jb.push(7, &payload(7), now);
        assert_eq!(jb.stats().resets, 2);
        assert_eq!(play(&mut jb, &mut now, 1), [Some(7)]);
    }

    #[test]
    fn trims_excess_latency() {
        let mut jb = JitterBuffer::new();
        let mut now = Instant::now();
        jb.push(0, &payload(0), now);
        play(&mut jb, &mut now, 1);
        // A burst after a stall: 20 frames queue up at once.
        for seq in 1..21 {
            jb.push(seq, &payload(seq), now);
        }
        let played = play(&mut jb, &mut now, 12);
        assert!(jb.stats().skipped > 0);
        assert!(jb.queued() <= 2 + TRIM_SLACK + 1, "queued {}", jb.queued());
        // What plays is still in order, just with frames skipped.
        let seqs: Vec<u16> = played.into_iter().flatten().collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }

    #[test]
    fn rebuffers_after_running_dry() {
        let mut jb = JitterBuffer::new();
        let t0 = Instant::now();
        jb.push(1, &payload(1), t0);
        assert_eq!(jb.pop(t0 + START_DELAY), Playout::Packet(&payload(1)));
        assert_eq!(jb.pop(t0 + START_DELAY + TICK), Playout::Empty);
        // The sender pauses, then resumes: packet 2 waits the target delay again.
        let t1 = t0 + Duration::from_secs(1);
        jb.push(2, &payload(2), t1);
        assert_eq!(jb.pop(t1), Playout::Empty);
        assert_eq!(jb.pop(t1 + START_DELAY), Playout::Packet(&payload(2)));
    }
}
