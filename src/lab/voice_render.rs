//! Notes rendered offline through one of WaveJam's voices — the synth or a neural voice — at
//! velocity and timing as written (`wavejam voice`, and the voice checks): the same voice code
//! the plugin plays.

use crate::audio::synth::{Synth, VoiceKey, VoiceSource};
use crate::music::Note;
use crate::voice::stream::VoiceStream;
use crate::voice::VoiceFile;

/// Longest a render runs on after the last note-off for the sound to die away, seconds.
const TAIL_S: f64 = 3.0;

/// Which voice plays.
#[derive(Debug, Clone)]
pub enum RenderVoice {
    /// WaveJam's subtractive synth.
    Synth,
    /// A neural voice.
    Neural(Box<VoiceFile>),
}

/// A note-on or note-off at a time in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    seconds: f64,
    pitch: u8,
    /// 0 for a note-off.
    velocity: u8,
}

/// The note-ons and note-offs of `notes` at `tempo_bpm`, in time order; at one time the
/// note-offs go first (a note repeated at once is struck again).
fn events(notes: &[Note], tempo_bpm: f64) -> Vec<Event> {
    let seconds = |beats: f64| beats.max(0.0) * 60.0 / tempo_bpm;
    let mut events: Vec<Event> = notes
        .iter()
        .flat_map(|n| {
            [
                Event {
                    seconds: seconds(n.onset_beats),
                    pitch: n.pitch,
                    velocity: n.velocity.max(1),
                },
                Event {
                    seconds: seconds(n.onset_beats + n.duration_beats),
                    pitch: n.pitch,
                    velocity: 0,
                },
            ]
        })
        .collect();
    events.sort_by(|a, b| {
        a.seconds
            .total_cmp(&b.seconds)
            .then(a.velocity.cmp(&b.velocity))
    });
    events
}

/// Sample rates the renderers write, in Hz.
pub const RENDER_RATES_HZ: std::ops::RangeInclusive<u32> = 8_000..=768_000;

/// An error naming `sample_rate` (Hz) if it is outside [`RENDER_RATES_HZ`].
pub fn check_render_rate(sample_rate: u32) -> Result<(), String> {
    if RENDER_RATES_HZ.contains(&sample_rate) {
        return Ok(());
    }
    Err(format!(
        "a sample rate of {sample_rate} Hz ({}–{})",
        RENDER_RATES_HZ.start(),
        RENDER_RATES_HZ.end()
    ))
}

/// Longest render, in seconds: an hour of notes (a longer one is a broken file's times, and
/// would fill the memory).
pub const LONGEST_RENDER_S: f64 = 3600.0;

/// `notes` (beats from 0) at `tempo_bpm` played by `voice`, mono at `sample_rate` Hz, from time
/// 0 until the sound has died away after the last note (at most [`TAIL_S`] later).
///
/// A neural voice plays as in the plugin (its [`VoiceStream`] at `sample_rate`), with the
/// stream's latency taken off the start.
///
/// # Errors
/// A sample rate outside 8–768 kHz, or notes lasting longer than [`LONGEST_RENDER_S`].
pub fn render_notes(
    notes: &[Note],
    tempo_bpm: f64,
    voice: &RenderVoice,
    sample_rate: u32,
) -> Result<Vec<f32>, String> {
    check_render_rate(sample_rate)?;
    let events = events(notes, tempo_bpm);
    let last = events.last().map_or(0.0, |e| e.seconds);
    if !(0.0..=LONGEST_RENDER_S).contains(&last) {
        return Err(format!(
            "notes lasting {last:.0} s (renders last {LONGEST_RENDER_S:.0} s at most)"
        ));
    }
    Ok(match voice {
        RenderVoice::Synth => render_synth(&events, sample_rate),
        RenderVoice::Neural(file) => render_neural(&events, file, sample_rate),
    })
}

/// What a player renders between events, then on until it falls silent.
trait Playing {
    fn event(&mut self, event: &Event);
    fn render(&mut self, out: &mut [f32]);
    fn sounding(&self) -> bool;
}

