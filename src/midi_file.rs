//! Standard MIDI files of phrases and answers (the panel's "save answer" and the demo).

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::music::{beats_to_ticks, Note};
use crate::symbolic::meter::{bar_ticks, Meter, MeterChange};

/// Ticks per quarter note in files we write (divisible by 24 ticks per beat and by 5 and 3).
pub const PPQ: u16 = 480;

/// A type-0 MIDI file of `notes` (beats from 0) at `tempo_bpm` on channel `channel` (0-based).
pub fn to_smf_bytes(notes: &[Note], tempo_bpm: f64, channel: u8) -> Vec<u8> {
    let tick = |beats: f64| (beats.max(0.0) * PPQ as f64).round() as u64;
    // (tick, is_on, key, velocity); offs sort before ons at the same tick so repeats retrigger.
    let mut events: Vec<(u64, bool, u8, u8)> = notes
        .iter()
        .flat_map(|n| {
            let on = tick(n.onset_beats);
            let off = tick(n.end_beats()).max(on + 1);
            [
                (on, true, n.pitch & 127, n.velocity.clamp(1, 127)),
                (off, false, n.pitch & 127, 0),
            ]
        })
        .collect();
    events.sort_by_key(|&(t, is_on, key, _)| (t, is_on, key));

    let micros_per_beat = (60_000_000.0 / tempo_bpm.clamp(10.0, 1000.0)).round() as u32;
    let mut track = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros_per_beat))),
    }];
    let mut now = 0u64;
    let channel = u4::new(channel & 15);
    for (t, is_on, key, vel) in events {
        let message = if is_on {
            MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(vel),
            }
        } else {
            MidiMessage::NoteOff {
                key: u7::new(key),
                vel: u7::new(0),
            }
        };
        track.push(TrackEvent {
            delta: u28::new((t - now).min(0x0FFF_FFFF) as u32),
            kind: TrackEventKind::Midi { channel, message },
        });
        now = t;
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    let smf = Smf {
        header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(PPQ))),
        tracks: vec![track],
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes)
        .expect("writing a MIDI file to memory cannot fail");
    bytes
}

/// The notes of a MIDI file (type 0 or 1, any PPQ, all channels and tracks merged), in beats.
pub fn read_notes(bytes: &[u8]) -> Result<Vec<Note>, midly::Error> {
    read_tune(bytes).map(|(notes, _)| notes)
}

