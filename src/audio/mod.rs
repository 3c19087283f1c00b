//! The audio thread: musical clock, call-and-response conductor, answer playback, output events
//! and WaveJam's own voice, rendered block by block ([`AudioSide`]).

pub mod answer;
pub mod clock;
pub mod conductor;
pub mod events;
pub mod pace;
pub mod sound;
pub mod sustain;
pub mod synth;

use std::time::Instant;

use conductor::{Conductor, Delivery};
use events::OutEvent;
use pace::Pace;
use sound::Sound;
use synth::VoiceKey;

use crate::params::VoiceChoice;
use crate::voice::slot::AudioEnds;

/// What the audio thread works with: made by the first activation and kept across
/// deactivation (the notes it owes the host's MIDI output and the phrase in progress survive).
pub struct AudioSide {
    pub conductor: Conductor,
    /// The synth and the neural voices the notes sound on.
    pub sound: Sound,
    /// Whether the host runs far ahead of the wall clock (then it is treated as a bounce).
    pace: Pace,
}

impl AudioSide {
    /// Allocates (every voice): activation only. `voices` are the audio thread's ends of the
    /// custom voice's rings.
    pub fn new(sample_rate_hz: f32, conductor: Conductor, voices: AudioEnds) -> Self {
        Self {
            conductor,
            sound: Sound::new(sample_rate_hz, voices),
            pace: Pace::new(sample_rate_hz),
        }
    }

    /// The host activated the plugin again at `sample_rate_hz` (see [`Conductor::reactivate`]).
    pub fn reactivate(&mut self, sample_rate_hz: f32) {
        self.conductor.reactivate(sample_rate_hz);
        self.sound.set_sample_rate(sample_rate_hz);
        self.pace = Pace::new(sample_rate_hz);
    }

    /// Processing restarts (`reset()`): release what sounds, keep the answer due.
    pub fn restart(&mut self) {
        self.conductor.request_restart();
        self.sound.reset();
        self.pace.restart();
    }

    /// Whether the host runs far ahead of the wall clock, as of a block of `samples` starting
    /// now.
    pub fn running_ahead(&mut self, samples: usize) -> bool {
        // NOTE: reading the monotonic clock is a vDSO call on Linux, not a syscall.
        self.pace.block(Instant::now(), samples)
    }

    /// Plays the conductor's last block: its events go to the `voice` chosen, at their offsets
    /// in `left`/`right` (which it renders, the block's length), and those for the MIDI output
    /// to `send`, which says what the host did with the event (a refused one is retried or
    /// forgotten, see [`Conductor::host_answered`]). Whether a neural voice missed the block's
    /// deadline and handed its line to the synth (only when `realtime`: not in a bounce).
    pub fn render(
        &mut self,
        left: &mut [f32],
        right: &mut [f32],
        voice: VoiceChoice,
        realtime: bool,
        mut send: impl FnMut(&OutEvent) -> Delivery,
    ) -> bool {
        let samples = left.len().min(right.len());
        self.sound.take_handover();
        self.sound.select(voice);
        let mut rendered = 0usize;
        let events = self.conductor.events().len();
        let releases = self.conductor.voices_releases();
        for i in 0..=events {
            for release in releases.iter().flatten() {
                if release.before_event == i {
                    let at = (release.offset as usize).min(samples).max(rendered);
                    self.render_to(left, right, &mut rendered, at);
                    self.sound.release_all();
                }
            }
            let Some(&event) = self.conductor.events().get(i) else {
                break;
            };
            // NOTE: the conductor emits its events in time order; `max` keeps a slip from
            // slicing backwards.
            let offset = (event.offset as usize).min(samples).max(rendered);
            self.render_to(left, right, &mut rendered, offset);
            let key = VoiceKey {
                source: event.source,
                channel: event.channel,
                key: event.key,
            };
            match event.velocity {
                _ if !event.audio => {}
                Some(velocity) => self.sound.note_on(key, velocity as f32 / 127.0),
                None if event.pedal_held => self.sound.let_go_under_pedal(key),
                None => self.sound.note_off(key),
            }
            if event.midi {
                let delivery = send(&event);
                self.conductor.host_answered(i, delivery);
            }
        }
        self.render_to(left, right, &mut rendered, samples);
        self.sound.end_block(samples, realtime)
    }

    /// Renders the voice from `rendered` to `to` (both sample offsets in the block) and moves
    /// `rendered` there.
    fn render_to(&mut self, left: &mut [f32], right: &mut [f32], rendered: &mut usize, to: usize) {
        self.sound
            .render(&mut left[*rendered..to], &mut right[*rendered..to]);
        *rendered = to;
    }
}
