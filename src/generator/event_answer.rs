//! Answering with an event model (the `wavenet`, `markov` and `hybrid` engines): the model reads
//! the tune so far as events, then events are sampled one by one and decoded into notes.
//!
//! # Time
//! The tune so far is laid out in the bars of a [`Layout`]'s meter (the plugin's is the host's
//! time signature). Each phrase's onsets are from the bar line before its first note, so it keeps
//! its place in the bar (a pickup stays a pickup): the first phrase starts at bar line 0, each
//! next one at the first bar line after the last release before it. The answer starts where the
//! layout says in the bar (the plugin's: where on the host's grid it will be played), at the first
//! such time after the last release. Long silences between phrases are so left out, and the model
//! reads the same bar lines as its position inputs. The answer's notes are returned with onsets
//! from its own start.
//!
//! # Sampling
//! Only valid events can be drawn: a note-on for a pitch not sounding (while fewer than
//! [`MAX_ANSWER_POLYPHONY`] sound, or, for one line, while none does), a note-off for a sounding pitch, any time shift once a note has
//! started (an answer begins with a note, where it is due on the host's grid, never with a
//! rest), and `END` once the answer has a note (`END` ends the answer). The distribution is cut
//! to its nucleus (the likeliest events holding [`NUCLEUS`] of the probability), then drawn at
//! the temperature (see [`sample_index`]). Over the player's chords, the tones of the last one
//! weigh [`CHORD_TONE_WEIGHT`] times more on the answer's strong beats (a bar's first, the third
//! of a bar of four) before the cut. Every note still sounding when the answer reaches its
//! length is released there, so an answer never leaves a note hanging.

use rand::Rng;

use super::sampling::sample_index;
use crate::models::EventModel;
use crate::music::encoding::{recent_velocity, Token, TokenClass, Vocabulary, DEFAULT_VELOCITY};
use crate::music::key::PitchSet;
use crate::music::meter::Meter;
use crate::music::{ticks_to_beats, Note, TICKS_PER_BEAT};
use crate::protocol::MAX_ANSWER_POLYPHONY;

/// Most events sampled for one answer (a model that never moves time still terminates).
pub const MAX_ANSWER_EVENTS: usize = 1024;
/// Probability mass kept by the nucleus cut (Holtzman et al. 2020, "top-p").
pub const NUCLEUS: f64 = 0.98;

/// Where the tune so far and its answer sit in bars (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// The bar lines, in ticks from the first phrase's bar line.
    pub meter: Meter,
    /// Where the answer starts in its bar, in ticks after the bar line (0: on it).
    pub answer_offset_ticks: u32,
}

/// The events of `phrases` (each one's onsets from the bar line before its first note) laid out
/// by `layout` as in the module docs, ready for the answer to start; no `END`.
pub fn context_events(phrases: &[&[Note]], vocabulary: &Vocabulary, layout: &Layout) -> Vec<u16> {
    let mut out = Vec::new();
    let mut now = 0u64;
    for (i, phrase) in phrases.iter().enumerate() {
        let ids = vocabulary.encode_ids(phrase);
        for &id in &ids[..ids.len().saturating_sub(1)] {
            if let Some(Token::TimeShift(d)) = vocabulary.token(id) {
                now += u64::from(d);
            }
            out.push(id);
        }
        let target = if i + 1 == phrases.len() {
            layout.answer_offset_ticks
        } else {
            0
        };
        let bar = layout.meter.bar_ticks(now);
        let to_target = (target % bar + bar - layout.meter.position(now)) % bar;
        push_shift(&mut out, u64::from(to_target), vocabulary);
        now += u64::from(to_target);
    }
    out
}

/// Whether `notes` (in onset order) sound one at a time.
pub fn is_one_line(notes: &[Note]) -> bool {
    notes
        .windows(2)
        .all(|pair| pair[0].end_beats() <= pair[1].onset_beats + 1e-9)
}

/// How much likelier a tone of the player's chord becomes on a strong beat of the answer.
pub const CHORD_TONE_WEIGHT: f64 = 3.0;

