//! Answering a prompt: feed it to an model, then sample steps one by one into notes.
//!
//! The answer starts at beat 0 with the first sampled step (its IOI, the gap after the prompt, is
//! ignored: the caller decides when the answer plays) and stops before the first onset that would
//! reach the requested length. Every sampled step is observed, so the model continues its own
//! answer, not only the prompt. A melody (a prompt of one line) is answered with one line.

use rand::Rng;

use crate::generator::event_answer::is_one_line;
use crate::generator::sampling::sample;
use crate::models::step_model::{Distribution, StepModel};
use crate::models::steps::notes_to_steps;
use crate::music::key::PitchSet;
use crate::music::ticks_to_beats;
use crate::music::Note;
use crate::protocol::MAX_ANSWER_POLYPHONY;

/// Most steps sampled for one answer, so an model that never advances time still terminates.
/// This also bounds the answer's note count.
pub const MAX_ANSWER_STEPS: usize = 256;

/// Fills `out` (cleared first) with `model`'s answer to `prompt`, `length_beats` long, sampled at
/// `temperature` from `rng`, its notes in `scale` (`None`: any pitch; the other steps are taken
/// out of every distribution before sampling).
///
/// Onsets are relative to the answer's start, the first at 0, and never decrease; every note
/// starts before `length_beats` and is clipped to end by it. `model` is restarted with
/// [`StepModel::begin`]; its memory is left as it was. A non-positive or NaN length gives no notes.
#[allow(clippy::too_many_arguments)]
pub fn continue_phrase(
    model: &mut dyn StepModel,
    prompt: &[Note],
    length_beats: f64,
    temperature: f32,
    scale: Option<PitchSet>,
    rng: &mut impl Rng,
    out: &mut Vec<Note>,
) {
    out.clear();
    if length_beats.is_nan() || length_beats <= 0.0 {
        return;
    }
    model.begin();
    let mut prompt_steps = Vec::new();
    notes_to_steps(prompt, &mut prompt_steps);
    for &step in &prompt_steps {
        model.observe(step);
    }

    let mut distribution = Distribution::new();
    let mut onset_ticks: u64 = 0;
    for step_index in 0..MAX_ANSWER_STEPS {
        model.next_distribution(&mut distribution);
        if let Some(scale) = scale {
            distribution.retain(|(step, _)| scale.contains(step.pitch));
        }
        let Some(step) = sample(&distribution, temperature, rng) else {
            break;
        };
        if step_index > 0 {
            onset_ticks += u64::from(step.ioi_ticks);
        }
        let onset_beats = ticks_to_beats(onset_ticks);
        if onset_beats >= length_beats {
            break;
        }
        model.observe(step);
        let sounding = out.iter().filter(|n| n.end_beats() > onset_beats).count();
        if sounding >= MAX_ANSWER_POLYPHONY {
            continue;
        }
        out.push(Note {
            pitch: step.pitch,
            velocity: step.velocity,
            onset_beats,
            duration_beats: clip_duration_beats(
                ticks_to_beats(u64::from(step.duration_ticks.max(1))),
                onset_beats,
                length_beats,
            ),
        });
    }
    if !prompt.is_empty() && is_one_line(prompt) {
        to_one_line(out);
    }
}

/// `notes` (in onset order) made one line, as a melody is answered: a note struck with the one
/// before it is dropped, and each note ends by the next one's onset.
fn to_one_line(notes: &mut Vec<Note>) {
    notes.dedup_by(|later, earlier| later.onset_beats <= earlier.onset_beats);
    for i in 1..notes.len() {
        let next_onset = notes[i].onset_beats;
        let note = &mut notes[i - 1];
        note.duration_beats = note.duration_beats.min(next_onset - note.onset_beats);
    }
}