/// The notes of a MIDI file (as [`read_notes`]) and its meter, from the time signatures of any
/// track (4/4 where there are none), bar lines in event ticks.
pub fn read_tune(bytes: &[u8]) -> Result<(Vec<Note>, Meter), midly::Error> {
    let smf = Smf::parse(bytes)?;
    let ppq = match smf.header.timing {
        Timing::Metrical(ppq) => ppq.as_int().max(1) as f64,
        // SMPTE files: treat 1 second as 2 beats (120 BPM), the MIDI default.
        Timing::Timecode(fps, sub) => fps.as_f32() as f64 * sub as f64 / 2.0,
    };
    let mut notes = Vec::new();
    let mut meter_changes = Vec::new();
    for track in &smf.tracks {
        let mut tick = 0u64;
        // Open notes per (channel, key): (start tick, velocity).
        let mut open: std::collections::BTreeMap<(u8, u8), (u64, u8)> = Default::default();
        for event in track {
            tick += event.delta.as_int() as u64;
            let (channel, message) = match event.kind {
                TrackEventKind::Midi { channel, message } => (channel, message),
                TrackEventKind::Meta(MetaMessage::TimeSignature(
                    numerator,
                    log2_denominator,
                    ..,
                )) => {
                    meter_changes.push(MeterChange {
                        at_ticks: beats_to_ticks(tick as f64 / ppq),
                        bar_ticks: bar_ticks(
                            u32::from(numerator),
                            1u32 << log2_denominator.min(16),
                        ),
                    });
                    continue;
                }
                _ => continue,
            };
            let (key, vel) = match message {
                MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int()),
                MidiMessage::NoteOff { key, .. } => (key.as_int(), 0),
                _ => continue,
            };
            let slot = (channel.as_int(), key);
            if let Some((start, velocity)) = open.remove(&slot) {
                if tick > start {
                    notes.push(Note {
                        pitch: key,
                        velocity,
                        onset_beats: start as f64 / ppq,
                        duration_beats: (tick - start) as f64 / ppq,
                    });
                }
            }
            if vel > 0 {
                open.insert(slot, (tick, vel));
            }
        }
    }
    notes.sort_by(|a, b| {
        a.onset_beats
            .total_cmp(&b.onset_beats)
            .then(a.pitch.cmp(&b.pitch))
    });
    Ok((notes, Meter::from_changes(meter_changes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_round_trip_through_a_midi_file() {
        let notes = vec![
            Note {
                pitch: 60,
                velocity: 90,
                onset_beats: 0.0,
                duration_beats: 1.0,
            },
            Note {
                pitch: 64,
                velocity: 70,
                onset_beats: 0.0,
                duration_beats: 0.5,
            },
            Note {
                pitch: 60,
                velocity: 80,
                onset_beats: 1.0,
                duration_beats: 1.0 / 3.0,
            },
            Note {
                pitch: 67,
                velocity: 100,
                onset_beats: 2.125,
                duration_beats: 0.125,
            },
        ];
        let back = read_notes(&to_smf_bytes(&notes, 97.0, 0)).unwrap();
        assert_eq!(back.len(), notes.len());
        for (a, b) in back.iter().zip(&notes) {
            assert_eq!((a.pitch, a.velocity), (b.pitch, b.velocity));
            assert!((a.onset_beats - b.onset_beats).abs() < 1.0 / PPQ as f64);
            assert!((a.duration_beats - b.duration_beats).abs() < 1.0 / PPQ as f64);
        }
    }

    /// A type-1 file: 6/8 on the conductor track, 2/4 from beat 6 (two bars of 6/8), at 96 PPQ.
    #[test]
    fn meters_come_from_time_signatures_on_any_track() {
        let meta = |delta: u32, message| TrackEvent {
            delta: u28::new(delta),
            kind: TrackEventKind::Meta(message),
        };
        let conductor = vec![
            meta(0, MetaMessage::TimeSignature(6, 3, 36, 8)),
            meta(6 * 96, MetaMessage::TimeSignature(2, 2, 24, 8)),
            meta(0, MetaMessage::EndOfTrack),
        ];
        let channel = u4::new(0);
        let notes = vec![
            TrackEvent {
                delta: u28::new(0),
                kind: TrackEventKind::Midi {
                    channel,
                    message: MidiMessage::NoteOn {
                        key: u7::new(60),
                        vel: u7::new(80),
                    },
                },
            },
            TrackEvent {
                delta: u28::new(48),
                kind: TrackEventKind::Midi {
                    channel,
                    message: MidiMessage::NoteOff {
                        key: u7::new(60),
                        vel: u7::new(0),
                    },
                },
            },
            meta(0, MetaMessage::EndOfTrack),
        ];
        let smf = Smf {
            header: Header::new(Format::Parallel, Timing::Metrical(u15::new(96))),
            tracks: vec![conductor, notes],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        let (notes, meter) = read_tune(&bytes).unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].duration_beats, 0.5);
        let change = |at_ticks, bar_ticks| MeterChange {
            at_ticks,
            bar_ticks,
        };
        assert_eq!(meter.changes(), [change(0, 72), change(144, 48)]);
        // No time signature: 4/4.
        let plain = to_smf_bytes(&notes, 120.0, 0);
        assert_eq!(read_tune(&plain).unwrap().1, Meter::default());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_notes(b"not a midi file").is_err());
        assert!(read_notes(&[]).is_err());
    }
}
