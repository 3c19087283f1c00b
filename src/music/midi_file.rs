//! Standard MIDI files of phrases and answers (the panel's "save answer" and the demo).

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use crate::music::meter::{bar_ticks, Meter, MeterChange};
use crate::music::{beats_to_ticks, Note};

/// Ticks per quarter note in files we write (divisible by 24 ticks per beat and by 5 and 3).
pub const PPQ: u16 = 480;
/// Latest note end read, in beats (9 hours at 120 BPM): a file whose times run further is
/// broken, and every beat of a tune costs the engines and the renderers work and memory.
pub const MAX_TUNE_BEATS: f64 = 65_536.0;
/// Tempos read, in BPM: one outside them is not a tempo (a broken file's 0 µs a beat is 60
/// million BPM), and would crush a render of a tune into microseconds or stretch it over days.
pub const FILE_BPM: std::ops::RangeInclusive<f64> = 10.0..=2000.0;

/// Why a MIDI file cannot be read.
#[derive(Debug)]
pub enum MidiFileError {
    /// Not a standard MIDI file, or a corrupt one.
    Parse(midly::Error),
    /// SMPTE timing with no ticks in a frame: no time base.
    NoTimeBase,
    /// A tempo outside [`FILE_BPM`].
    Tempo { bpm: f64 },
    /// A note ending past [`MAX_TUNE_BEATS`].
    TooLong { beats: f64 },
    /// Track `track` (from 1) stops short of its end: the file was cut off, or an event in it
    /// cannot be read. Reading on would lose the rest of the track without a word.
    CutShort { track: usize, events_read: usize },
    /// The header names more tracks than the file holds (a file cut off between tracks).
    MissingTracks { declared: usize, found: usize },
    /// A format 2 file: its tracks are independent sequences, one after another, not parts
    /// of one tune.
    Sequential,
}

impl std::fmt::Display for MidiFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MidiFileError::Parse(error) => write!(f, "not a readable MIDI file ({error})"),
            MidiFileError::NoTimeBase => write!(f, "SMPTE timing with 0 ticks a frame"),
            MidiFileError::Tempo { bpm } => {
                write!(
                    f,
                    "a tempo of {bpm:.3} BPM (read: {} to {} BPM)",
                    FILE_BPM.start(),
                    FILE_BPM.end()
                )
            }
            MidiFileError::TooLong { beats } => write!(
                f,
                "a note ends {beats:.0} beats in (the latest read is {MAX_TUNE_BEATS})"
            ),
            MidiFileError::CutShort { track, events_read } => write!(
                f,
                "track {track} stops short after {events_read} events (a cut-off or corrupt file)"
            ),
            MidiFileError::MissingTracks { declared, found } => write!(
                f,
                "the header names {declared} tracks but the file holds {found} (a cut-off file)"
            ),
            MidiFileError::Sequential => write!(
                f,
                "a format 2 file (independent sequences; WaveJam reads formats 0 and 1)"
            ),
        }
    }
}

impl std::error::Error for MidiFileError {}

impl From<midly::Error> for MidiFileError {
    fn from(error: midly::Error) -> Self {
        MidiFileError::Parse(error)
    }
}

/// A time signature of a MIDI file: from `at_beats` on, bars of `numerator` notes of
/// `1 / denominator` (a power of two: 6/8 is 6 and 8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeSignature {
    pub at_beats: f64,
    pub numerator: u8,
    pub denominator: u8,
}

impl TimeSignature {
    /// The bar lines it sets, in event ticks.
    fn meter_change(&self) -> MeterChange {
        MeterChange {
            at_ticks: beats_to_ticks(self.at_beats),
            bar_ticks: bar_ticks(u32::from(self.numerator), u32::from(self.denominator)),
        }
    }
}

/// What WaveJam reads from a MIDI file.
#[derive(Debug, Clone, PartialEq)]
pub struct MidiTune {
    /// Every note, sorted by onset, then pitch.
    pub notes: Vec<Note>,
    /// The file's time signatures in time order (none: 4/4, as the standard says).
    pub signatures: Vec<TimeSignature>,
    /// The bar lines the signatures set.
    pub meter: Meter,
    /// The file's first tempo, BPM (120, the MIDI default, if it sets none; and for SMPTE
    /// timing, whose seconds are read as beats at 120 BPM): what a renderer plays its beats at.
    pub tempo_bpm: f64,
}