/// `duration_beats` shortened so a note at `onset_beats` (< `length_beats`) ends by
/// `length_beats`.
fn clip_duration_beats(duration_beats: f64, onset_beats: f64, length_beats: f64) -> f64 {
    let mut clipped_beats = duration_beats.min(length_beats - onset_beats);
    // NOTE: `onset + (length − onset)` can round one ulp past `length`; step down until it
    // doesn't. This stays positive: a small enough duration adds nothing to `onset < length`.
    while onset_beats + clipped_beats > length_beats {
        clipped_beats = clipped_beats.next_down();
    }
    clipped_beats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::continuator::Continuator;
    use crate::models::step_model::Step;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A test model that always proposes the same step and ignores its context.
    struct RepeatModel {
        step: Step,
    }

    impl StepModel for RepeatModel {
        fn name(&self) -> &'static str {
            "repeat"
        }
        fn begin(&mut self) {}
        fn observe(&mut self, _step: Step) {}
        fn next_distribution(&mut self, out: &mut Distribution) {
            out.clear();
            out.push((self.step, 1.0));
        }
        fn learn(&mut self, _phrase: &[Note]) {}
        fn clear_memory(&mut self) {}
    }

    fn repeat_model(ioi_ticks: u16, duration_ticks: u16) -> RepeatModel {
        RepeatModel {
            step: Step {
                pitch: 60,
                ioi_ticks,
                duration_ticks,
                velocity: 100,
            },
        }
    }

    /// A phrase of eighth notes at velocity 100.
    fn melody(pitches: &[u8]) -> Vec<Note> {
        crate::test_kit::test_melody(pitches, 0.5)
    }

    /// A Continuator that learned seeded random phrases over a scale, so answers can branch.
    fn branching_continuator() -> (Continuator, Vec<u8>) {
        use rand::Rng as _;
        let scale = vec![60, 62, 64, 65, 67, 69, 71, 72];
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut model = Continuator::new();
        for _ in 0..16 {
            let pitches: Vec<u8> = (0..16)
                .map(|_| scale[rng.random_range(0..scale.len())])
                .collect();
            model.learn(&melody(&pitches));
        }
        (model, scale)
    }

    fn answer(
        model: &mut dyn StepModel,
        prompt: &[Note],
        length_beats: f64,
        temperature: f32,
        seed: u64,
    ) -> Vec<Note> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::new();
        continue_phrase(
            model,
            prompt,
            length_beats,
            temperature,
            None,
            &mut rng,
            &mut out,
        );
        out
    }

    fn assert_well_formed(notes: &[Note], length_beats: f64) {
        assert!(!notes.is_empty());
        assert_eq!(notes[0].onset_beats, 0.0);
        assert!(notes
            .windows(2)
            .all(|pair| pair[0].onset_beats <= pair[1].onset_beats));
        for note in notes {
            assert!(note.onset_beats < length_beats, "{note:?}");
            assert!(note.duration_beats > 0.0, "{note:?}");
            assert!(
                note.end_beats() <= length_beats,
                "{note:?} past {length_beats}"
            );
        }
    }

    #[test]
    fn answers_stay_within_their_length() {
        let (mut model, _) = branching_continuator();
        let prompt = melody(&[60, 62, 64]);
        for (seed, length_beats) in [(1, 4.0), (2, 7.3), (3, 1.0 / 3.0), (4, 16.0)] {
            let notes = answer(&mut model, &prompt, length_beats, 1.0, seed);
            assert_well_formed(&notes, length_beats);
        }
    }

    #[test]
    fn off_grid_lengths_never_let_a_note_end_late() {
        let mut model = repeat_model(5, 7);
        for i in 1..400 {
            let length_beats = f64::from(i) * 0.0731;
            let notes = answer(&mut model, &[], length_beats, 0.0, 0);
            assert_well_formed(&notes, length_beats);
        }
    }

    #[test]
    fn durations_are_clipped_at_the_end() {
        // A note every beat, each eight beats long, in a 2.5-beat answer.
        let mut model = repeat_model(24, 192);
        let notes = answer(&mut model, &[], 2.5, 0.0, 0);
        let timing: Vec<(f64, f64)> = notes
            .iter()
            .map(|n| (n.onset_beats, n.duration_beats))
            .collect();
        assert_eq!(timing, [(0.0, 2.5), (1.0, 1.5), (2.0, 0.5)]);
    }

    /// A melody is answered with one line: the model's notes overlapping the next one (eight
    /// beats long, a beat apart) end at its onset; after a chord they may ring on.
    #[test]
    fn a_melody_is_answered_with_one_line() {
        let mut model = repeat_model(24, 192);
        let notes = answer(&mut model, &melody(&[60, 62]), 2.5, 0.0, 0);
        let timing: Vec<(f64, f64)> = notes
            .iter()
            .map(|n| (n.onset_beats, n.duration_beats))
            .collect();
        assert_eq!(timing, [(0.0, 1.0), (1.0, 1.0), (2.0, 0.5)]);
        let mut chord = melody(&[60, 64]);
        chord[1].onset_beats = 0.0;
        let notes = answer(&mut model, &chord, 2.5, 0.0, 0);
        assert_eq!(notes[0].duration_beats, 2.5);
    }

    #[test]
    fn the_answer_continues_the_prompt_from_beat_zero() {
        let mut model = Continuator::new();
        model.learn(&melody(&[60, 62, 64, 65, 67]));
        let notes = answer(&mut model, &melody(&[60, 62]), 1.5, 0.0, 0);
        let expected: Vec<Note> = melody(&[64, 65, 67]);
        assert_eq!(notes, expected);
    }

    #[test]
    fn answers_use_the_pitches_of_memory() {
        let (mut model, scale) = branching_continuator();
        for seed in 0..8 {
            let notes = answer(&mut model, &melody(&[64, 65]), 16.0, 1.2, seed);
            assert!(notes.iter().all(|n| scale.contains(&n.pitch)), "{notes:?}");
        }
    }

    #[test]
    fn a_transposed_prompt_gets_an_answer_within_an_octave_of_memory() {
        let (mut model, scale) = branching_continuator();
        let notes = answer(&mut model, &melody(&[61, 66]), 16.0, 1.0, 5);
        assert!(notes.len() > 4);
        for note in &notes {
            let near_memory = scale
                .iter()
                .any(|&pitch| (i16::from(note.pitch) - i16::from(pitch)).abs() <= 12);
            assert!(near_memory, "{note:?}");
        }
    }

    #[test]
    fn the_same_seed_replays_and_different_seeds_differ() {
        let (model, _) = branching_continuator();
        let prompt = melody(&[60, 64]);
        let first = answer(&mut model.clone(), &prompt, 32.0, 1.0, 21);
        let again = answer(&mut model.clone(), &prompt, 32.0, 1.0, 21);
        let other = answer(&mut model.clone(), &prompt, 32.0, 1.0, 22);
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn an_engine_that_never_advances_still_terminates() {
        let mut model = repeat_model(0, 24);
        let notes = answer(&mut model, &[], 4.0, 1.0, 0);
        assert_eq!(notes.len(), MAX_ANSWER_POLYPHONY);
        assert!(notes.iter().all(|n| n.onset_beats == 0.0));
    }

    #[test]
    fn the_note_count_is_capped() {
        let mut model = repeat_model(1, 1);
        let notes = answer(&mut model, &[], 1000.0, 0.0, 0);
        assert_eq!(notes.len(), MAX_ANSWER_STEPS);
    }

    #[test]
    fn nothing_to_say_gives_an_empty_answer() {
        let mut model = Continuator::new();
        assert!(answer(&mut model, &melody(&[60]), 4.0, 1.0, 0).is_empty());
        let mut model = repeat_model(24, 24);
        for length_beats in [0.0, -1.0, f64::NAN] {
            assert!(answer(&mut model, &[], length_beats, 1.0, 0).is_empty());
        }
    }
}