/// Notes of the phrase the answer's velocity follows (the mean of its latest ones).
const VELOCITY_NOTES: usize = 8;

/// `model`'s answer to the last of `phrases` (the tune so far, oldest first, laid out by
/// [`context_events`]; the model reads the layout's bar lines too) into `out`, at the velocity
/// of the last phrase's latest notes: what the plugin plays and `wavejam continue` writes. A
/// last phrase of one line (a melody) is answered with one line, chords with chords.
/// `model` is reset first, so a reused engine answers as a new one would. Returns where the
/// answer starts, in ticks from the first phrase's bar line.
#[allow(clippy::too_many_arguments)]
pub fn answer_phrases(
    answerer: &mut EventAnswerer,
    model: &mut dyn EventModel,
    phrases: &[&[Note]],
    layout: &Layout,
    length_beats: f64,
    temperature: f32,
    rng: &mut impl Rng,
    out: &mut Vec<Note>,
) -> u64 {
    let vocabulary = answerer.vocabulary;
    let context = context_events(phrases, &vocabulary, layout);
    model.set_meter(&layout.meter);
    let start_ticks = vocabulary
        .tokens(&context)
        .iter()
        .map(|t| match t {
            Token::TimeShift(d) => u64::from(*d),
            _ => 0,
        })
        .sum();
    let velocity = phrases
        .last()
        .and_then(|p| recent_velocity(p, VELOCITY_NOTES))
        .unwrap_or(DEFAULT_VELOCITY);
    answerer.set_one_line(phrases.last().is_none_or(|p| is_one_line(p)));
    answerer.bars = Some((layout.meter.clone(), start_ticks));
    answerer.answer(
        model,
        &context,
        length_beats,
        temperature,
        velocity,
        rng,
        out,
    );
    start_ticks
}

/// Time shift events that add up to `ticks`.
fn push_shift(out: &mut Vec<u16>, mut ticks: u64, vocabulary: &Vocabulary) {
    let max = u64::from(vocabulary.max_shift_ticks());
    while ticks > 0 {
        let d = ticks.min(max);
        if let Some(id) = vocabulary.id(Token::TimeShift(d as u16)) {
            out.push(id);
        }
        ticks -= d;
    }
}

/// Samples answers from an event model; holds the buffers so answers reuse them.
#[derive(Debug, Clone)]
pub struct EventAnswerer {
    vocabulary: Vocabulary,
    probabilities: Vec<f64>,
    order: Vec<u16>,
    /// Onset tick of each sounding pitch.
    sounding: [Option<u64>; 128],
    /// The pitch classes note-ons keep to (`None`: any).
    scale: Option<PitchSet>,
    /// Most notes sounding at once: 1 for an answer to a melody (one line), up to
    /// [`MAX_ANSWER_POLYPHONY`] to chords.
    voices: usize,
    /// The chord the player last struck under their melody (`None`: none), whose tones the
    /// answer prefers on strong beats.
    chord: Option<PitchSet>,
    /// Where the answer starts (ticks from the layout's bar line 0) in the bars of the meter.
    bars: Option<(Meter, u64)>,
}

impl EventAnswerer {
    pub fn new(vocabulary: Vocabulary) -> Self {
        Self {
            vocabulary,
            probabilities: vec![0.0; vocabulary.len()],
            order: Vec::with_capacity(vocabulary.len()),
            sounding: [None; 128],
            scale: None,
            voices: MAX_ANSWER_POLYPHONY,
            chord: None,
            bars: None,
        }
    }

    /// Prefer the tones of `chord` (the chord under the player's melody; `None`: no chord) on
    /// the strong beats of the next answers ([`CHORD_TONE_WEIGHT`]).
    pub fn set_chord(&mut self, chord: Option<PitchSet>) {
        self.chord = chord;
    }

