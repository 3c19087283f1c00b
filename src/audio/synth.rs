//! WaveJam's own polyphonic synth: a fixed pool of voices, real-time safe.
//!
//! Every method is meant for the audio thread: after `Synth::new` nothing allocates, locks,
//! logs or does I/O. Voices are slots in a fixed array; `POLYPHONY` of them may sound at once,
//! and `STEAL_SLOTS` more let a stolen voice fade out (3 ms) while the note that stole it
//! starts, so stealing never clicks. The sound itself is described in `voice`.

mod envelope;
mod filter;
mod oscillator;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod voice;

use voice::{Voice, VoiceContext};

/// Notes that can sound at once (held or releasing) before the next note-on steals one.
pub const POLYPHONY: usize = 24;
/// Extra slots in which stolen voices finish their fade; more steals than this within one fade
/// time (3 ms) cut the quietest fading voice instead.
const STEAL_SLOTS: usize = 8;
/// Every voice slot: the polyphony plus the fading room.
const VOICE_SLOTS: usize = POLYPHONY + STEAL_SLOTS;
/// Lowest and highest sample rates accepted, in Hz; others are clamped into this range.
const SAMPLE_RATE_RANGE_HZ: (f32, f32) = (8_000.0, 768_000.0);
/// Sample rate assumed when the host reports a non-finite one, in Hz.
const FALLBACK_SAMPLE_RATE_HZ: f32 = 48_000.0;
/// Seed of the start-phase generator, restored by `reset` so bounces are deterministic.
const PHASE_SEED: u32 = 0x9E37_79B9;

/// Who asked for a note, so that the player's thru notes and the generated answer's notes
/// never release each other even on the same channel and key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VoiceSource {
    /// Notes the musician is playing, passed through.
    Player,
    /// Notes of WaveJam's generated answer.
    Answer,
}

/// Identity of a sounding note: `note_off` releases every voice with an equal key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VoiceKey {
    /// Player thru or generated answer.
    pub source: VoiceSource,
    /// MIDI channel, 0–15.
    pub channel: u8,
    /// MIDI note number, 0–127 (60 is middle C).
    pub key: u8,
}

/// The polyphonic synth: call the note methods between `render` calls, at the event offsets.
#[derive(Clone, Debug)]
pub struct Synth {
    /// Every slot, idle ones included; a slot never moves or reallocates.
    voices: [Voice; VOICE_SLOTS],
    /// Coefficients every voice reads, for the current sample rate.
    context: VoiceContext,
    /// Increases with every note-on and note-off, to find the oldest voice when stealing.
    next_stamp: u64,
    /// xorshift32 state for free-running oscillator start phases.
    phase_rng_state: u32,
}

impl Synth {
    /// A silent synth for `sample_rate_hz`. Builds the shared tables: call it off the audio
    /// thread (e.g. in the plugin's `initialize`).
    pub fn new(sample_rate_hz: f32) -> Self {
        Self {
            voices: [Voice::idle(); VOICE_SLOTS],
            context: VoiceContext::new(sanitize_sample_rate(sample_rate_hz)),
            next_stamp: 1,
            phase_rng_state: PHASE_SEED,
        }
    }

    /// Switches to `sample_rate_hz` (intended range 22.05–192 kHz) and silences every voice,
    /// since a host only changes the rate while processing is stopped.
    pub fn set_sample_rate(&mut self, sample_rate_hz: f32) {
        self.context
            .set_sample_rate(sanitize_sample_rate(sample_rate_hz));
        self.reset();
    }

