//! A Continuator-style variable-order Markov engine (F. Pachet, "The Continuator: Musical
//! Interaction with Style", 2003).
//!
//! Memory holds the learned phrases as step sequences. To continue a context, the engine finds
//! every place in memory where the longest possible suffix of the context's pitches (the
//! viewpoint, up to `max_order` steps) occurs with a step after it, and proposes those next steps
//! exactly as learned (pitch, rhythm and velocity). Only the longest matching order counts: a
//! candidate's probability is its share of the continuations found at that order, and shorter
//! orders are consulted only when no longer one matches (backoff). When even the last pitch alone
//! has no continuation, the context is transposed by the smallest interval (within an octave) that
//! makes it match, and the continuations are transposed back.
//!
//! Memory is bounded ([`MAX_MEMORY_PHRASES`], [`MAX_MEMORY_STEPS`]) and stored flat, so a clone
//! (the generator learns candidate phrases speculatively on a copy) is two small allocations.

use std::collections::VecDeque;

use crate::models::step_model::{Distribution, Step, StepModel};
use crate::models::steps::notes_to_steps;
use crate::music::Note;

/// Longest context, in steps, matched against memory unless [`Continuator::with_max_order`] says
/// otherwise.
pub const DEFAULT_MAX_ORDER: usize = 4;
/// Most phrases kept in memory; learning more drops the oldest.
pub const MAX_MEMORY_PHRASES: usize = 64;
/// Most steps kept in memory over all phrases; learning more drops the oldest phrases. A single
/// longer phrase keeps only its first `MAX_MEMORY_STEPS` steps.
pub const MAX_MEMORY_STEPS: usize = 4096;
/// Largest transposition, in semitones, tried when the context's last pitch has no continuation.
pub const MAX_TRANSPOSITION_SEMITONES: i16 = 12;

/// The Continuator engine: learned phrases plus the context observed since [`StepModel::begin`].
#[derive(Debug, Clone)]
pub struct Continuator {
    /// Longest context suffix, in steps, matched against memory (≥ 1).
    max_order: usize,
    /// Every remembered phrase's steps back to back, oldest phrase first.
    memory_steps: Vec<Step>,
    /// Step count of each remembered phrase in `memory_steps`, oldest first; never 0.
    phrase_lens: VecDeque<usize>,
    /// Pitches of the last `max_order` observed steps, oldest first.
    context_pitches: Vec<u8>,
}

impl Default for Continuator {
    fn default() -> Self {
        Self::with_max_order(DEFAULT_MAX_ORDER)
    }
}

impl Continuator {
    /// An engine with an empty memory matching contexts of up to [`DEFAULT_MAX_ORDER`] steps.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine with an empty memory matching contexts of up to `max_order` steps (at least 1).
    /// Higher orders copy memory more literally; order 1 is a plain pitch-transition model.
    pub fn with_max_order(max_order: usize) -> Self {
        Self {
            max_order: max_order.max(1),
            memory_steps: Vec::new(),
            phrase_lens: VecDeque::new(),
            context_pitches: Vec::new(),
        }
    }

    /// Whether nothing has been learned.
    pub fn is_empty(&self) -> bool {
        self.memory_steps.is_empty()
    }

