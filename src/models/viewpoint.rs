//! Viewpoints (Conklin & Witten 1995): ways of seeing the event stream that a PPM model learns
//! better than the raw tokens.
//!
//! A viewpoint maps each event, given the events before it ([`History`]), to a symbol of its
//! own alphabet, or to nothing where it is undefined. Its model reads only its own symbols, so
//! a viewpoint is also a choice of context: [`Viewpoint::Pitch`] predicts a note-on from the
//! pitches of the note-ons before it, skipping the rhythm in between.
//!
//! A *full* viewpoint is defined for every event and maps the candidate next events one to one
//! onto symbols, so its model's distribution over symbols is a distribution over all events.
//! A *partial* viewpoint is defined for one class of events only (note-ons, time shifts), one to
//! one within that class, and says which of them comes given that one of them comes.

use crate::music::encoding::{TokenClass, Vocabulary, TICKS_PER_BEAT};

/// A way of seeing events (see the module docs).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Viewpoint {
    /// Full: the token itself.
    Token,
    /// Full, transposition invariant: note-ons and note-offs as their interval from the pitch of
    /// the last note-on (absolute before the first); shifts and `END` as themselves.
    Relative,
    /// Note-ons: the pitch, in the sequence of note-on pitches.
    Pitch,
    /// Note-ons after the first: the interval from the previous note-on, in the sequence of
    /// such intervals.
    Interval,
    /// Time shifts: the shift, in the sequence of time shifts (the rhythm without the pitches).
    Shift,
    /// Note-ons after the first: the interval from the tune's first note-on (a key-free stand-in
    /// for the scale degree, as folk tunes mostly start on the tonic or its fifth).
    FromFirst,
    /// Time shifts linked with where in the beat they start: `(shift, start tick mod 24)`, so
    /// the model learns the metre's rhythms without being told the metre.
    ShiftInBeat,
}

/// Number of pitches.
const PITCHES: u32 = 128;
/// Number of intervals between two pitches, −127..=127.
const INTERVALS: u32 = 2 * PITCHES - 1;