    /// Starts a note; `velocity` is `0.0..=1.0` (out-of-range values are clamped, NaN is 0).
    ///
    /// A voice still held with the same key is released first, so repeated note-ons never
    /// stack. When `POLYPHONY` notes already sound, the oldest releasing voice (else the
    /// oldest held one) fades out over 3 ms in its own slot while the new note starts.
    pub fn note_on(&mut self, key: VoiceKey, velocity: f32) {
        let velocity = if velocity.is_nan() {
            0.0
        } else {
            velocity.clamp(0.0, 1.0)
        };
        self.note_off(key);
        let sounding = self
            .voices
            .iter()
            .filter(|v| v.is_active() && !v.is_fading())
            .count();
        if sounding >= POLYPHONY {
            if let Some(victim) = self.steal_candidate() {
                self.voices[victim].fade_out(&self.context);
            }
        }
        let slot = self.free_slot();
        let phases = [self.next_phase(), self.next_phase(), self.next_phase()];
        let stamp = self.take_stamp();
        self.voices[slot].start(key, velocity, stamp, phases, &self.context);
    }

    /// Releases every held voice playing `key`; they fade out over the release time.
    pub fn note_off(&mut self, key: VoiceKey) {
        let stamp = self.take_stamp();
        for voice in &mut self.voices {
            if voice.is_held() && voice.key() == key {
                voice.release(stamp, &self.context);
            }
        }
    }

    /// Releases every held voice musically (transport stop, panic).
    pub fn release_all(&mut self) {
        let stamp = self.take_stamp();
        for voice in &mut self.voices {
            voice.release(stamp, &self.context);
        }
    }

    /// Instant silence: stops every voice and restores the start-phase seed.
    pub fn reset(&mut self) {
        for voice in &mut self.voices {
            voice.stop();
        }
        self.next_stamp = 1;
        self.phase_rng_state = PHASE_SEED;
    }

    /// Voices still producing sound, including releasing and fading ones.
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.is_active()).count()
    }

    /// Overwrites `left` and `right` with the sum of all voices. Both slices should have the
    /// same length (any, including 0; of unequal ones only the common length is rendered and
    /// the rest zeroed); rendering in pieces gives the same samples as in one call.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        debug_assert_eq!(left.len(), right.len(), "left and right differ in length");
        left.fill(0.0);
        right.fill(0.0);
        let len = left.len().min(right.len());
        let (left, right) = (&mut left[..len], &mut right[..len]);
        for voice in self.voices.iter_mut().filter(|v| v.is_active()) {
            voice.render_add(&self.context, left, right);
        }
    }

    /// The voice to fade when the polyphony is full: the one released longest ago, else the
    /// one started longest ago. Fading voices are already on their way out.
    fn steal_candidate(&self) -> Option<usize> {
        let sounding = || {
            self.voices
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_active() && !v.is_fading())
        };
        sounding()
            .filter(|(_, v)| !v.is_held())
            .min_by_key(|(_, v)| v.released_stamp())
            .or_else(|| sounding().min_by_key(|(_, v)| v.started_stamp()))
            .map(|(slot, _)| slot)
    }

    /// An idle slot; when every slot is busy (more steals than `STEAL_SLOTS` within one fade),
    /// the quietest fading voice is cut, which at that level is inaudible in the crowd.
    fn free_slot(&self) -> usize {
        self.voices
            .iter()
            .position(|v| !v.is_active())
            .or_else(|| {
                self.voices
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_fading())
                    .min_by(|(_, a), (_, b)| a.level().total_cmp(&b.level()))
                    .map(|(slot, _)| slot)
            })
            .unwrap_or(0)
    }

    fn take_stamp(&mut self) -> u64 {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        stamp
    }

    /// A pseudo-random start phase in `0.0..1.0` (xorshift32, deterministic after `reset`).
    fn next_phase(&mut self) -> f32 {
        let mut x = self.phase_rng_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.phase_rng_state = x;
        (x >> 8) as f32 / (1u32 << 24) as f32
    }
}

/// Clamps a host-reported sample rate into the supported range; non-finite becomes 48 kHz.
fn sanitize_sample_rate(sample_rate_hz: f32) -> f32 {
    if sample_rate_hz.is_finite() {
        sample_rate_hz.clamp(SAMPLE_RATE_RANGE_HZ.0, SAMPLE_RATE_RANGE_HZ.1)
    } else {
        FALLBACK_SAMPLE_RATE_HZ
    }
}
