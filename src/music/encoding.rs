//! The event vocabulary of the phrase model: note-ons, note-offs and time shifts on a grid of
//! [`TICKS_PER_BEAT`] ticks per beat, and an end-of-tune event.
//!
//! A tune reads as a stream of events in time order. Between events at different times comes
//! one or more `TIME_SHIFT`s (a gap longer than the vocabulary's longest shift takes several);
//! events at the same time are ordered note-offs first, then note-ons, each by pitch, so chords,
//! held notes and repeated notes are all expressible and every tune has exactly one encoding.
//! The stream ends with `END`.
//!
//! Velocity is not in the vocabulary. None of the corpus sources carries dynamics (every note of
//! the extracted corpus has the same velocity), so velocity tokens would cost model capacity and
//! sequence length while carrying no information to learn; and in the duet the answer should
//! follow the player's dynamics anyway. [`Vocabulary::decode_with_velocity`] takes the velocity
//! to give every decoded note, and [`recent_velocity`] measures the player's recent dynamics.
//! A model that predicts dynamics would add coarse velocity tokens after the current ids (ids are
//! append-only, see [`Vocabulary`]).

use std::collections::BTreeMap;

use crate::music::meter::Meter;
use crate::music::Note;

/// Ticks per beat (quarter note) of the event grid: 24 makes 32nd notes and triplets exact.
pub use crate::music::{beats_to_ticks, ticks_to_beats, TICKS_PER_BEAT};
/// Longest single time shift of the default vocabulary, in ticks (4 beats).
pub const DEFAULT_MAX_SHIFT_TICKS: u16 = 96;
/// Velocity of decoded notes when none is given (the corpus files use 80).
pub const DEFAULT_VELOCITY: u8 = 80;

/// Number of MIDI pitches.
const PITCHES: u16 = 128;
/// Id of the first `NOTE_OFF`.
const NOTE_OFF_BASE: u16 = PITCHES;
/// Id of `END`.
const END_ID: u16 = 2 * PITCHES;
/// Id of `TIME_SHIFT(1)`.
const SHIFT_BASE: u16 = END_ID + 1;

/// One event of a tune.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Token {
    /// A pitch (MIDI key 0–127) starts sounding.
    NoteOn(u8),
    /// A sounding pitch stops.
    NoteOff(u8),
    /// Time moves on by this many ticks (1 to the vocabulary's longest shift).
    TimeShift(u16),
    /// The tune is over; every sounding note stops here.
    End,
}

/// What kind of event a token id is; the kinds are contiguous id ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenClass {
    NoteOn,
    NoteOff,
    End,
    TimeShift,
}

impl TokenClass {
    /// Every class, in id order.
    pub const ALL: [TokenClass; 4] = [
        TokenClass::NoteOn,
        TokenClass::NoteOff,
        TokenClass::End,
        TokenClass::TimeShift,
    ];
}

/// The token ids of one vocabulary.
///
/// Ids are stable: `NOTE_ON(p)` is `p`, `NOTE_OFF(p)` is `128 + p`, `END` is 256 and
/// `TIME_SHIFT(d)` is `256 + d` for `d` in `1..=max_shift_ticks`. They depend on nothing but
/// `max_shift_ticks`, which a model file must therefore record; new kinds of token would be
/// appended after the last shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Vocabulary {
    /// Longest single time shift, in ticks (≥ 1).
    max_shift_ticks: u16,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SHIFT_TICKS)
    }
}

impl Vocabulary {
    /// A vocabulary whose longest time shift is `max_shift_ticks` (clamped to 1..=1024).
    pub fn new(max_shift_ticks: u16) -> Self {
        Self {
            max_shift_ticks: max_shift_ticks.clamp(1, 1024),
        }
    }

    /// Longest single time shift, in ticks.
    pub fn max_shift_ticks(&self) -> u16 {
        self.max_shift_ticks
    }

    /// Number of token ids (`0..len()` are all valid).
    pub fn len(&self) -> usize {
        usize::from(SHIFT_BASE + self.max_shift_ticks)
    }

