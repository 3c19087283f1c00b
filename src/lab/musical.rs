//! Musical checks: does a generated answer stay in the prompt's key, on the prompt's rhythmic
//! grid, in a sensible range and at a similar note density?
//!
//! Bits per note ([`crate::lab::eval`]) says how well a model predicts real tunes; these checks say
//! whether what it *generates* after a held-out prompt sounds like a continuation of it. Each
//! check is a plain statistic a musician would name, compared with the prompt:
//!
//! - **in key**: the fraction of the answer's notes whose pitch belongs to the prompt's key, found
//!   the key the notes are likeliest in under Temperley's profiles ([`find_key`]);
//! - **on grid**: the fraction of the answer's onsets that fall on the prompt's coarsest rhythmic
//!   grid ([`prompt_grid_ticks`]);
//! - **range**: the answer's lowest and highest pitch, beside the prompt's range;
//! - **density**: the answer's notes per beat over the prompt's notes per beat.
//!
//! Time: the prompt's onsets are in beats from the tune's start and the answer's from the answer's
//! own start; both starts lie on a bar line, so on a beat, and a grid of at most one beat
//! (24 ticks) has the same phase in both.

use serde::ser::{Serialize, SerializeStruct, Serializer};

pub use crate::music::key::{find_key, Key};
use crate::music::{beats_to_ticks, Note, TICKS_PER_BEAT};

/// The coarsest grid [`prompt_grid_ticks`] reports: one beat.
const COARSEST_GRID_TICKS: u32 = TICKS_PER_BEAT;

/// The prompt's rhythmic grid in ticks (24 per beat): the coarsest of 24, 12, 8, 6, 4, 3, 2, 1
/// (beat, 8th, 8th-triplet … 1 tick) of which every prompt onset, rounded to the nearest tick, is
/// a multiple.
///
/// Straight 8ths give 12, 16ths 6, quarter-note triplets among quarters 8, 8th triplets among
/// 8ths 4. Since the candidates are exactly the divisors of 24, this is the greatest common
/// divisor of 24 and all onsets in ticks. An empty prompt gives 24 (every onset of no notes is on
/// the beat).
pub fn prompt_grid_ticks(prompt: &[Note]) -> u32 {
    let mut grid = u64::from(COARSEST_GRID_TICKS);
    for note in prompt {
        grid = gcd(grid, beats_to_ticks(note.onset_beats));
        if grid == 1 {
            break;
        }
    }
    // `grid` divides 24, so it fits.
    grid as u32
}

/// Greatest common divisor (Euclid); `gcd(a, 0) = a`.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The musical checks of one answer against its prompt.
///
/// An empty answer has `answer_notes == 0`, `in_key == on_grid == 0.0` (an answer that plays
/// nothing has not stayed in key; the note-weighted means of [`ChecksSummary`] give it no weight
/// anyway and count it separately), `lowest == highest == range_semitones == 0` and
/// `density_ratio == 0.0`. No field is ever NaN.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MusicalChecks {
    /// Fraction of the answer's notes, 0–1, whose pitch is in the prompt's key ([`find_key`]).
    pub in_key: f64,
    /// Fraction of the answer's onsets, 0–1, rounded to ticks, that are multiples of the prompt's
    /// grid ([`prompt_grid_ticks`]).
    pub on_grid: f64,
    /// The answer's lowest MIDI key (0 when empty).
    pub lowest: u8,
    /// The answer's highest MIDI key (0 when empty).
    pub highest: u8,
    /// `highest − lowest`, in semitones.
    pub range_semitones: u8,
    /// The prompt's highest minus lowest MIDI key, in semitones (0 when empty), for comparison.
    pub prompt_range_semitones: u8,
    /// The answer's notes per beat over the prompt's notes per beat (1 = as dense as the prompt).
    /// 0 when the answer is empty or its length is not positive, and when the prompt's density is
    /// 0 or undefined (no notes, or a length that is not positive).
    pub density_ratio: f64,
    /// Number of notes in the answer.
    pub answer_notes: usize,
}