    /// The remembered phrases, oldest first.
    fn phrases(&self) -> impl Iterator<Item = &[Step]> + '_ {
        let mut start = 0;
        self.phrase_lens.iter().map(move |&len| {
            let phrase = &self.memory_steps[start..start + len];
            start += len;
            phrase
        })
    }

    /// Pushes every phrase's first step into `out` with weight 1.
    fn collect_phrase_starts(&self, out: &mut Distribution) {
        out.extend(self.phrases().map(|phrase| (phrase[0], 1.0)));
    }

    /// Pushes the steps that follow every match in memory of the context's pitch suffix raised by
    /// `shift_semitones`, weighted so the result is the uniform blend of the orders 1..=L (L = the
    /// longest match): each order k contributes its continuation frequencies with weight 1/L.
    /// Long contexts keep the player's style (they agree at every order), short ones let the
    /// answer branch where the player's phrases do. Returns L (0 and nothing pushed if even the
    /// last pitch has no continuation).
    fn collect_continuations(&self, shift_semitones: i16, out: &mut Distribution) -> usize {
        // (continuation, match order) of every memory position that matches at all.
        let mut matches: Vec<(Step, usize)> = Vec::new();
        for phrase in self.phrases() {
            // The last step of a phrase has no continuation, so it never ends a match.
            for end in 0..phrase.len() - 1 {
                let order = self.match_order(&phrase[..=end], shift_semitones);
                if order > 0 {
                    matches.push((phrase[end + 1], order));
                }
            }
        }
        let longest = matches.iter().map(|&(_, order)| order).max().unwrap_or(0);
        // matches_at_least[k - 1] = how many positions match at order ≥ k.
        let matches_at_least: Vec<usize> = (1..=longest)
            .map(|k| matches.iter().filter(|&&(_, order)| order >= k).count())
            .collect();
        for (step, order) in matches {
            let weight: f64 = matches_at_least[..order]
                .iter()
                .map(|&n| 1.0 / (longest as f64 * n as f64))
                .sum();
            out.push((step, weight));
        }
        longest
    }

    /// How many of the context's last pitches, raised by `shift_semitones`, equal the last pitches
    /// of `memory_prefix` (capped by the context length, itself at most `max_order`).
    fn match_order(&self, memory_prefix: &[Step], shift_semitones: i16) -> usize {
        self.context_pitches
            .iter()
            .rev()
            .zip(memory_prefix.iter().rev())
            .take_while(|&(&context_pitch, step)| {
                i16::from(step.pitch) == i16::from(context_pitch) + shift_semitones
            })
            .count()
    }
}

/// Transpositions in the order they are tried: 0, +1, −1, +2, −2, … ±12 (the smallest first,
/// upward before downward).
fn transpositions_semitones() -> impl Iterator<Item = i16> {
    std::iter::once(0).chain((1..=MAX_TRANSPOSITION_SEMITONES).flat_map(|t| [t, -t]))
}

/// Turns weighted candidates found under `shift_semitones` into a distribution: lowers their
/// pitches back by the shift (clamped to 0–127), merges equal steps by adding their weights, sorts
/// by step and normalises.
fn finish_distribution(out: &mut Distribution, shift_semitones: i16) {
    for (step, _) in out.iter_mut() {
        step.pitch = (i16::from(step.pitch) - shift_semitones).clamp(0, 127) as u8;
    }
    out.sort_unstable_by_key(|&(step, _)| step);
    out.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    let total: f64 = out.iter().map(|&(_, count)| count).sum();
    for (_, probability) in out.iter_mut() {
        *probability /= total;
    }
}