    /// Answer the next phrases with one line (`true`: a note-on only when nothing sounds, as
    /// to a melody), or with up to [`MAX_ANSWER_POLYPHONY`] notes at once (to chords).
    pub fn set_one_line(&mut self, one_line: bool) {
        self.voices = if one_line { 1 } else { MAX_ANSWER_POLYPHONY };
    }

    /// Keep the next answers' notes to `scale` (`None`: any pitch): the other note-ons are
    /// taken out of every distribution before sampling.
    pub fn set_scale(&mut self, scale: Option<PitchSet>) {
        self.scale = scale;
    }

    /// Fills `out` (cleared first) with `model`'s answer after `context` (see
    /// [`context_events`]), `length_beats` long, at `temperature`, its notes at `velocity`.
    ///
    /// `model` is reset first, so the answer depends only on the context, the temperature and the
    /// RNG stream. Onsets are from the answer's start and never decrease; every note ends by
    /// `length_beats`. A non-positive or NaN length gives no notes.
    #[allow(clippy::too_many_arguments)]
    pub fn answer(
        &mut self,
        model: &mut dyn EventModel,
        context: &[u16],
        length_beats: f64,
        temperature: f32,
        velocity: u8,
        rng: &mut impl Rng,
        out: &mut Vec<Note>,
    ) {
        out.clear();
        self.sounding = [None; 128];
        if length_beats.is_nan() || length_beats <= 0.0 {
            return;
        }
        let length = (length_beats * f64::from(TICKS_PER_BEAT)).floor() as u64;
        model.reset();
        model.observe_all(context);
        let mut now = 0u64;
        for _ in 0..MAX_ANSWER_EVENTS {
            model.distribution(&mut self.probabilities);
            self.mask(!out.is_empty());
            self.prefer_chord_tones(now);
            if self.probabilities.iter().all(|p| *p <= 0.0) {
                // Nothing valid is left (a scale lock that takes every note-on away).
                break;
            }
            self.nucleus();
            let probabilities = &self.probabilities;
            let Some(index) =
                sample_index(probabilities.len(), |i| probabilities[i], temperature, rng)
            else {
                break;
            };
            let id = index as u16;
            match self.vocabulary.token(id) {
                Some(Token::NoteOn(p)) => self.sounding[usize::from(p)] = Some(now),
                Some(Token::NoteOff(p)) => {
                    if let Some(onset) = self.sounding[usize::from(p)].take() {
                        out.push(note_from_ticks(p, velocity, onset, now));
                    }
                }
                Some(Token::TimeShift(d)) => {
                    now += u64::from(d);
                    if now >= length {
                        break;
                    }
                }
                Some(Token::End) | None => break,
            }
            model.observe(id);
        }
        let end = now.min(length);
        for (pitch, onset) in self.sounding.iter_mut().enumerate() {
            if let Some(onset) = onset.take() {
                out.push(note_from_ticks(
                    pitch as u8,
                    velocity,
                    onset,
                    end.max(onset + 1),
                ));
            }
        }
        out.sort_by(|a, b| {
            a.onset_beats
                .total_cmp(&b.onset_beats)
                .then(a.pitch.cmp(&b.pitch))
        });
        // A note opened on the answer's last tick is clipped to end at the length.
        for n in out.iter_mut() {
            n.duration_beats = n.duration_beats.min(length_beats - n.onset_beats);
        }
        out.retain(|n| n.duration_beats > 0.0);
    }

    /// On a strong beat (a bar's first; the third of a bar of four), weighs the note-ons of the
    /// chord's tones by [`CHORD_TONE_WEIGHT`]; `now` is in ticks from the answer's start.
    fn prefer_chord_tones(&mut self, now: u64) {
        let (Some(chord), Some((meter, start))) = (self.chord, &self.bars) else {
            return;
        };
        let at = start + now;
        let position = meter.position(at);
        let bar = meter.bar_ticks(at);
        let strong = position == 0 || (bar == 4 * TICKS_PER_BEAT && position == bar / 2);
        if !strong {
            return;
        }
        let range = self.vocabulary.class_range(TokenClass::NoteOn);
        for (pitch, p) in self.probabilities[range].iter_mut().enumerate() {
            if chord.contains(pitch as u8) {
                *p *= CHORD_TONE_WEIGHT;
            }
        }
    }