    /// Always false: every vocabulary has note, end and shift tokens.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Id of `END`.
    pub fn end_id(&self) -> u16 {
        END_ID
    }

    /// The id range of a class of tokens.
    pub fn class_range(&self, class: TokenClass) -> std::ops::Range<usize> {
        let r = |a: u16, b: u16| usize::from(a)..usize::from(b);
        match class {
            TokenClass::NoteOn => r(0, NOTE_OFF_BASE),
            TokenClass::NoteOff => r(NOTE_OFF_BASE, END_ID),
            TokenClass::End => r(END_ID, SHIFT_BASE),
            TokenClass::TimeShift => r(SHIFT_BASE, SHIFT_BASE + self.max_shift_ticks),
        }
    }

    /// The id of `token`, or `None` if it is not in this vocabulary (a pitch above 127, a shift of
    /// 0 or longer than [`Self::max_shift_ticks`]).
    pub fn id(&self, token: Token) -> Option<u16> {
        match token {
            Token::NoteOn(p) if u16::from(p) < PITCHES => Some(u16::from(p)),
            Token::NoteOff(p) if u16::from(p) < PITCHES => Some(NOTE_OFF_BASE + u16::from(p)),
            Token::End => Some(END_ID),
            Token::TimeShift(d) if (1..=self.max_shift_ticks).contains(&d) => Some(END_ID + d),
            _ => None,
        }
    }

    /// The token with id `id`, or `None` past the end of the vocabulary.
    pub fn token(&self, id: u16) -> Option<Token> {
        Some(match id {
            _ if id < NOTE_OFF_BASE => Token::NoteOn(id as u8),
            _ if id < END_ID => Token::NoteOff((id - NOTE_OFF_BASE) as u8),
            END_ID => Token::End,
            _ if usize::from(id) < self.len() => Token::TimeShift(id - END_ID),
            _ => return None,
        })
    }

    /// The class of a valid id (ids past the end count as time shifts).
    pub fn class(&self, id: u16) -> TokenClass {
        match id {
            _ if id < NOTE_OFF_BASE => TokenClass::NoteOn,
            _ if id < END_ID => TokenClass::NoteOff,
            END_ID => TokenClass::End,
            _ => TokenClass::TimeShift,
        }
    }

    /// The ids of `tokens`; tokens outside the vocabulary are left out.
    pub fn ids(&self, tokens: &[Token]) -> Vec<u16> {
        tokens.iter().filter_map(|&t| self.id(t)).collect()
    }

    /// The tokens of `ids`; ids past the end are left out.
    pub fn tokens(&self, ids: &[u16]) -> Vec<Token> {
        ids.iter().filter_map(|&id| self.token(id)).collect()
    }

    /// The events of `notes` (times in beats from beat 0 of the tune), ending with `END`.
    ///
    /// Each onset and release is rounded to the nearest tick (negative times count as 0); a note
    /// that would last zero ticks lasts one. A pitch sounds at most once at a time: a note that
    /// starts while the same pitch sounds cuts the earlier one short there (a retrigger), and of
    /// two notes of one pitch starting on the same tick the longer is kept. Silence before the
    /// first note is kept, so positions stay relative to the tune's beat 0 (its first bar line).
    pub fn encode(&self, notes: &[Note]) -> Vec<Token> {
        let spans = quantize(notes);
        // (tick, 0 = off / 1 = on, pitch): offs sort before ons at the same tick, then by pitch.
        let mut events: Vec<(u64, u8, u8)> = spans
            .iter()
            .flat_map(|&(on, off, pitch)| [(on, 1, pitch), (off, 0, pitch)])
            .collect();
        events.sort_unstable();
        let mut tokens = Vec::with_capacity(events.len() + events.len() / 2 + 1);
        let mut now = 0u64;
        for (tick, is_on, pitch) in events {
            self.push_shifts(&mut tokens, tick - now);
            now = tick;
            tokens.push(if is_on == 1 {
                Token::NoteOn(pitch)
            } else {
                Token::NoteOff(pitch)
            });
        }
        tokens.push(Token::End);
        tokens
    }