/// A type-0 MIDI file of `notes` (beats from 0) at `tempo_bpm` on channel `channel` (0-based),
/// with `signatures` (none: the file is in 4/4, the MIDI default).
pub fn to_smf_bytes(
    notes: &[Note],
    tempo_bpm: f64,
    channel: u8,
    signatures: &[TimeSignature],
) -> Vec<u8> {
    to_smf_bytes_with_program(notes, tempo_bpm, channel, None, signatures)
}

/// [`to_smf_bytes`], with a program change to `program` (a General MIDI instrument, 0-based:
/// 40 is the violin) on the channel at time 0 when there is one, so a synthesizer plays the notes
/// with that instrument (none: the player's default, usually a piano).
pub fn to_smf_bytes_with_program(
    notes: &[Note],
    tempo_bpm: f64,
    channel: u8,
    program: Option<u8>,
    signatures: &[TimeSignature],
) -> Vec<u8> {
    let tick = |beats: f64| (beats.max(0.0) * PPQ as f64).round() as u64;
    let channel = u4::new(channel & 15);
    let note = |key: u8, vel: u8| {
        let (key, vel) = (u7::new(key), u7::new(vel));
        let message = if vel > 0 {
            MidiMessage::NoteOn { key, vel }
        } else {
            MidiMessage::NoteOff { key, vel }
        };
        TrackEventKind::Midi { channel, message }
    };
    // (tick, order, key, event): at one tick signatures come first, then offs before ons so
    // repeats retrigger.
    let mut events: Vec<(u64, u8, u8, TrackEventKind<'static>)> = notes
        .iter()
        .flat_map(|n| {
            let on = tick(n.onset_beats);
            let off = tick(n.end_beats()).max(on + 1);
            let (key, velocity) = (n.pitch & 127, n.velocity.clamp(1, 127));
            [
                (on, 2, key, note(key, velocity)),
                (off, 1, key, note(key, 0)),
            ]
        })
        .collect();
    events.extend(signatures.iter().map(|s| {
        let log2_denominator = s.denominator.max(1).ilog2() as u8;
        let meta = MetaMessage::TimeSignature(s.numerator.max(1), log2_denominator, 24, 8);
        (tick(s.at_beats), 0, 0, TrackEventKind::Meta(meta))
    }));
    events.sort_by_key(|&(t, order, key, _)| (t, order, key));

    let micros_per_beat = (60_000_000.0 / tempo_bpm.clamp(10.0, 1000.0)).round() as u32;
    let mut track = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros_per_beat))),
    }];
    track.extend(program.map(|program| TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Midi {
            channel,
            message: MidiMessage::ProgramChange {
                program: u7::new(program & 127),
            },
        },
    }));
    let mut now = 0u64;
    for (t, _, _, kind) in events {
        track.push(TrackEvent {
            delta: u28::new((t - now).min(0x0FFF_FFFF) as u32),
            kind,
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
pub fn read_notes(bytes: &[u8]) -> Result<Vec<Note>, MidiFileError> {
    read_tune(bytes).map(|tune| tune.notes)
}

/// The notes of a MIDI file (as [`read_notes`]), its time signatures (from any track) and the
/// meter they set; an error for a file without a time base, with a tempo outside [`FILE_BPM`],
/// or with notes past [`MAX_TUNE_BEATS`].
pub fn read_tune(bytes: &[u8]) -> Result<MidiTune, MidiFileError> {
    let smf = parse_whole(bytes)?;
    if smf.header.format == Format::Sequential {
        return Err(MidiFileError::Sequential);
    }
    let ppq = match smf.header.timing {
        Timing::Metrical(ppq) => ppq.as_int().max(1) as f64,
        // SMPTE files: treat 1 second as 2 beats (120 BPM), the MIDI default.
        Timing::Timecode(fps, sub) => fps.as_f32() as f64 * sub as f64 / 2.0,
    };
    // Tempo events change no time of an SMPTE file: its ticks are seconds' fractions.
    let metrical = matches!(smf.header.timing, Timing::Metrical(_));
    if ppq <= 0.0 {
        return Err(MidiFileError::NoTimeBase);
    }
    let mut notes = Vec::new();
    let mut signatures = Vec::new();
    let mut tempo: Option<(u64, f64)> = None;
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
                    signatures.push(TimeSignature {
                        at_beats: tick as f64 / ppq,
                        numerator,
                        // NOTE: 1/128 is the shortest note value a signature names in practice.
                        denominator: 1 << log2_denominator.min(7),
                    });
                    continue;
                }
                TrackEventKind::Meta(MetaMessage::Tempo(micros_per_beat)) if metrical => {
                    let bpm = 60e6 / f64::from(micros_per_beat.as_int());
                    if !FILE_BPM.contains(&bpm) {
                        return Err(MidiFileError::Tempo { bpm });
                    }
                    if tempo.is_none_or(|(at, _)| tick < at) {
                        tempo = Some((tick, bpm));
                    }
                    continue;
                }
                _ => continue,
            };
            let (key, vel) = match message {
                MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int()),
                MidiMessage::NoteOff { key, .. } => (key.as_int(), 0),
                _ => continue,
            };
            if tick as f64 / ppq > MAX_TUNE_BEATS {
                return Err(MidiFileError::TooLong {
                    beats: tick as f64 / ppq,
                });
            }
            let slot = (channel.as_int(), key);
            if let Some((start, velocity)) = open.remove(&slot) {
                notes.extend(held_note(key, velocity, start, tick, ppq));
            }
            if vel > 0 {
                open.insert(slot, (tick, vel));
            }
        }
        // A note still held when its track ends lasts to the end (some files leave the last
        // note-off out), which must be within the longest tune too.
        if !open.is_empty() && tick as f64 / ppq > MAX_TUNE_BEATS {
            return Err(MidiFileError::TooLong {
                beats: tick as f64 / ppq,
            });
        }
        for ((_, key), (start, velocity)) in open {
            notes.extend(held_note(key, velocity, start, tick, ppq));
        }
    }
    notes.sort_by(|a, b| {
        a.onset_beats
            .total_cmp(&b.onset_beats)
            .then(a.pitch.cmp(&b.pitch))
    });
    // NOTE: a stable sort keeps the file's order among signatures at one time (the last wins).
    signatures.sort_by(|a, b| a.at_beats.total_cmp(&b.at_beats));
    let meter = Meter::from_changes(signatures.iter().map(TimeSignature::meter_change));
    Ok(MidiTune {
        notes,
        signatures,
        meter,
        tempo_bpm: tempo.map_or(120.0, |(_, bpm)| bpm),
    })
}