/// Checks `answer` against `prompt`.
///
/// `prompt` onsets are in beats from the tune's start, `answer` onsets in beats from the answer's
/// start (a bar line right after the prompt). `prompt_beats` and `answer_beats` are the lengths of
/// the two sides in beats (the prompt's bars; the span the model was asked to fill), which set
/// the note densities: a side's density is its note count over its length.
pub fn check(
    prompt: &[Note],
    prompt_beats: f64,
    answer: &[Note],
    answer_beats: f64,
) -> MusicalChecks {
    let (prompt_lowest, prompt_highest) = pitch_bounds(prompt);
    let mut checks = MusicalChecks {
        in_key: 0.0,
        on_grid: 0.0,
        lowest: 0,
        highest: 0,
        range_semitones: 0,
        prompt_range_semitones: prompt_highest - prompt_lowest,
        density_ratio: 0.0,
        answer_notes: answer.len(),
    };
    if answer.is_empty() {
        return checks;
    }

    let key = find_key(prompt);
    let grid = u64::from(prompt_grid_ticks(prompt));
    let in_key = answer.iter().filter(|n| key.contains(n.pitch)).count();
    let on_grid = answer
        .iter()
        .filter(|n| beats_to_ticks(n.onset_beats).is_multiple_of(grid))
        .count();
    let notes = answer.len() as f64;
    checks.in_key = in_key as f64 / notes;
    checks.on_grid = on_grid as f64 / notes;

    (checks.lowest, checks.highest) = pitch_bounds(answer);
    checks.range_semitones = checks.highest - checks.lowest;

    let prompt_density = density(prompt.len(), prompt_beats);
    let answer_density = density(answer.len(), answer_beats);
    if prompt_density > 0.0 {
        checks.density_ratio = answer_density / prompt_density;
    }
    checks
}

/// Lowest and highest pitch of `notes`; (0, 0) when empty.
fn pitch_bounds(notes: &[Note]) -> (u8, u8) {
    let lowest = notes.iter().map(|n| n.pitch).min().unwrap_or(0);
    let highest = notes.iter().map(|n| n.pitch).max().unwrap_or(0);
    (lowest, highest)
}

/// Notes per beat; 0 when the length is not a positive finite number of beats.
fn density(notes: usize, beats: f64) -> f64 {
    if beats.is_finite() && beats > 0.0 {
        notes as f64 / beats
    } else {
        0.0
    }
}

/// [`MusicalChecks`] of many answers, aggregated.
///
/// In key and on grid are means over all answer notes (each answer weighted by its note count, so
/// a 2-note answer cannot outweigh a 40-note one); range is the mean over non-empty answers; the
/// density ratio is the mean over all answers (an empty answer counts as 0, the density it
/// played). Serializes as the counts and the means (not the running sums).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChecksSummary {
    /// Answers added.
    answers: usize,
    /// Answers with no notes.
    empty_answers: usize,
    /// Notes over all answers.
    total_notes: usize,
    /// Σ in_key × answer_notes: notes in key.
    in_key_notes: f64,
    /// Σ on_grid × answer_notes: notes on the grid.
    on_grid_notes: f64,
    /// Σ range_semitones over non-empty answers.
    range_semitones_sum: f64,
    /// Σ prompt_range_semitones over the prompts of non-empty answers.
    prompt_range_semitones_sum: f64,
    /// Σ density_ratio over all answers.
    density_ratio_sum: f64,
}

impl ChecksSummary {
    /// An empty summary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one answer's checks.
    pub fn add(&mut self, c: &MusicalChecks) {
        self.answers += 1;
        self.density_ratio_sum += c.density_ratio;
        if c.answer_notes == 0 {
            self.empty_answers += 1;
            return;
        }
        let notes = c.answer_notes as f64;
        self.total_notes += c.answer_notes;
        self.in_key_notes += c.in_key * notes;
        self.on_grid_notes += c.on_grid * notes;
        self.range_semitones_sum += f64::from(c.range_semitones);
        self.prompt_range_semitones_sum += f64::from(c.prompt_range_semitones);
    }

    /// Answers added.
    pub fn answers(&self) -> usize {
        self.answers
    }