impl Viewpoint {
    /// Every viewpoint.
    pub const ALL: [Viewpoint; 7] = [
        Viewpoint::Token,
        Viewpoint::Relative,
        Viewpoint::Pitch,
        Viewpoint::Interval,
        Viewpoint::Shift,
        Viewpoint::FromFirst,
        Viewpoint::ShiftInBeat,
    ];

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Viewpoint::Token => "token",
            Viewpoint::Relative => "relative",
            Viewpoint::Pitch => "pitch",
            Viewpoint::Interval => "interval",
            Viewpoint::Shift => "shift",
            Viewpoint::FromFirst => "from-first",
            Viewpoint::ShiftInBeat => "shift-in-beat",
        }
    }

    /// The class of events a partial viewpoint sees, or `None` for a full one.
    pub fn class(self) -> Option<TokenClass> {
        match self {
            Viewpoint::Token | Viewpoint::Relative => None,
            Viewpoint::Pitch | Viewpoint::Interval | Viewpoint::FromFirst => {
                Some(TokenClass::NoteOn)
            }
            Viewpoint::Shift | Viewpoint::ShiftInBeat => Some(TokenClass::TimeShift),
        }
    }

    /// Number of symbols.
    pub fn alphabet_size(self, vocabulary: &Vocabulary) -> u32 {
        let shifts = u32::from(vocabulary.max_shift_ticks());
        match self {
            Viewpoint::Token => vocabulary.len() as u32,
            // Relative and absolute note-ons and note-offs, END, shifts.
            Viewpoint::Relative => 2 * (INTERVALS + PITCHES) + 1 + shifts,
            Viewpoint::Pitch => PITCHES,
            Viewpoint::Interval | Viewpoint::FromFirst => INTERVALS,
            Viewpoint::Shift => shifts,
            Viewpoint::ShiftInBeat => shifts * TICKS_PER_BEAT,
        }
    }

    /// The symbol of event `id` after `history`, or `None` where the viewpoint is undefined.
    pub fn symbol(self, history: &History, vocabulary: &Vocabulary, id: u16) -> Option<u32> {
        let class = vocabulary.class(id);
        let pitch = || u32::from(id) % PITCHES;
        let interval = |from: u8| pitch() + PITCHES - 1 - u32::from(from);
        let shift = || u32::from(id - vocabulary.end_id()) - 1;
        match self {
            Viewpoint::Token => Some(u32::from(id)),
            Viewpoint::Relative => {
                let relative_base = match class {
                    TokenClass::NoteOn => 0,
                    TokenClass::NoteOff => INTERVALS + PITCHES,
                    TokenClass::End => return Some(2 * (INTERVALS + PITCHES)),
                    TokenClass::TimeShift => {
                        let shift = u32::from(id - vocabulary.end_id());
                        return Some(2 * (INTERVALS + PITCHES) + shift);
                    }
                };
                Some(match history.last_on {
                    Some(from) => relative_base + interval(from),
                    None => relative_base + INTERVALS + pitch(),
                })
            }
            Viewpoint::Pitch => (class == TokenClass::NoteOn).then(pitch),
            Viewpoint::Interval => match (class, history.last_on) {
                (TokenClass::NoteOn, Some(from)) => Some(interval(from)),
                _ => None,
            },
            Viewpoint::FromFirst => match (class, history.first_on) {
                (TokenClass::NoteOn, Some(from)) => Some(interval(from)),
                _ => None,
            },
            Viewpoint::Shift => (class == TokenClass::TimeShift).then(shift),
            Viewpoint::ShiftInBeat => (class == TokenClass::TimeShift).then(|| {
                let phase = (history.time_ticks % u64::from(TICKS_PER_BEAT)) as u32;
                shift() * TICKS_PER_BEAT + phase
            }),
        }
    }

    /// The symbols of the events of `class` after `history` as `(first, stride)`: the class's
    /// `k`-th event (from [`Vocabulary::class_range`]'s start) is symbol `first + stride · k`.
    /// Every viewpoint is affine like this within a class (tested), which lets a model's
    /// distribution over symbols be read as one over events without a [`Self::symbol`] call per
    /// event. `None` where the viewpoint is undefined for the class.
    pub fn class_symbols(
        self,
        history: &History,
        vocabulary: &Vocabulary,
        class: TokenClass,
    ) -> Option<(u32, u32)> {
        let range = vocabulary.class_range(class);
        let first = self.symbol(history, vocabulary, range.start as u16)?;
        let stride = match range.len() {
            0 | 1 => 0,
            _ => self
                .symbol(history, vocabulary, range.start as u16 + 1)?
                .wrapping_sub(first),
        };
        Some((first, stride))
    }

    /// The symbols of a whole tune (its events from the first), where defined.
    pub fn sequence(self, vocabulary: &Vocabulary, tokens: &[u16]) -> Vec<u32> {
        let mut history = History::default();
        let mut out = Vec::with_capacity(tokens.len());
        for &id in tokens {
            if let Some(symbol) = self.symbol(&history, vocabulary, id) {
                out.push(symbol);
            }
            history.observe(vocabulary, id);
        }
        out
    }
}

/// What the viewpoints need to know of the events so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// Pitch of the last note-on.
    last_on: Option<u8>,
    /// Pitch of the first note-on.
    first_on: Option<u8>,
    /// Ticks from the tune's start.
    time_ticks: u64,
}

impl History {
    /// Ticks from the tune's start to the next event.
    pub fn time_ticks(&self) -> u64 {
        self.time_ticks
    }

    /// Pitch of the last note-on, if any.
    pub fn last_on(&self) -> Option<u8> {
        self.last_on
    }