/// Every track of a MIDI file (a RIFF-wrapped one too), read to its end, or an error where the
/// file stops short.
///
/// midly reads leniently (its `strict` feature is off, as files in the wild need): a track cut
/// off or holding an unreadable event ends there without an error. Here an event that cannot be
/// read before a track's end-of-track event, a last track that runs past the end of the file
/// without that event, or missing tracks are errors. A length that overstates a complete last
/// track, bytes after a track's end-of-track event and unknown chunks are taken, as the lenient
/// reader takes them.
fn parse_whole(bytes: &[u8]) -> Result<Smf<'_>, MidiFileError> {
    let (header, tracks) = midly::parse(bytes)?;
    // NOTE: before any track is read, the size hint is the count the header declares.
    let declared = tracks.size_hint().0;
    let last_cut = last_track_runs_past_the_end(tracks.unread());
    let mut smf = Smf::new(header);
    for (index, track) in tracks.enumerate() {
        let mut events = track?;
        let mut read = Vec::new();
        loop {
            let unread = events.unread().len();
            match events.next() {
                Some(event) => {
                    let event = event?;
                    read.push(event);
                    if event.kind == TrackEventKind::Meta(MetaMessage::EndOfTrack) {
                        break;
                    }
                }
                // The lenient reader ends a track at an event it cannot read.
                None if unread > 0 => {
                    return Err(MidiFileError::CutShort {
                        track: index + 1,
                        events_read: read.len(),
                    })
                }
                None => break,
            }
        }
        smf.tracks.push(read);
    }
    let ended = |track: &Vec<TrackEvent>| {
        track
            .last()
            .is_some_and(|e| e.kind == TrackEventKind::Meta(MetaMessage::EndOfTrack))
    };
    if last_cut && !smf.tracks.last().is_some_and(ended) {
        return Err(MidiFileError::CutShort {
            track: smf.tracks.len(),
            events_read: smf.tracks.last().map_or(0, Vec::len),
        });
    }
    if declared > smf.tracks.len() {
        return Err(MidiFileError::MissingTracks {
            declared,
            found: smf.tracks.len(),
        });
    }
    Ok(smf)
}