    /// Answers with no notes.
    pub fn empty_answers(&self) -> usize {
        self.empty_answers
    }

    /// Notes over all answers.
    pub fn total_notes(&self) -> usize {
        self.total_notes
    }

    /// Fraction of all answer notes in their prompt's key, 0–1 (0 with no notes).
    pub fn in_key(&self) -> f64 {
        ratio(self.in_key_notes, self.total_notes as f64)
    }

    /// Fraction of all answer notes on their prompt's grid, 0–1 (0 with no notes).
    pub fn on_grid(&self) -> f64 {
        ratio(self.on_grid_notes, self.total_notes as f64)
    }

    /// Mean range of the non-empty answers, in semitones (0 with none).
    pub fn mean_range_semitones(&self) -> f64 {
        ratio(self.range_semitones_sum, self.non_empty_answers() as f64)
    }

    /// Mean range of the prompts of the non-empty answers, in semitones (0 with none), to set
    /// beside [`mean_range_semitones`](Self::mean_range_semitones).
    pub fn mean_prompt_range_semitones(&self) -> f64 {
        ratio(
            self.prompt_range_semitones_sum,
            self.non_empty_answers() as f64,
        )
    }

    /// Mean density ratio over all answers (0 with none).
    pub fn mean_density_ratio(&self) -> f64 {
        ratio(self.density_ratio_sum, self.answers as f64)
    }

    fn non_empty_answers(&self) -> usize {
        self.answers - self.empty_answers
    }
}

/// `sum / count`, or 0 when `count` is 0.
fn ratio(sum: f64, count: f64) -> f64 {
    if count > 0.0 {
        sum / count
    } else {
        0.0
    }
}