impl StepModel for Continuator {
    fn name(&self) -> &'static str {
        "continuator"
    }

    fn begin(&mut self) {
        self.context_pitches.clear();
    }

    fn observe(&mut self, step: Step) {
        if self.context_pitches.len() == self.max_order {
            self.context_pitches.remove(0);
        }
        self.context_pitches.push(step.pitch);
    }

    /// The blend of continuations of every matching context order, transposed if need be; the phrase-start
    /// distribution when the context is empty or nothing within an octave continues it.
    fn next_distribution(&mut self, out: &mut Distribution) {
        out.clear();
        if !self.context_pitches.is_empty() {
            for shift_semitones in transpositions_semitones() {
                if self.collect_continuations(shift_semitones, out) > 0 {
                    finish_distribution(out, shift_semitones);
                    return;
                }
            }
        }
        // NOTE: restarting as a phrase would keeps the answer going; only an empty memory
        // leaves `out` empty.
        self.collect_phrase_starts(out);
        finish_distribution(out, 0);
    }

    fn learn(&mut self, phrase: &[Note]) {
        let mut steps = Vec::new();
        notes_to_steps(phrase, &mut steps);
        if steps.is_empty() {
            return;
        }
        steps.truncate(MAX_MEMORY_STEPS);
        self.memory_steps.extend_from_slice(&steps);
        self.phrase_lens.push_back(steps.len());
        while self.phrase_lens.len() > MAX_MEMORY_PHRASES
            || self.memory_steps.len() > MAX_MEMORY_STEPS
        {
            let Some(oldest_len) = self.phrase_lens.pop_front() else {
                break;
            };
            self.memory_steps.drain(..oldest_len);
        }
    }

    fn clear_memory(&mut self) {
        self.memory_steps.clear();
        self.phrase_lens.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const C: u8 = 60;
    const C_SHARP: u8 = 61;
    const D: u8 = 62;
    const D_SHARP: u8 = 63;
    const E: u8 = 64;
    const F: u8 = 65;
    const G: u8 = 67;
    const A: u8 = 69;

    /// A phrase of quarter notes at velocity 100.
    fn melody(pitches: &[u8]) -> Vec<Note> {
        crate::test_kit::test_melody(pitches, 1.0)
    }

    fn quarter(pitch: u8) -> Step {
        Step {
            pitch,
            ioi_ticks: 24,
            duration_ticks: 24,
            velocity: 100,
        }
    }

    fn engine_with(phrases: &[&[u8]]) -> Continuator {
        let mut engine = Continuator::new();
        for phrase in phrases {
            engine.learn(&melody(phrase));
        }
        engine
    }

    fn distribution_after(engine: &mut Continuator, context: &[u8]) -> Distribution {
        engine.begin();
        for &pitch in context {
            engine.observe(quarter(pitch));
        }
        let mut out = Distribution::new();
        engine.next_distribution(&mut out);
        out
    }

    fn pitches_and_probabilities(dist: &Distribution) -> Vec<(u8, f64)> {
        dist.iter().map(|&(step, p)| (step.pitch, p)).collect()
    }

    #[test]
    fn a_learned_context_predicts_its_continuation_with_certainty() {
        let mut engine = engine_with(&[&[C, D, E, F, G]]);
        let dist = distribution_after(&mut engine, &[C, D]);
        assert_eq!(dist, [(quarter(E), 1.0)]);
    }

    #[test]
    fn orders_blend_so_longer_contexts_weigh_more() {
        // Order 1 ("D") gives E and F half each; order 2 ("C D") gives only E: the blend of the
        // two orders is E 3/4, F 1/4.
        let mut engine = engine_with(&[&[C, D, E], &[G, D, F]]);
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[C, D])),
            [(E, 0.75), (F, 0.25)]
        );
    }

    #[test]
    fn an_unseen_long_context_backs_off_to_shorter_orders() {
        let mut engine = engine_with(&[&[C, D, E], &[G, D, F]]);
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[A, D])),
            [(E, 0.5), (F, 0.5)]
        );
    }

    #[test]
    fn a_context_seen_only_at_a_phrase_end_backs_off() {
        // "C D" ends the first phrase, so only the order-1 match "D" → F continues.
        let mut engine = engine_with(&[&[C, D], &[E, D, F]]);
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[C, D])),
            [(F, 1.0)]
        );
    }

    #[test]
    fn max_order_limits_the_context() {
        let mut engine = Continuator::with_max_order(1);
        engine.learn(&melody(&[C, D, E]));
        engine.learn(&melody(&[G, D, F]));
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[C, D])),
            [(E, 0.5), (F, 0.5)]
        );
    }

    #[test]
    fn probabilities_count_repeated_continuations() {
        let mut engine = engine_with(&[&[C, D], &[C, D], &[C, E]]);
        let dist = distribution_after(&mut engine, &[C]);
        assert_eq!(dist.len(), 2);
        assert_eq!(dist[0].0.pitch, D);
        assert!((dist[0].1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((dist[1].1 - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn continuations_keep_their_learned_rhythm_and_velocity() {
        let phrase = [
            Note {
                pitch: C,
                velocity: 80,
                onset_beats: 0.0,
                duration_beats: 0.5,
            },
            Note {
                pitch: D,
                velocity: 110,
                onset_beats: 1.5,
                duration_beats: 0.25,
            },
        ];
        let mut engine = Continuator::new();
        engine.learn(&phrase);
        let dist = distribution_after(&mut engine, &[C]);
        let expected = Step {
            pitch: D,
            ioi_ticks: 36,
            duration_ticks: 6,
            velocity: 110,
        };
        assert_eq!(dist, [(expected, 1.0)]);
    }

    #[test]
    fn an_unseen_pitch_transposes_up_to_the_nearest_match() {
        // C# + 1 = D is in memory; its continuation F comes back down a semitone to E.
        let mut engine = engine_with(&[&[D, F]]);
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[C_SHARP])),
            [(E, 1.0)]
        );
    }

    #[test]
    fn an_unseen_pitch_transposes_down_to_the_nearest_match() {
        // C# − 1 = C is in memory; its continuation E comes back up a semitone to F.
        let mut engine = engine_with(&[&[C, E]]);
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[C_SHARP])),
            [(F, 1.0)]
        );
    }

    #[test]
    fn equal_transpositions_prefer_upward() {
        // Both C (−1) and D (+1) match C#; +1 wins, so D → G gives F#.
        let mut engine = engine_with(&[&[C, E], &[D, G]]);
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[C_SHARP])),
            [(G - 1, 1.0)]
        );
    }

    #[test]
    fn transposition_matches_the_longest_transposed_context() {
        // C# D# − 1 = C D matches at order 2 (→ E, back up to F); order 1 ("D") adds G (→ G#):
        // blended, F 3/4 and G# 1/4.
        let mut engine = engine_with(&[&[C, D, E], &[A - 12, D, G]]);
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[C_SHARP, D_SHARP])),
            [(F, 0.75), (G + 1, 0.25)]
        );
    }

    #[test]
    fn transposed_pitches_are_clamped_to_midi_range() {
        // 127 only ends a phrase; 127 − 1 = 126 continues to 127, which would come back as 128.
        let mut engine = engine_with(&[&[126, 127]]);
        assert_eq!(
            pitches_and_probabilities(&distribution_after(&mut engine, &[127])),
            [(127, 1.0)]
        );
    }

    #[test]
    fn an_empty_context_gives_the_phrase_starts() {
        let mut engine = engine_with(&[&[C, D], &[E, F], &[C, G]]);
        let dist = distribution_after(&mut engine, &[]);
        assert_eq!(dist.len(), 2);
        assert_eq!(dist[0].0.pitch, C);
        assert_eq!(dist[0].0.ioi_ticks, 0);
        assert!((dist[0].1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(dist[1].0.pitch, E);
    }

    #[test]
    fn a_context_far_from_memory_restarts_from_phrase_starts() {
        let mut engine = engine_with(&[&[C, D]]);
        let dist = distribution_after(&mut engine, &[C + 30]);
        assert_eq!(pitches_and_probabilities(&dist), [(C, 1.0)]);
    }

    #[test]
    fn begin_forgets_the_context_but_not_the_memory() {
        let mut engine = engine_with(&[&[C, D, E]]);
        engine.observe(quarter(D));
        engine.begin();
        let mut out = Distribution::new();
        engine.next_distribution(&mut out);
        assert_eq!(pitches_and_probabilities(&out), [(C, 1.0)]);
    }

    #[test]
    fn an_empty_memory_gives_an_empty_distribution() {
        let mut engine = Continuator::new();
        assert!(distribution_after(&mut engine, &[]).is_empty());
        assert!(distribution_after(&mut engine, &[C, D]).is_empty());
        let mut engine = engine_with(&[&[C, D]]);
        engine.clear_memory();
        let mut out = vec![(quarter(C), 1.0)];
        engine.next_distribution(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn learning_an_empty_phrase_changes_nothing() {
        let mut engine = Continuator::new();
        engine.learn(&[]);
        assert!(engine.phrase_lens.is_empty());
        assert!(distribution_after(&mut engine, &[]).is_empty());
    }

    #[test]
    fn chords_are_learned_as_zero_ioi_steps() {
        let chord_then_melody = [
            Note {
                pitch: G,
                velocity: 100,
                onset_beats: 0.0,
                duration_beats: 1.0,
            },
            Note {
                pitch: C,
                velocity: 100,
                onset_beats: 0.0,
                duration_beats: 1.0,
            },
            Note {
                pitch: E,
                velocity: 100,
                onset_beats: 0.0,
                duration_beats: 1.0,
            },
            Note {
                pitch: D,
                velocity: 100,
                onset_beats: 1.0,
                duration_beats: 1.0,
            },
        ];
        let mut engine = Continuator::new();
        engine.learn(&chord_then_melody);
        let chord_tone = |pitch| Step {
            ioi_ticks: 0,
            ..quarter(pitch)
        };
        assert_eq!(
            distribution_after(&mut engine, &[C]),
            [(chord_tone(E), 1.0)]
        );
        assert_eq!(
            distribution_after(&mut engine, &[C, E]),
            [(chord_tone(G), 1.0)]
        );
        assert_eq!(
            distribution_after(&mut engine, &[C, E, G]),
            [(quarter(D), 1.0)]
        );
    }

    #[test]
    fn memory_drops_the_oldest_phrases_past_its_bounds() {
        let mut engine = Continuator::new();
        for i in 0..MAX_MEMORY_PHRASES + 6 {
            engine.learn(&melody(&[i as u8, 127]));
        }
        assert_eq!(engine.phrase_lens.len(), MAX_MEMORY_PHRASES);
        assert_eq!(engine.memory_steps.len(), 2 * MAX_MEMORY_PHRASES);
        assert_eq!(engine.memory_steps[0].pitch, 6);

        let long_phrase: Vec<u8> = (0..1000).map(|i| (i % 100) as u8).collect();
        for _ in 0..5 {
            engine.learn(&melody(&long_phrase));
        }
        assert!(engine.memory_steps.len() <= MAX_MEMORY_STEPS);
        assert_eq!(
            engine.phrase_lens.iter().sum::<usize>(),
            engine.memory_steps.len()
        );
        assert_eq!(engine.phrase_lens, [1000, 1000, 1000, 1000]);

        engine.learn(&melody(&[C; MAX_MEMORY_STEPS + 10]));
        assert_eq!(engine.phrase_lens, [MAX_MEMORY_STEPS]);
    }

    /// An engine that learned seeded random phrases over a small pitch set, so contexts branch.
    fn branching_engine(seed: u64) -> Continuator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scale = [C, D, E, F, G, A];
        let mut engine = Continuator::new();
        for _ in 0..20 {
            let pitches: Vec<u8> = (0..12).map(|_| scale[rng.random_range(0..6)]).collect();
            engine.learn(&melody(&pitches));
        }
        engine
    }

    #[test]
    fn distributions_sum_to_one_and_are_sorted_by_step() {
        let mut engine = branching_engine(7);
        let contexts: [&[u8]; 6] = [&[], &[C], &[D, E], &[C_SHARP], &[A, G, F, E, D, C], &[0]];
        for context in contexts {
            let dist = distribution_after(&mut engine, context);
            assert!(!dist.is_empty());
            let total: f64 = dist.iter().map(|&(_, p)| p).sum();
            assert!((total - 1.0).abs() < 1e-12, "{context:?} sums to {total}");
            assert!(dist.windows(2).all(|pair| pair[0].0 < pair[1].0));
        }
    }

    #[test]
    fn identical_builds_give_identical_distributions() {
        let mut first = branching_engine(3);
        let mut second = branching_engine(3);
        let mut cloned = first.clone();
        for context in [&[][..], &[C, D], &[E], &[D_SHARP, F]] {
            let expected = distribution_after(&mut first, context);
            assert_eq!(distribution_after(&mut second, context), expected);
            assert_eq!(distribution_after(&mut cloned, context), expected);
        }
    }
}