impl Playing for VoiceStream {
    fn event(&mut self, event: &Event) {
        if event.velocity > 0 {
            self.note_on(event.pitch, event.velocity);
        } else {
            self.note_off(event.pitch);
        }
    }

    fn render(&mut self, out: &mut [f32]) {
        VoiceStream::render(self, out);
    }

    fn sounding(&self) -> bool {
        self.active()
    }
}

/// The synth, on one MIDI channel, rendering its left channel (its voices are centred).
struct SynthPlayer {
    synth: Synth,
    right: Vec<f32>,
}

impl Playing for SynthPlayer {
    fn event(&mut self, event: &Event) {
        let key = VoiceKey {
            source: VoiceSource::Answer,
            channel: 0,
            key: event.pitch,
        };
        if event.velocity > 0 {
            self.synth.note_on(key, f32::from(event.velocity) / 127.0);
        } else {
            self.synth.note_off(key);
        }
    }

    fn render(&mut self, out: &mut [f32]) {
        self.right.resize(out.len(), 0.0);
        self.synth.render(out, &mut self.right);
    }

    fn sounding(&self) -> bool {
        self.synth.active_voices() > 0
    }
}

fn render_synth(events: &[Event], sample_rate: u32) -> Vec<f32> {
    let mut player = SynthPlayer {
        synth: Synth::new(sample_rate as f32),
        right: Vec::new(),
    };
    play(&mut player, events, sample_rate)
}

fn render_neural(events: &[Event], file: &VoiceFile, sample_rate: u32) -> Vec<f32> {
    let mut stream = VoiceStream::new(file, sample_rate as f32);
    let latency = stream.latency();
    let mut out = play(&mut stream, events, sample_rate);
    out.drain(..latency.min(out.len()));
    out
}

/// Plays `events` on `player` at `rate` Hz, each at its sample, then renders until silence.
fn play(player: &mut impl Playing, events: &[Event], rate: u32) -> Vec<f32> {
    let at = |seconds: f64| (seconds * f64::from(rate)).round() as usize;
    let mut out = Vec::new();
    for event in events {
        let start = out.len();
        out.resize(at(event.seconds).max(start), 0.0);
        player.render(&mut out[start..]);
        player.event(event);
    }
    let tail = at(TAIL_S);
    let block = (rate / 100) as usize;
    let mut rendered = 0;
    while player.sounding() && rendered < tail {
        let start = out.len();
        out.resize(start + block, 0.0);
        player.render(&mut out[start..]);
        rendered += block;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(pitch: u8, onset_beats: f64, duration_beats: f64) -> Note {
        Note {
            pitch,
            velocity: 100,
            onset_beats,
            duration_beats,
        }
    }

    #[test]
    fn events_are_in_time_with_offs_before_ons() {
        let notes = [note(60, 0.0, 1.0), note(60, 1.0, 0.5)];
        let e = events(&notes, 120.0);
        let times: Vec<(f64, u8)> = e.iter().map(|e| (e.seconds, e.velocity)).collect();
        assert_eq!(times, [(0.0, 100), (0.5, 0), (0.5, 100), (0.75, 0)]);
    }

    #[test]
    fn the_synth_renders_the_notes_as_written_and_then_falls_silent() {
        let notes = [note(69, 0.5, 1.0)];
        let audio = render_notes(&notes, 120.0, &RenderVoice::Synth, 48_000).unwrap();
        // Silent until the note at 0.25 s, sounding through it, and done within the tail.
        assert!(audio[..11_900].iter().all(|&v| v == 0.0));
        assert!(audio[12_500..36_000].iter().any(|v| v.abs() > 0.01));
        assert!(audio.len() < 36_000 + 48_000 * 3);
        // Notes a day long are a broken file: refused, not rendered into all the memory.
        let day = [note(69, 0.0, 2.0 * 86_400.0)];
        let err = render_notes(&day, 120.0, &RenderVoice::Synth, 48_000).unwrap_err();
        assert!(err.contains("86400 s"), "{err}");
        assert!(audio.iter().all(|v| v.is_finite()));
    }
}