impl Serialize for ChecksSummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ChecksSummary", 8)?;
        s.serialize_field("answers", &self.answers)?;
        s.serialize_field("empty_answers", &self.empty_answers)?;
        s.serialize_field("total_notes", &self.total_notes)?;
        s.serialize_field("in_key", &self.in_key())?;
        s.serialize_field("on_grid", &self.on_grid())?;
        s.serialize_field("mean_range_semitones", &self.mean_range_semitones())?;
        s.serialize_field(
            "mean_prompt_range_semitones",
            &self.mean_prompt_range_semitones(),
        )?;
        s.serialize_field("mean_density_ratio", &self.mean_density_ratio())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::test_melody;

    const C: u8 = 0;
    const E: u8 = 4;
    const G: u8 = 7;
    const A: u8 = 9;

    fn major(tonic: u8) -> Key {
        Key {
            tonic,
            minor: false,
        }
    }

    fn minor(tonic: u8) -> Key {
        Key { tonic, minor: true }
    }

    /// A monophonic melody from (MIDI key, beats) pairs, each note starting where the last ends.
    fn melody(notes: &[(u8, f64)]) -> Vec<Note> {
        crate::test_kit::melody(0.0, notes)
    }

    /// Notes at the given onsets (beats), a 16th long.
    fn at_onsets(onsets_beats: &[f64]) -> Vec<Note> {
        onsets_beats
            .iter()
            .map(|&onset_beats| Note {
                pitch: 60,
                velocity: 100,
                onset_beats,
                duration_beats: 0.25,
            })
            .collect()
    }

    fn transposed(notes: &[Note], semitones: u8) -> Vec<Note> {
        notes
            .iter()
            .map(|n| Note {
                pitch: n.pitch + semitones,
                ..*n
            })
            .collect()
    }

    /// "Ode to Joy", first two phrases, in C major (ends on the tonic).
    #[rustfmt::skip]
    fn ode_to_joy() -> Vec<Note> {
        let q = 1.0;
        melody(&[
            (64, q), (64, q), (65, q), (67, q), (67, q), (65, q), (64, q), (62, q),
            (60, q), (60, q), (62, q), (64, q), (64, 1.5), (62, 0.5), (62, 2.0),
            (64, q), (64, q), (65, q), (67, q), (67, q), (65, q), (64, q), (62, q),
            (60, q), (60, q), (62, q), (64, q), (62, 1.5), (60, 0.5), (60, 2.0),
        ])
    }

    /// "Greensleeves", opening, in A minor with the raised 7th (G#), in 3/4.
    #[rustfmt::skip]
    fn greensleeves() -> Vec<Note> {
        melody(&[
            (57, 1.0), (60, 2.0), (62, 1.0), (64, 1.5), (65, 0.5), (64, 1.0),
            (62, 2.0), (59, 1.0), (55, 1.5), (57, 0.5), (59, 1.0),
            (60, 2.0), (57, 1.0), (57, 1.5), (56, 0.5), (57, 1.0),
            (59, 2.0), (56, 1.0), (52, 2.0), (57, 1.0),
        ])
    }

    #[test]
    fn c_major_scale_is_c_major() {
        let scale = test_melody(
            &[60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60],
            0.5,
        );
        assert_eq!(find_key(&scale), major(C));
    }

    #[test]
    #[rustfmt::skip]
    fn a_minor_melody_with_leading_tone_is_a_minor() {
        // A natural minor up, G# as leading tone back to A, then down.
        let tune = melody(&[
            (57, 1.0), (59, 0.5), (60, 0.5), (62, 0.5), (64, 1.0), (65, 0.5), (68, 0.5),
            (69, 2.0), (67, 0.5), (65, 0.5), (64, 1.0), (62, 0.5), (60, 0.5), (59, 0.5),
            (56, 0.5), (57, 2.0),
        ]);
        assert_eq!(find_key(&tune), minor(A));
        assert_eq!(find_key(&greensleeves()), minor(A));
    }

    #[test]
    fn transposing_moves_the_key_by_the_same_interval() {
        let ode = ode_to_joy();
        let sleeves = greensleeves();
        assert_eq!(find_key(&ode), major(C));
        assert_eq!(find_key(&sleeves), minor(A));
        for semitones in 0..12u8 {
            assert_eq!(
                find_key(&transposed(&ode, semitones)),
                major((C + semitones) % 12),
                "Ode to Joy up {semitones}"
            );
            assert_eq!(
                find_key(&transposed(&sleeves, semitones)),
                minor((A + semitones) % 12),
                "Greensleeves up {semitones}"
            );
        }
    }

    #[test]
    fn durations_weight_the_histogram() {
        // The same pitches; lengthening E and B (E minor's tonic and dominant) over C and G tips
        // a C-major-ish line towards E minor.
        let even = melody(&[(60, 1.0), (64, 1.0), (67, 1.0), (71, 1.0), (72, 1.0)]);
        let leaning = melody(&[(60, 0.25), (64, 4.0), (67, 1.0), (71, 3.0), (72, 0.25)]);
        assert_eq!(find_key(&even), major(C));
        assert_eq!(find_key(&leaning), minor(E));
        // A note without a usable duration adds nothing.
        let mut with_bad = even.clone();
        with_bad.push(Note {
            pitch: 66,
            velocity: 100,
            onset_beats: 5.0,
            duration_beats: f64::NAN,
        });
        assert_eq!(find_key(&with_bad), major(C));
    }

    /// No notes tie every key: C major. All 12 pitch classes equally long tie the tonics: C, in
    /// minor, whose profile is the flatter (a uniform histogram is likelier under it).
    #[test]
    fn flat_histograms_tie_to_c() {
        assert_eq!(find_key(&[]), major(C));
        let chromatic = test_melody(&(60..72).collect::<Vec<u8>>(), 1.0);
        assert_eq!(find_key(&chromatic), minor(C));
    }

    #[test]
    fn major_key_contains_its_diatonic_scale() {
        let g_major = major(G);
        for pitch in [67, 69, 71, 72, 74, 76, 78, 79, 7, 127] {
            assert!(g_major.contains(pitch), "G major should contain {pitch}");
        }
        for pitch in [68, 70, 73, 75, 77, 1] {
            assert!(
                !g_major.contains(pitch),
                "G major should not contain {pitch}"
            );
        }
    }

    #[test]
    fn minor_key_contains_natural_minor_and_leading_tone() {
        let e_minor = minor(E);
        // E F# G A B C D and D# (leading tone), in several octaves.
        for pitch in [64, 66, 67, 69, 71, 72, 74, 75, 40, 4] {
            assert!(e_minor.contains(pitch), "E minor should contain {pitch}");
        }
        // F, G#, A#, C#: not in E minor (C# is melodic minor's raised 6th, not counted).
        for pitch in [65, 68, 70, 73] {
            assert!(
                !e_minor.contains(pitch),
                "E minor should not contain {pitch}"
            );
        }
    }

    #[test]
    fn keys_display_their_names() {
        assert_eq!(major(G).to_string(), "G major");
        assert_eq!(minor(E).to_string(), "E minor");
        assert_eq!(major(10).to_string(), "Bb major");
        assert_eq!(minor(1).to_string(), "C# minor");
        assert_eq!(minor(3).to_string(), "Eb minor");
    }

    #[test]
    fn grid_of_straight_eighths_is_twelve_ticks() {
        assert_eq!(
            prompt_grid_ticks(&at_onsets(&[0.0, 0.5, 1.0, 1.5, 2.0, 3.5])),
            12
        );
        assert_eq!(prompt_grid_ticks(&at_onsets(&[0.0, 1.0, 2.0, 4.0])), 24);
    }

    #[test]
    fn grid_with_triplets() {
        // Quarter-note triplet (16 ticks apart) among quarters: 8.
        let third = 2.0 / 3.0;
        assert_eq!(
            prompt_grid_ticks(&at_onsets(&[0.0, 1.0, 2.0, 2.0 + third, 3.0 + third])),
            8
        );
        // 8th triplet (8 ticks apart) among straight 8ths: 4.
        let eighth_triplet = 1.0 / 3.0;
        assert_eq!(
            prompt_grid_ticks(&at_onsets(&[
                0.0,
                0.5,
                1.0,
                1.0 + eighth_triplet,
                1.0 + 2.0 * eighth_triplet,
                2.0
            ])),
            4
        );
    }

    #[test]
    fn grid_with_a_sixteenth_is_six_ticks() {
        assert_eq!(
            prompt_grid_ticks(&at_onsets(&[0.0, 0.5, 0.75, 1.0, 1.5])),
            6
        );
        // 16ths and 8th triplets together: 2; a 32nd: 3; one tick off: 1.
        assert_eq!(
            prompt_grid_ticks(&at_onsets(&[0.0, 0.25, 1.0 + 1.0 / 3.0])),
            2
        );
        assert_eq!(prompt_grid_ticks(&at_onsets(&[0.0, 0.125, 0.5])), 3);
        assert_eq!(prompt_grid_ticks(&at_onsets(&[0.0, 1.0 / 24.0])), 1);
        assert_eq!(prompt_grid_ticks(&[]), 24);
    }

    /// A C-major prompt in straight 8ths: 8 notes in 4 beats (2 per beat), range C4–G4 = 7.
    fn eighths_prompt_in_c() -> Vec<Note> {
        test_melody(&[60, 62, 64, 65, 67, 64, 62, 60], 0.5)
    }

    #[test]
    fn check_gives_hand_computed_fractions() {
        let prompt = eighths_prompt_in_c();
        assert_eq!(find_key(&prompt), major(C));
        assert_eq!(prompt_grid_ticks(&prompt), 12);
        let answer: Vec<Note> = [
            (60, 0.0),             // in key, on grid
            (62, 0.5),             // in key, on grid
            (61, 1.0),             // C#: out of key, on grid
            (64, 1.25),            // in key, off grid (30 ticks)
            (65, 2.0),             // in key, on grid
            (67, 3.0 + 1.0 / 3.0), // in key, off grid (80 ticks)
        ]
        .iter()
        .map(|&(pitch, onset_beats)| Note {
            pitch,
            velocity: 90,
            onset_beats,
            duration_beats: 0.25,
        })
        .collect();
        // 6 notes in 4 beats = 1.5 per beat against the prompt's 2 per beat.
        let checks = check(&prompt, 4.0, &answer, 4.0);
        assert_eq!(
            checks,
            MusicalChecks {
                in_key: 5.0 / 6.0,
                on_grid: 4.0 / 6.0,
                lowest: 60,
                highest: 67,
                range_semitones: 7,
                prompt_range_semitones: 7,
                density_ratio: 0.75,
                answer_notes: 6,
            }
        );
    }

    #[test]
    fn density_ratio_uses_each_sides_length() {
        let prompt = eighths_prompt_in_c(); // 8 notes in 4 beats: 2 per beat
        let answer = test_melody(&[60, 62, 64], 1.0); // 3 notes in 8 beats: 3/8 per beat
        let checks = check(&prompt, 4.0, &answer, 8.0);
        assert_eq!(checks.density_ratio, 0.1875); // (3/8) / 2
                                                  // The same prompt read as 8 beats long halves its density and doubles the ratio.
        assert_eq!(check(&prompt, 8.0, &answer, 8.0).density_ratio, 0.375);
        assert_eq!(checks.in_key, 1.0);
        assert_eq!(checks.on_grid, 1.0);
    }

    #[test]
    fn empty_and_degenerate_inputs_give_zeros_not_nan() {
        let prompt = eighths_prompt_in_c();
        let empty = check(&prompt, 4.0, &[], 4.0);
        assert_eq!(
            empty,
            MusicalChecks {
                in_key: 0.0,
                on_grid: 0.0,
                lowest: 0,
                highest: 0,
                range_semitones: 0,
                prompt_range_semitones: 7,
                density_ratio: 0.0,
                answer_notes: 0,
            }
        );
        let answer = test_melody(&[60, 62], 1.0);
        assert_eq!(check(&[], 4.0, &answer, 4.0).density_ratio, 0.0);
        assert_eq!(check(&prompt, 0.0, &answer, 4.0).density_ratio, 0.0);
        assert_eq!(check(&prompt, 4.0, &answer, f64::NAN).density_ratio, 0.0);
    }

    fn checks(
        in_key: f64,
        on_grid: f64,
        range: u8,
        density_ratio: f64,
        notes: usize,
    ) -> MusicalChecks {
        MusicalChecks {
            in_key,
            on_grid,
            lowest: 60,
            highest: 60 + range,
            range_semitones: range,
            prompt_range_semitones: 12,
            density_ratio,
            answer_notes: notes,
        }
    }

    #[test]
    fn summary_weights_fractions_by_notes() {
        let mut summary = ChecksSummary::new();
        summary.add(&checks(1.0, 0.5, 4, 0.5, 2));
        summary.add(&checks(0.5, 1.0, 10, 1.5, 6));
        summary.add(&check(&eighths_prompt_in_c(), 4.0, &[], 4.0));
        assert_eq!(summary.answers(), 3);
        assert_eq!(summary.empty_answers(), 1);
        assert_eq!(summary.total_notes(), 8);
        // (2 × 1 + 6 × 0.5) / 8, not the unweighted (1 + 0.5) / 2 = 0.75.
        assert_eq!(summary.in_key(), 0.625);
        // (2 × 0.5 + 6 × 1) / 8.
        assert_eq!(summary.on_grid(), 0.875);
        // Ranges over the two non-empty answers; density over all three.
        assert_eq!(summary.mean_range_semitones(), 7.0);
        assert_eq!(summary.mean_prompt_range_semitones(), 12.0);
        assert!((summary.mean_density_ratio() - 2.0 / 3.0).abs() < 1e-15);

        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["answers"], 3);
        assert_eq!(json["empty_answers"], 1);
        assert_eq!(json["total_notes"], 8);
        assert_eq!(json["in_key"], 0.625);
        assert_eq!(json["on_grid"], 0.875);
        assert_eq!(json["mean_range_semitones"], 7.0);
    }

    #[test]
    fn empty_summary_is_all_zeros() {
        let summary = ChecksSummary::new();
        assert_eq!(summary.in_key(), 0.0);
        assert_eq!(summary.on_grid(), 0.0);
        assert_eq!(summary.mean_range_semitones(), 0.0);
        assert_eq!(summary.mean_density_ratio(), 0.0);
    }
}