    /// Zeroes every event that would be invalid now (see the module docs).
    fn mask(&mut self, has_notes: bool) {
        let sounding = self.sounding.iter().filter(|s| s.is_some()).count();
        let started = has_notes || sounding > 0;
        let v = &self.vocabulary;
        for class in TokenClass::ALL {
            let range = v.class_range(class);
            for (k, p) in self.probabilities[range].iter_mut().enumerate() {
                // NOTE: within the note classes, `k` is the pitch.
                let valid = match class {
                    TokenClass::NoteOn => {
                        self.sounding[k].is_none()
                            && sounding < self.voices
                            && self.scale.is_none_or(|s| s.contains(k as u8))
                    }
                    TokenClass::NoteOff => self.sounding[k].is_some(),
                    TokenClass::TimeShift => started,
                    TokenClass::End => has_notes,
                };
                if !valid || !p.is_finite() {
                    *p = 0.0;
                }
            }
        }
    }

    /// Keeps the likeliest events holding [`NUCLEUS`] of the (masked) mass, zeroing the rest.
    fn nucleus(&mut self) {
        let probabilities = &mut self.probabilities;
        let total: f64 = probabilities.iter().sum();
        if total <= 0.0 {
            return;
        }
        // Likeliest first; ties by id, so the cut is deterministic.
        let likelier = |a: &u16, b: &u16| {
            probabilities[usize::from(*b)]
                .total_cmp(&probabilities[usize::from(*a)])
                .then(a.cmp(b))
        };
        // NOTE: the events below `tail` hold at most 1 − NUCLEUS of the mass together, so the
        // cut falls among the others: only they need sorting (a few dozen of the ~350 events
        // in a peaked distribution). The rest are sorted only if rounding says otherwise.
        let n = probabilities.len();
        let tail = (1.0 - NUCLEUS) * total / n as f64;
        self.order.clear();
        self.order
            .extend((0..n as u16).filter(|&i| probabilities[usize::from(i)] >= tail));
        self.order.sort_by(likelier);
        // The rank after which the likeliest events of `order` hold the nucleus, counting on
        // from the mass `kept` before them.
        let cut_in = |order: &[u16], kept: &mut f64| {
            order.iter().position(|&id| {
                *kept += probabilities[usize::from(id)];
                *kept >= NUCLEUS * total
            })
        };
        let mut kept = 0.0;
        let cut = match cut_in(&self.order, &mut kept) {
            Some(rank) => {
                for p in probabilities.iter_mut() {
                    if *p < tail {
                        *p = 0.0;
                    }
                }
                rank + 1
            }
            None => {
                let head = self.order.len();
                self.order.extend((0..n as u16).filter(|&i| {
                    let p = probabilities[usize::from(i)];
                    p > 0.0 && p < tail
                }));
                self.order[head..].sort_by(likelier);
                cut_in(&self.order[head..], &mut kept).map_or(self.order.len(), |r| head + r + 1)
            }
        };
        for &id in &self.order[cut..] {
            probabilities[usize::from(id)] = 0.0;
        }
    }
}