    /// [`Self::encode`] as token ids.
    pub fn encode_ids(&self, notes: &[Note]) -> Vec<u16> {
        self.ids(&self.encode(notes))
    }

    /// Appends the time shifts that make a gap of `ticks`: as many longest shifts as fit, then
    /// the remainder.
    fn push_shifts(&self, tokens: &mut Vec<Token>, mut ticks: u64) {
        let max = u64::from(self.max_shift_ticks);
        while ticks > 0 {
            let step = ticks.min(max);
            tokens.push(Token::TimeShift(step as u16));
            ticks -= step;
        }
    }

    /// The notes of an event stream at [`DEFAULT_VELOCITY`]; see [`Self::decode_with_velocity`].
    pub fn decode(&self, tokens: &[Token]) -> Vec<Note> {
        self.decode_with_velocity(tokens, DEFAULT_VELOCITY)
    }

    /// The notes of an event stream, each at `velocity` (clamped to 1–127), ordered by onset then
    /// pitch, times in beats from the stream's start.
    ///
    /// Invalid events are ignored rather than rejected, so any sampled sequence decodes: a
    /// `NOTE_OFF` of a pitch that is not sounding, a `NOTE_ON` of a pitch that already sounds,
    /// a `NOTE_OFF` on the tick of its own `NOTE_ON` (the note would have no length) and time
    /// shifts outside the vocabulary. `END` closes every sounding note and stops decoding; a
    /// stream without `END` closes its notes after its last event (at least one tick long).
    pub fn decode_with_velocity(&self, tokens: &[Token], velocity: u8) -> Vec<Note> {
        let velocity = velocity.clamp(1, 127);
        let mut notes = Vec::new();
        // Onset tick of each sounding pitch.
        let mut sounding: BTreeMap<u8, u64> = BTreeMap::new();
        let mut now = 0u64;
        let mut push = |pitch: u8, on: u64, off: u64| {
            notes.push(Note {
                pitch,
                velocity,
                onset_beats: ticks_to_beats(on),
                duration_beats: ticks_to_beats(off - on),
            })
        };
        for &token in tokens {
            match token {
                Token::NoteOn(p) if p < 128 => {
                    sounding.entry(p).or_insert(now);
                }
                Token::NoteOff(p) => {
                    if let Some(&on) = sounding.get(&p) {
                        if now > on {
                            sounding.remove(&p);
                            push(p, on, now);
                        }
                    }
                }
                Token::TimeShift(d) if self.id(token).is_some() => now += u64::from(d),
                Token::End => break,
                _ => {}
            }
        }
        for (p, on) in sounding {
            push(p, on, now.max(on + 1));
        }
        notes.sort_by(|a, b| {
            a.onset_beats
                .total_cmp(&b.onset_beats)
                .then(a.pitch.cmp(&b.pitch))
        });
        notes
    }

    /// [`Self::decode`] of token ids (ids past the end are ignored).
    pub fn decode_ids(&self, ids: &[u16]) -> Vec<Note> {
        self.decode(&self.tokens(ids))
    }
}

/// The events of `notes` in the default vocabulary (see [`Vocabulary::encode`]).
pub fn encode(notes: &[Note]) -> Vec<Token> {
    Vocabulary::default().encode(notes)
}

/// The notes of `tokens` in the default vocabulary (see [`Vocabulary::decode`]).
pub fn decode(tokens: &[Token]) -> Vec<Note> {
    Vocabulary::default().decode(tokens)
}

/// Each event's position within its bar, in ticks: the time at which it happens (a time shift
/// happens where it starts) from the last bar line of `meter`. The time after token `i`, where
/// the next event will happen, is position `i` plus the length of token `i` if it is a shift.
pub fn position_in_bar(tokens: &[Token], meter: &Meter) -> Vec<u32> {
    let mut now = 0u64;
    tokens
        .iter()
        .map(|&token| {
            let position = meter.position(now);
            if let Token::TimeShift(d) = token {
                now += u64::from(d);
            }
            position
        })
        .collect()
}