/// Whether the last track chunk of `chunks` (a MIDI file's chunks after its header) declares a
/// length running past their end.
fn last_track_runs_past_the_end(mut chunks: &[u8]) -> bool {
    let mut cut = false;
    while let (Some(id), Some(length)) = (chunks.get(..4), chunks.get(4..8)) {
        let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
        let held = length.min(chunks.len() - 8);
        if id == b"MTrk" {
            cut = held < length;
        }
        chunks = &chunks[8 + held..];
    }
    cut
}

/// The note `key` struck at tick `start` and let go at `end` (`ppq` ticks a beat); none if it
/// has no length.
fn held_note(key: u8, velocity: u8, start: u64, end: u64, ppq: f64) -> Option<Note> {
    (end > start).then(|| Note {
        pitch: key,
        velocity,
        onset_beats: start as f64 / ppq,
        duration_beats: (end - start) as f64 / ppq,
    })
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
        let tune = read_tune(&to_smf_bytes(&notes, 97.0, 0, &[])).unwrap();
        // The tempo is stored in whole microseconds per beat.
        assert!((tune.tempo_bpm - 97.0).abs() < 1e-3, "{}", tune.tempo_bpm);
        let back = tune.notes;
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
        let tune = read_tune(&bytes).unwrap();
        assert_eq!(tune.notes.len(), 1);
        assert_eq!(tune.notes[0].duration_beats, 0.5);
        let change = |at_ticks, bar_ticks| MeterChange {
            at_ticks,
            bar_ticks,
        };
        assert_eq!(tune.meter.changes(), [change(0, 72), change(144, 48)]);
        let signature = |at_beats, numerator, denominator| TimeSignature {
            at_beats,
            numerator,
            denominator,
        };
        let signatures = [signature(0.0, 6, 8), signature(6.0, 2, 4)];
        assert_eq!(tune.signatures, signatures);
        // Written again, the file has the same signatures, before the notes at their ticks.
        let again = read_tune(&to_smf_bytes(&tune.notes, 120.0, 0, &signatures)).unwrap();
        assert_eq!(again, tune);
        // No time signature: 4/4.
        let plain = read_tune(&to_smf_bytes(&tune.notes, 120.0, 0, &[])).unwrap();
        assert_eq!((plain.signatures, plain.meter), (vec![], Meter::default()));
    }

    /// 3/4 and 6/8 bars are both 72 ticks; the file keeps which one it is.
    #[test]
    fn signatures_of_equal_bars_are_written_as_given() {
        let notes = [Note {
            pitch: 62,
            velocity: 80,
            onset_beats: 0.0,
            duration_beats: 1.5,
        }];
        for (numerator, denominator) in [(3, 4), (6, 8)] {
            let signature = TimeSignature {
                at_beats: 0.0,
                numerator,
                denominator,
            };
            let tune = read_tune(&to_smf_bytes(&notes, 100.0, 0, &[signature])).unwrap();
            assert_eq!(tune.signatures, [signature]);
            assert_eq!(tune.meter, Meter::constant(72));
        }
    }

    /// The program change comes first on the notes' channel, before any note; the notes read
    /// back as without it.
    #[test]
    fn a_program_change_starts_the_track() {
        let notes = [Note {
            pitch: 69,
            velocity: 90,
            onset_beats: 0.0,
            duration_beats: 1.0,
        }];
        let bytes = to_smf_bytes_with_program(&notes, 100.0, 3, Some(40), &[]);
        let smf = Smf::parse(&bytes).unwrap();
        let midi: Vec<(u32, MidiMessage)> = smf.tracks[0]
            .iter()
            .filter_map(|e| match e.kind {
                TrackEventKind::Midi { channel, message } if channel == 3 => {
                    Some((e.delta.as_int(), message))
                }
                _ => None,
            })
            .collect();
        let program = MidiMessage::ProgramChange {
            program: u7::new(40),
        };
        assert_eq!(midi[0], (0, program));
        assert!(matches!(midi[1], (0, MidiMessage::NoteOn { .. })));
        assert_eq!(read_notes(&bytes).unwrap(), notes);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(read_notes(b"not a midi file").is_err());
        assert!(read_notes(&[]).is_err());
    }

    /// A file with `timing` and `events` (delta ticks, kind), and a note-off after them.
    fn file(timing: Timing, events: &[(u32, TrackEventKind<'static>)]) -> Vec<u8> {
        let note = |on: bool| TrackEventKind::Midi {
            channel: u4::new(0),
            message: if on {
                MidiMessage::NoteOn {
                    key: u7::new(60),
                    vel: u7::new(90),
                }
            } else {
                MidiMessage::NoteOff {
                    key: u7::new(60),
                    vel: u7::new(0),
                }
            },
        };
        let mut track: Vec<TrackEvent> = events
            .iter()
            .map(|&(delta, kind)| TrackEvent {
                delta: u28::new(delta),
                kind,
            })
            .collect();
        track.push(TrackEvent {
            delta: u28::new(0),
            kind: note(true),
        });
        track.push(TrackEvent {
            delta: u28::new(10),
            kind: note(false),
        });
        track.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        });
        let smf = Smf {
            header: Header::new(Format::SingleTrack, timing),
            tracks: vec![track],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        bytes
    }

    /// A one-track file of `events` (delta ticks, kind) at `ppq` ticks a beat.
    fn track_file(ppq: u16, events: &[(u32, TrackEventKind<'static>)]) -> Vec<u8> {
        let smf = Smf {
            header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(ppq))),
            tracks: vec![events
                .iter()
                .map(|&(delta, kind)| TrackEvent {
                    delta: u28::new(delta),
                    kind,
                })
                .collect()],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        bytes
    }

    /// Files a parser takes but no tune has — no time base, a tempo of 0, a note days in — are
    /// refused with the reason, not read into infinite or enormous times.
    #[test]
    fn broken_times_are_refused_with_the_reason() {
        let metrical = Timing::Metrical(u15::new(1));
        assert!(read_tune(&file(metrical, &[])).is_ok());
        let smpte = Timing::Timecode(midly::Fps::Fps25, 0);
        assert!(matches!(
            read_tune(&file(smpte, &[])),
            Err(MidiFileError::NoTimeBase)
        ));
        let still = TrackEventKind::Meta(MetaMessage::Tempo(u24::new(0)));
        assert!(matches!(
            read_tune(&file(metrical, &[(0, still)])),
            Err(MidiFileError::Tempo { .. })
        ));
        // SMPTE timing (25 frames of 40 ticks: a tick is a millisecond): its seconds are beats at
        // 120 BPM, whatever tempo it names (its times do not follow tempos).
        let smpte = Timing::Timecode(midly::Fps::Fps25, 40);
        let fast = TrackEventKind::Meta(MetaMessage::Tempo(u24::new(250_000)));
        let tune = read_tune(&file(smpte, &[(1000, fast)])).unwrap();
        assert_eq!(tune.tempo_bpm, 120.0);
        assert_eq!(tune.notes[0].onset_beats, 2.0);
        let single = file(metrical, &[]);
        let sequential = Smf {
            header: Header::new(Format::Sequential, metrical),
            tracks: Smf::parse(&single).unwrap().tracks,
        };
        let mut bytes = Vec::new();
        sequential.write_std(&mut bytes).unwrap();
        assert!(matches!(read_tune(&bytes), Err(MidiFileError::Sequential)));
        let rest = TrackEventKind::Meta(MetaMessage::Text(b"rest"));
        let far = read_tune(&file(metrical, &[(u28::max_value().as_int(), rest)]));
        assert!(matches!(far, Err(MidiFileError::TooLong { .. })), "{far:?}");
        assert!(far.unwrap_err().to_string().contains("beats in"));
    }

    /// A note whose note-off the file leaves out lasts to the end of its track; one struck as
    /// the track ends has no length and is not a note.
    #[test]
    fn a_note_held_at_the_end_of_its_track_lasts_to_the_end() {
        let on = |key: u8| TrackEventKind::Midi {
            channel: u4::new(0),
            message: MidiMessage::NoteOn {
                key: u7::new(key),
                vel: u7::new(90),
            },
        };
        let bytes = track_file(
            480,
            &[
                (0, on(60)),
                (480, on(64)),
                (240, TrackEventKind::Meta(MetaMessage::Text(b"end"))),
                (0, on(67)),
                (0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
            ],
        );
        let notes = read_notes(&bytes).unwrap();
        let read: Vec<(u8, f64, f64)> = notes
            .iter()
            .map(|n| (n.pitch, n.onset_beats, n.duration_beats))
            .collect();
        assert_eq!(read, [(60, 0.0, 1.5), (64, 1.0, 0.5)]);
        // Held to an end days away: refused as any note that far in.
        let rest = TrackEventKind::Meta(MetaMessage::Text(b"rest"));
        let bytes = track_file(1, &[(0, on(60)), (u28::max_value().as_int(), rest)]);
        let far = read_tune(&bytes);
        assert!(matches!(far, Err(MidiFileError::TooLong { .. })), "{far:?}");
    }

    /// A file cut off anywhere, or with an event that cannot be read, is refused: midly's lenient
    /// reader would read it in part without a word. A complete last track whose length says
    /// more than the file holds is read, as the lenient reader reads it.
    #[test]
    fn a_cut_off_or_corrupt_file_is_refused_not_read_in_part() {
        let note = |key: u8| -> Vec<TrackEvent<'static>> {
            let (channel, key, vel) = (u4::new(0), u7::new(key), u7::new(90));
            let on = MidiMessage::NoteOn { key, vel };
            let off = MidiMessage::NoteOff { key, vel };
            [
                (
                    0,
                    TrackEventKind::Midi {
                        channel,
                        message: on,
                    },
                ),
                (
                    480,
                    TrackEventKind::Midi {
                        channel,
                        message: off,
                    },
                ),
                (0, TrackEventKind::Meta(MetaMessage::EndOfTrack)),
            ]
            .into_iter()
            .map(|(delta, kind)| TrackEvent {
                delta: u28::new(delta),
                kind,
            })
            .collect()
        };
        let smf = Smf {
            header: Header::new(Format::Parallel, Timing::Metrical(u15::new(480))),
            tracks: vec![note(60), note(64)],
        };
        let mut bytes = Vec::new();
        smf.write_std(&mut bytes).unwrap();
        let pitches = |bytes: &[u8]| -> Vec<u8> {
            read_notes(bytes).unwrap().iter().map(|n| n.pitch).collect()
        };
        assert_eq!(pitches(&bytes), [60, 64]);
        // Every cut loses something but the last byte: the end-of-track event's length, 0,
        // which the lenient reader reads without.
        for cut in 0..bytes.len() - 1 {
            let read = read_tune(&bytes[..cut]);
            assert!(
                read.is_err(),
                "cut to {cut} of {} bytes: {read:?}",
                bytes.len()
            );
        }
        assert_eq!(pitches(&bytes[..bytes.len() - 1]), [60, 64]);
        let missing = read_tune(&bytes[..bytes.len() - 4])
            .unwrap_err()
            .to_string();
        assert!(missing.contains("track 2 stops short"), "{missing}");

        // The first track's note-on status byte made a data byte, with no status to run on.
        let mut corrupt = bytes.clone();
        assert_eq!(corrupt[23], 0x90);
        corrupt[23] = 60;
        let read = read_tune(&corrupt);
        assert!(
            matches!(read, Err(MidiFileError::CutShort { track: 1, .. })),
            "{read:?}"
        );

        let last = bytes.windows(4).rposition(|w| w == b"MTrk").unwrap();
        let length = u32::from_be_bytes(bytes[last + 4..last + 8].try_into().unwrap());
        let mut overstated = bytes.clone();
        overstated[last + 4..last + 8].copy_from_slice(&(length + 10).to_be_bytes());
        assert_eq!(pitches(&overstated), [60, 64]);

        // Padding after a track's end-of-track event (within its length) is not a cut.
        let mut padded = bytes.clone();
        padded[last + 4..last + 8].copy_from_slice(&(length + 3).to_be_bytes());
        padded.extend([0, 0, 0]);
        assert_eq!(pitches(&padded), [60, 64]);

        // The same file wrapped in RIFF (an RMID file), whole and cut off.
        let mut riff = b"RIFF".to_vec();
        riff.extend((12 + bytes.len() as u32).to_le_bytes());
        riff.extend(b"RMIDdata");
        riff.extend((bytes.len() as u32).to_le_bytes());
        riff.extend(&bytes);
        assert_eq!(pitches(&riff), [60, 64]);
        assert!(read_tune(&riff[..riff.len() - 4]).is_err());
    }
}