/// A note from its onset and release in ticks.
fn note_from_ticks(pitch: u8, velocity: u8, on: u64, off: u64) -> Note {
    Note {
        pitch,
        velocity,
        onset_beats: ticks_to_beats(on),
        duration_beats: ticks_to_beats(off - on),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::engines::{train_long_term, Brains, EngineKind};
    use crate::music::meter::MeterChange;
    use crate::test_kit::folk_tune;
    use crate::test_kit::random_kernel;
    use crate::test_kit::test_melody;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn brains() -> Brains {
        let v = Vocabulary::default();
        let tunes: Vec<Vec<u16>> = [-2, 0, 3]
            .iter()
            .map(|&s| v.encode_ids(&folk_tune(s)))
            .collect();
        Brains {
            wavenet: random_kernel(5),
            long_term: Some(train_long_term(v, tunes.iter().map(Vec::as_slice))),
        }
    }

    #[test]
    fn context_keeps_phrases_in_their_bars_and_starts_the_answer_where_due() {
        let v = Vocabulary::default();
        let a = test_melody(&[60, 62, 64], 1.0);
        let b = test_melody(&[65, 67], 1.0);
        // (answer start, onsets) in beats for the context of `a` (3 beats) then `b` (2).
        let layout = |meter: &Meter, answer_offset_ticks| {
            let layout = Layout {
                meter: meter.clone(),
                answer_offset_ticks,
            };
            let tokens = v.tokens(&context_events(&[&a, &b], &v, &layout));
            assert!(!tokens.contains(&Token::End));
            let total: u64 = tokens
                .iter()
                .map(|t| match t {
                    Token::TimeShift(d) => u64::from(*d),
                    _ => 0,
                })
                .sum();
            let onsets: Vec<f64> = v.decode(&tokens).iter().map(|n| n.onset_beats).collect();
            (ticks_to_beats(total), onsets)
        };
        // 4/4: the second phrase at beat 4, the answer at beat 8.
        assert_eq!(
            layout(&Meter::default(), 0),
            (8.0, vec![0.0, 1.0, 2.0, 4.0, 5.0])
        );
        // An answer due on beat 3 of its bar starts at the first such beat after `b`: 6; one due
        // on beat 1 (ticks 24) waits for beat 9.
        assert_eq!(layout(&Meter::default(), 48).0, 6.0);
        assert_eq!(layout(&Meter::default(), 24).0, 9.0);
        // 3/4: `a` fills the first bar, so `b` follows at once; the answer at beat 6.
        assert_eq!(
            layout(&Meter::constant(72), 0),
            (6.0, vec![0.0, 1.0, 2.0, 3.0, 4.0])
        );
        // 4/4, then 3/4 from beat 4: `b` at 4 and the answer on the bar line at 7.
        let changing = Meter::from_changes([MeterChange {
            at_ticks: 96,
            bar_ticks: 72,
        }]);
        assert_eq!(layout(&changing, 0), (7.0, vec![0.0, 1.0, 2.0, 4.0, 5.0]));
    }

    /// Every engine's answers are valid at every temperature: in time, in order, released, begun
    /// with a note, and the same for the same seed.
    #[test]
    fn answers_are_valid_and_reproducible() {
        let v = Vocabulary::default();
        let brains = brains();
        let phrase = folk_tune(0);
        let context = context_events(&[&phrase[..8]], &v, &Layout::default());
        let mut answerer = EventAnswerer::new(v);
        for kind in EngineKind::ALL {
            for temperature in [0.0, 0.5, 1.0, 1.5, 2.0] {
                let mut answers = Vec::new();
                for seed in [1, 1, 2] {
                    let mut model = brains.engine(kind);
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    let mut out = Vec::new();
                    answerer.answer(
                        model.as_mut(),
                        &context,
                        8.0,
                        temperature,
                        90,
                        &mut rng,
                        &mut out,
                    );
                    for n in &out {
                        assert!(
                            n.onset_beats >= 0.0 && n.duration_beats > 0.0,
                            "{kind:?} {n:?}"
                        );
                        assert!(n.end_beats() <= 8.0 + 1e-12, "{kind:?} {n:?}");
                        assert_eq!(n.velocity, 90);
                    }
                    assert!(out.windows(2).all(|w| w[0].onset_beats <= w[1].onset_beats));
                    // It begins with a note, where it is due.
                    assert_eq!(out.first().map(|n| n.onset_beats), Some(0.0), "{kind:?}");
                    answers.push(out);
                }
                assert_eq!(answers[0], answers[1], "{kind:?} at {temperature}");
                if temperature == 0.0 {
                    assert_eq!(answers[0], answers[2], "argmax ignores the seed");
                }
            }
        }
    }

    /// As one line, no answer ever has two notes at once, even from a random model at a high
    /// temperature (which plays chords when let).
    #[test]
    fn one_line_answers_never_overlap() {
        let v = Vocabulary::default();
        let brains = brains();
        let phrase = folk_tune(0);
        let context = context_events(&[&phrase[..8]], &v, &Layout::default());
        let mut answerer = EventAnswerer::new(v);
        let mut answer = |one_line: bool, seed: u64| {
            answerer.set_one_line(one_line);
            let mut model = brains.engine(EngineKind::WaveNet);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = Vec::new();
            answerer.answer(model.as_mut(), &context, 8.0, 2.0, 90, &mut rng, &mut out);
            out
        };
        let overlaps = |notes: &[Note]| {
            notes
                .iter()
                .enumerate()
                .any(|(i, a)| notes[i + 1..].iter().any(|b| b.onset_beats < a.end_beats()))
        };
        assert!((1..6).any(|seed| overlaps(&answer(false, seed))));
        for seed in 1..6 {
            let line = answer(true, seed);
            assert!(!line.is_empty());
            assert!(!overlaps(&line), "seed {seed}: {line:?}");
        }
    }

    #[test]
    fn a_trained_markov_engine_continues_the_tune_it_knows() {
        let v = Vocabulary::default();
        let brains = brains();
        let tune = folk_tune(0);
        // Prompt: the tune's first two bars; the argmax answer should be the tune's next notes.
        let prompt: Vec<Note> = tune
            .iter()
            .filter(|n| n.onset_beats < 8.0)
            .copied()
            .collect();
        let context = context_events(&[&prompt], &v, &Layout::default());
        let mut model = brains.engine(EngineKind::Markov);
        let mut out = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        EventAnswerer::new(v).answer(model.as_mut(), &context, 4.0, 0.0, 80, &mut rng, &mut out);
        let expected: Vec<u8> = tune
            .iter()
            .filter(|n| (8.0..12.0).contains(&n.onset_beats))
            .map(|n| n.pitch)
            .collect();
        let got: Vec<u8> = out.iter().map(|n| n.pitch).collect();
        assert!(!expected.is_empty());
        assert_eq!(got, expected);
    }

    #[test]
    fn the_nucleus_keeps_the_likeliest_mass() {
        let v = Vocabulary::default();
        let mut answerer = EventAnswerer::new(v);
        answerer.probabilities.fill(0.0);
        answerer.probabilities[..4].copy_from_slice(&[0.5, 0.3, 0.19, 0.01]);
        answerer.nucleus();
        assert_eq!(&answerer.probabilities[..4], &[0.5, 0.3, 0.19, 0.0]);
    }

    #[test]
    fn the_nucleus_is_the_shortest_likeliest_prefix_of_the_full_order() {
        use rand::Rng;
        let v = Vocabulary::default();
        let mut answerer = EventAnswerer::new(v);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for round in 0..300 {
            // Peaked, flat, tied and sparse distributions.
            let sharpness = [0.5, 2.0, 8.0][round % 3];
            for p in answerer.probabilities.iter_mut() {
                *p = match rng.random_range(0..10) {
                    0 => 0.0,
                    1 => 0.25,
                    _ => rng.random::<f64>().powf(sharpness),
                };
            }
            let before = answerer.probabilities.clone();
            // The definition: sort everything, keep the shortest prefix holding the nucleus.
            let total: f64 = before.iter().sum();
            let mut order: Vec<usize> = (0..before.len()).filter(|&i| before[i] > 0.0).collect();
            order.sort_by(|&a, &b| before[b].total_cmp(&before[a]).then(a.cmp(&b)));
            let mut expected = vec![0.0; before.len()];
            let mut kept = 0.0;
            for &i in &order {
                expected[i] = before[i];
                kept += before[i];
                if kept >= NUCLEUS * total {
                    break;
                }
            }
            answerer.nucleus();
            assert_eq!(answerer.probabilities, expected, "round {round}");
        }
    }
}