/// The velocity an answer should use to follow the player: the mean velocity of the last
/// `last_n` notes by onset (at least one), or `None` if there are none.
pub fn recent_velocity(notes: &[Note], last_n: usize) -> Option<u8> {
    let mut by_onset: Vec<&Note> = notes.iter().collect();
    by_onset.sort_by(|a, b| a.onset_beats.total_cmp(&b.onset_beats));
    let recent = &by_onset[by_onset.len().saturating_sub(last_n.max(1))..];
    if recent.is_empty() {
        return None;
    }
    let sum: u32 = recent.iter().map(|n| u32::from(n.velocity)).sum();
    let mean = (sum as f64 / recent.len() as f64).round();
    Some(mean.clamp(1.0, 127.0) as u8)
}

/// The notes as `(on, off, pitch)` tick spans, one sounding note per pitch at a time, sorted by
/// pitch then onset (see [`Vocabulary::encode`] for the rules).
fn quantize(notes: &[Note]) -> Vec<(u64, u64, u8)> {
    let mut spans: Vec<(u8, u64, u64)> = notes
        .iter()
        .map(|n| {
            let on = beats_to_ticks(n.onset_beats);
            let off = beats_to_ticks(n.end_beats()).max(on + 1);
            (n.pitch.min(127), on, off)
        })
        .collect();
    spans.sort_unstable();
    let mut out: Vec<(u64, u64, u8)> = Vec::with_capacity(spans.len());
    for (pitch, on, off) in spans {
        match out.last_mut() {
            // Same pitch, same onset: keep the longer (spans are sorted, so this one).
            Some(prev) if prev.2 == pitch && prev.0 == on => prev.1 = prev.1.max(off),
            Some(prev) if prev.2 == pitch && prev.1 > on => {
                prev.1 = on;
                out.push((on, off, pitch));
            }
            _ => out.push((on, off, pitch)),
        }
    }
    out
}