    /// Event `id` happened.
    pub fn observe(&mut self, vocabulary: &Vocabulary, id: u16) {
        match vocabulary.class(id) {
            TokenClass::NoteOn => {
                self.last_on = Some(id as u8);
                self.first_on.get_or_insert(id as u8);
            }
            TokenClass::TimeShift => self.time_ticks += u64::from(id - vocabulary.end_id()),
            TokenClass::NoteOff | TokenClass::End => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::encoding::Token;

    #[test]
    fn viewpoints_are_one_to_one_where_defined() {
        let vocabulary = Vocabulary::default();
        let histories = [
            History::default(),
            History {
                last_on: Some(0),
                first_on: Some(0),
                time_ticks: 5,
            },
            History {
                last_on: Some(64),
                first_on: Some(127),
                time_ticks: 47,
            },
            History {
                last_on: Some(127),
                first_on: Some(60),
                time_ticks: 0,
            },
        ];
        for viewpoint in Viewpoint::ALL {
            let size = viewpoint.alphabet_size(&vocabulary);
            for history in &histories {
                let mut seen = std::collections::BTreeSet::new();
                for id in 0..vocabulary.len() as u16 {
                    let symbol = viewpoint.symbol(history, &vocabulary, id);
                    let in_class = viewpoint.class().is_none_or(|c| c == vocabulary.class(id));
                    let needs_a_note =
                        matches!(viewpoint, Viewpoint::Interval | Viewpoint::FromFirst);
                    let defined = in_class && !(needs_a_note && history.last_on.is_none());
                    assert_eq!(symbol.is_some(), defined, "{viewpoint:?} {id}");
                    if let Some(s) = symbol {
                        assert!(s < size, "{viewpoint:?} {id} → {s} ≥ {size}");
                        assert!(seen.insert(s), "{viewpoint:?} maps two events to {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn viewpoints_are_affine_within_each_class() {
        let vocabulary = Vocabulary::default();
        let mut history = History::default();
        let tune = vocabulary.ids(&[
            Token::TimeShift(5),
            Token::NoteOn(0),
            Token::TimeShift(30),
            Token::NoteOff(0),
            Token::NoteOn(127),
            Token::TimeShift(13),
            Token::NoteOn(64),
        ]);
        for next in tune {
            for viewpoint in Viewpoint::ALL {
                for class in TokenClass::ALL {
                    let range = vocabulary.class_range(class);
                    let symbols: Vec<Option<u32>> = range
                        .clone()
                        .map(|id| viewpoint.symbol(&history, &vocabulary, id as u16))
                        .collect();
                    match viewpoint.class_symbols(&history, &vocabulary, class) {
                        Some((first, stride)) => {
                            for (k, symbol) in symbols.iter().enumerate() {
                                let affine = first + stride * k as u32;
                                assert_eq!(*symbol, Some(affine), "{viewpoint:?} {class:?} {k}");
                            }
                        }
                        None => assert!(symbols.iter().all(Option::is_none), "{viewpoint:?}"),
                    }
                }
            }
            history.observe(&vocabulary, next);
        }
    }

    #[test]
    fn relative_symbols_do_not_depend_on_the_key() {
        let vocabulary = Vocabulary::default();
        let tune = |t: u8| {
            vocabulary.ids(&[
                Token::NoteOn(60 + t),
                Token::TimeShift(12),
                Token::NoteOff(60 + t),
                Token::NoteOn(67 + t),
                Token::TimeShift(12),
                Token::NoteOff(67 + t),
                Token::End,
            ])
        };
        let (c, d) = (tune(0), tune(2));
        for viewpoint in [Viewpoint::Relative, Viewpoint::Interval, Viewpoint::Shift] {
            let (a, b) = (
                viewpoint.sequence(&vocabulary, &c),
                viewpoint.sequence(&vocabulary, &d),
            );
            // Only the first note-on of the relative view is absolute.
            let skip = usize::from(viewpoint == Viewpoint::Relative);
            assert_eq!(a[skip..], b[skip..], "{viewpoint:?}");
        }
        assert_eq!(Viewpoint::Interval.sequence(&vocabulary, &c), vec![127 + 7]);
        assert_eq!(Viewpoint::Shift.sequence(&vocabulary, &c), vec![11, 11]);
        assert_eq!(Viewpoint::Pitch.sequence(&vocabulary, &d), vec![62, 69]);
    }
}