/// The number of notes in an event stream (its `NOTE_ON` count).
pub fn note_count(tokens: &[Token]) -> usize {
    tokens
        .iter()
        .filter(|t| matches!(t, Token::NoteOn(_)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::midi_file::{read_notes, to_smf_bytes};
    use Token::{End, NoteOff as Off, NoteOn as On, TimeShift as Shift};

    use crate::music::meter::MeterChange;
    use crate::test_kit::note;

    /// Notes as (pitch, onset ticks, duration ticks), for exact comparisons on the grid.
    fn grid(notes: &[Note]) -> Vec<(u8, u64, u64)> {
        notes
            .iter()
            .map(|n| {
                let on = n.onset_beats * 24.0;
                let len = n.duration_beats * 24.0;
                assert!((on - on.round()).abs() < 1e-9 && (len - len.round()).abs() < 1e-9);
                (n.pitch, on.round() as u64, len.round() as u64)
            })
            .collect()
    }

    #[test]
    fn ids_are_stable_and_round_trip() {
        let v = Vocabulary::default();
        assert_eq!(v.len(), 353);
        assert_eq!(v.id(On(60)), Some(60));
        assert_eq!(v.id(Off(60)), Some(188));
        assert_eq!(v.id(End), Some(256));
        assert_eq!(v.id(Shift(1)), Some(257));
        assert_eq!(v.id(Shift(96)), Some(352));
        assert_eq!(v.id(Shift(0)), None);
        assert_eq!(v.id(Shift(97)), None);
        assert_eq!(v.id(On(128)), None);
        assert_eq!(v.token(353), None);
        for id in 0..v.len() as u16 {
            let token = v.token(id).unwrap();
            assert_eq!(v.id(token), Some(id));
            assert!(v.class_range(v.class(id)).contains(&usize::from(id)));
        }
        // The id of END does not depend on the longest shift.
        assert_eq!(Vocabulary::new(48).id(End), Some(256));
        assert_eq!(Vocabulary::new(48).len(), 305);
    }

    #[test]
    fn melody_through_a_midi_file_and_back_is_the_same_on_the_grid() {
        // Grid times: eighths, a dotted quarter, triplets, a 32nd, a rest and a pickup.
        let notes = vec![
            note(67, 0.5, 0.5),
            note(72, 1.0, 1.5),
            note(71, 2.5, 0.5),
            note(69, 3.0, 1.0 / 3.0),
            note(67, 3.0 + 1.0 / 3.0, 1.0 / 3.0),
            note(65, 3.0 + 2.0 / 3.0, 1.0 / 3.0),
            note(64, 4.0, 0.125),
            note(62, 4.125, 0.875),
            note(60, 7.0, 2.0),
        ];
        let v = Vocabulary::default();
        let read = read_notes(&to_smf_bytes(&notes, 120.0, 0, &[])).unwrap();
        let tokens = v.encode(&read);
        assert_eq!(note_count(&tokens), notes.len());
        let back = v.decode(&tokens);
        assert_eq!(grid(&back), grid(&notes));
        let again = read_notes(&to_smf_bytes(&back, 120.0, 0, &[])).unwrap();
        assert_eq!(grid(&again), grid(&notes));
        assert_eq!(v.encode(&again), tokens);
    }

    #[test]
    fn chords_and_overlapping_held_notes() {
        // A held C under a two-note chord that changes: C 0–4, E+G 0–1, F+A 1–2.
        let notes = vec![
            note(60, 0.0, 4.0),
            note(67, 0.0, 1.0),
            note(64, 0.0, 1.0),
            note(65, 1.0, 1.0),
            note(69, 1.0, 1.0),
        ];
        let tokens = encode(&notes);
        assert_eq!(
            tokens,
            vec![
                On(60),
                On(64),
                On(67),
                Shift(24),
                Off(64),
                Off(67),
                On(65),
                On(69),
                Shift(24),
                Off(65),
                Off(69),
                Shift(48),
                Off(60),
                End
            ]
        );
        let mut expected = grid(&notes);
        expected.sort_by_key(|&(p, on, _)| (on, p));
        assert_eq!(grid(&decode(&tokens)), expected);
    }

    #[test]
    fn a_repeated_pitch_is_released_before_it_starts_again() {
        let notes = vec![note(62, 0.0, 1.0), note(62, 1.0, 1.0)];
        assert_eq!(
            encode(&notes),
            vec![On(62), Shift(24), Off(62), On(62), Shift(24), Off(62), End]
        );
        // A same-pitch overlap (two channels merged) retriggers; a same-onset duplicate merges.
        let notes = vec![
            note(62, 0.0, 2.0),
            note(62, 1.0, 0.5),
            note(64, 3.0, 1.0),
            note(64, 3.0, 0.5),
        ];
        let tokens = encode(&notes);
        assert_eq!(note_count(&tokens), 3);
        assert_eq!(
            grid(&decode(&tokens)),
            vec![(62, 0, 24), (62, 24, 12), (64, 72, 24)]
        );
    }

    #[test]
    fn long_gaps_take_several_shifts() {
        let notes = vec![note(60, 0.0, 0.5), note(62, 10.0, 12.0)];
        let tokens = encode(&notes);
        // 0.5 beat = 12 ticks; gap 9.5 beats = 228 = 96 + 96 + 36; held 288 = 3 × 96.
        assert_eq!(
            tokens,
            vec![
                On(60),
                Shift(12),
                Off(60),
                Shift(96),
                Shift(96),
                Shift(36),
                On(62),
                Shift(96),
                Shift(96),
                Shift(96),
                Off(62),
                End
            ]
        );
        assert_eq!(grid(&decode(&tokens)), vec![(60, 0, 12), (62, 240, 288)]);
        // Leading silence is kept, so bar positions stay right.
        assert_eq!(encode(&[note(60, 5.0, 1.0)])[..2], [Shift(96), Shift(24)]);
        // A shorter longest shift changes only how gaps split.
        let short = Vocabulary::new(48).encode(&notes);
        assert_eq!(
            grid(&Vocabulary::new(48).decode(&short)),
            grid(&decode(&tokens))
        );
        assert!(short.len() > tokens.len());
    }

    #[test]
    fn off_grid_times_round_and_zero_lengths_become_one_tick() {
        let notes = vec![note(60, 0.01, 0.001), note(64, 1.0 / 7.0, 1.02)];
        let back = decode(&encode(&notes));
        // 0.01 beat → tick 0, lasting 1 tick; 1/7 beat = 3.43 → 3, ends at 27.9 → 28.
        assert_eq!(grid(&back), vec![(60, 0, 1), (64, 3, 25)]);
        assert_eq!(
            encode(&[note(60, -1.0, 0.0)]),
            vec![On(60), Shift(1), Off(60), End]
        );
        assert_eq!(encode(&[]), vec![End]);
    }

    #[test]
    fn decoding_ignores_invalid_events_and_closes_notes_at_end() {
        let tokens = [
            Off(50),   // not sounding: ignored
            On(60),    // 0
            On(60),    // already sounding: ignored
            Off(60),   // zero length: ignored, still sounding
            Shift(24), // 24
            On(64),
            Shift(12), // 36
            Off(60),
            Shift(200), // not in the vocabulary: ignored
            Shift(12),  // 48
            End,        // closes 64 at 48
            On(67),     // after END: ignored
        ];
        assert_eq!(grid(&decode(&tokens)), vec![(60, 0, 36), (64, 24, 24)]);
        // Without END, open notes close after the last event, at least one tick long.
        assert_eq!(
            grid(&decode(&[On(60), Shift(6), On(62)])),
            vec![(60, 0, 6), (62, 6, 1)]
        );
    }

    #[test]
    fn velocity_is_given_not_encoded() {
        let loud = vec![note(60, 0.0, 1.0)];
        let mut soft = loud.clone();
        soft[0].velocity = 20;
        assert_eq!(encode(&loud), encode(&soft));
        let v = Vocabulary::default();
        assert_eq!(v.decode(&encode(&loud))[0].velocity, DEFAULT_VELOCITY);
        assert_eq!(v.decode_with_velocity(&encode(&loud), 33)[0].velocity, 33);
        assert_eq!(v.decode_with_velocity(&encode(&loud), 0)[0].velocity, 1);

        let mut played = vec![note(60, 0.0, 1.0), note(62, 1.0, 1.0), note(64, 2.0, 1.0)];
        played[0].velocity = 120;
        played[1].velocity = 40;
        played[2].velocity = 51;
        assert_eq!(recent_velocity(&played, 2), Some(46));
        assert_eq!(recent_velocity(&played, 10), Some(70));
        assert_eq!(recent_velocity(&played, 0), Some(51));
        assert_eq!(recent_velocity(&[], 4), None);
    }

    #[test]
    fn positions_within_the_bar() {
        // 3/4 (72 ticks): a half note, a quarter, then a note on the next downbeat.
        let notes = vec![note(60, 0.0, 2.0), note(62, 2.0, 1.0), note(64, 3.0, 1.0)];
        let tokens = encode(&notes);
        assert_eq!(
            tokens,
            vec![
                On(60),
                Shift(48),
                Off(60),
                On(62),
                Shift(24),
                Off(62),
                On(64),
                Shift(24),
                Off(64),
                End
            ]
        );
        assert_eq!(
            position_in_bar(&tokens, &Meter::constant(72)),
            vec![0, 0, 48, 48, 48, 0, 0, 0, 24, 24]
        );
        assert_eq!(position_in_bar(&tokens, &Meter::constant(0)), vec![0; 10]);
        // 3/4 for one bar, then 1/4 (24 ticks).
        let change = |at_ticks, bar_ticks| MeterChange {
            at_ticks,
            bar_ticks,
        };
        let meter = Meter::from_changes([change(72, 24), change(0, 72)]);
        assert_eq!(
            position_in_bar(&tokens, &meter),
            vec![0, 0, 48, 48, 48, 0, 0, 0, 0, 0]
        );
    }
}
