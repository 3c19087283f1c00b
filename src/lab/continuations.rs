//! Musical checks on continuations of held-out prompts: each tune's first [`PROMPT_BARS`] bars,
//! heard as the plugin hears a player ([`transcribe`]), are the prompt, every engine continues it for [`ANSWER_BARS`] bars at each of
//! [`TEMPERATURES`], and the answers are judged by [`crate::lab::musical::check`] (key, grid, range,
//! density). The tune's own next bars are judged the same way as the `original` row, the yardstick
//! the engines' figures compare with.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::generator::event_answer::{answer_phrases, EventAnswerer, Layout};
use crate::lab::eval::Tune;
use crate::lab::musical::{check, ChecksSummary};
use crate::listen::transcribe::transcribe;
use crate::models::engines::{Brains, EngineKind};
use crate::music::encoding::Vocabulary;
use crate::music::{ticks_to_beats, Note};

/// Bars of each tune given as the prompt.
pub const PROMPT_BARS: u32 = 4;
/// Bars each engine is asked to continue.
pub const ANSWER_BARS: u32 = 4;
/// The temperatures the checks run at.
pub const TEMPERATURES: [f32; 3] = [0.5, 1.0, 1.5];

/// One engine at one temperature over every prompt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChecksRow {
    /// An engine's name, or `original` for the tunes' own continuations.
    pub engine: String,
    /// `None` for `original`.
    pub temperature: Option<f32>,
    pub summary: ChecksSummary,
}

/// A prompt and what really followed it.
struct Case {
    prompt: Vec<Note>,
    original: Vec<Note>,
    /// The tune's bar lines; the answer starts on one.
    layout: Layout,
    /// Length of the prompt, then of the continuation, in beats (whole bars of the meter).
    prompt_beats: f64,
    answer_beats: f64,
}

/// The tunes long enough to continue (a note after the prompt and after the answer span
/// starts), each split into prompt and original continuation at its own bar lines; notes are
/// clipped to their part.
fn cases(tunes: &[Tune], vocabulary: &Vocabulary) -> Vec<Case> {
    let part = |notes: &[Note], from: f64, to: f64| -> Vec<Note> {
        notes
            .iter()
            .filter(|n| n.onset_beats >= from && n.onset_beats < to)
            .map(|n| Note {
                onset_beats: n.onset_beats - from,
                duration_beats: n.duration_beats.min(to - n.onset_beats),
                ..*n
            })
            .collect()
    };
    tunes
        .iter()
        .filter_map(|tune| {
            let split = ticks_to_beats(tune.meter.bar_line(PROMPT_BARS.into()));
            let end = ticks_to_beats(tune.meter.bar_line((PROMPT_BARS + ANSWER_BARS).into()));
            let notes = vocabulary.decode_ids(&tune.tokens);
            let long_enough = notes.iter().any(|n| n.onset_beats >= end);
            // The prompt is heard as the plugin hears a player: one line on its grid.
            let prompt = transcribe(&part(&notes, 0.0, split)).melody;
            (long_enough && !prompt.is_empty()).then(|| Case {
                prompt,
                original: part(&notes, split, end),
                layout: Layout {
                    meter: tune.meter.clone(),
                    answer_offset_ticks: 0,
                },
                prompt_beats: split,
                answer_beats: end - split,
            })
        })
        .collect()
}

/// The checks of every engine of `brains` at every temperature, plus `original`, on `tunes`
/// (whose beat 0 is a bar line); answer `i` is drawn from seed `seed + i`, so a run repeats.
pub fn continuation_checks(brains: &Brains, tunes: &[Tune], seed: u64) -> Vec<ChecksRow> {
    let vocabulary = *brains.wavenet.vocabulary();
    let cases = cases(tunes, &vocabulary);
    let mut original = ChecksSummary::new();
    for case in &cases {
        original.add(&check(
            &case.prompt,
            case.prompt_beats,
            &case.original,
            case.answer_beats,
        ));
    }
    let mut rows = vec![ChecksRow {
        engine: "original".into(),
        temperature: None,
        summary: original,
    }];
    let mut answerer = EventAnswerer::new(vocabulary);
    let mut answer = Vec::new();
    for kind in EngineKind::ALL {
        let mut model = brains.engine(kind);
        for temperature in TEMPERATURES {
            let mut summary = ChecksSummary::new();
            for (i, case) in cases.iter().enumerate() {
                let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(i as u64));
                answer_phrases(
                    &mut answerer,
                    model.as_mut(),
                    &[&case.prompt],
                    &case.layout,
                    case.answer_beats,
                    temperature,
                    &mut rng,
                    &mut answer,
                );
                summary.add(&check(
                    &case.prompt,
                    case.prompt_beats,
                    &answer,
                    case.answer_beats,
                ));
            }
            rows.push(ChecksRow {
                engine: kind.name().into(),
                temperature: Some(temperature),
                summary,
            });
        }
    }
    rows
}

/// The rows as a text table.
pub fn checks_table(rows: &[ChecksRow]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:>5} {:>7} {:>6} {:>7} {:>7} {:>6} {:>6} {:>8}",
        "engine", "T", "answers", "empty", "notes", "in-key", "grid", "range", "density"
    );
    for row in rows {
        let s = &row.summary;
        let t = row
            .temperature
            .map_or("-".to_string(), |t| format!("{t:.1}"));
        let _ = writeln!(
            out,
            "{:<9} {:>5} {:>7} {:>6} {:>7} {:>7.3} {:>6.3} {:>6.1} {:>8.2}",
            row.engine,
            t,
            s.answers(),
            s.empty_answers(),
            s.total_notes(),
            s.in_key(),
            s.on_grid(),
            s.mean_range_semitones(),
            s.mean_density_ratio()
        );
    }
    let prompt_range = rows
        .first()
        .map_or(0.0, |r| r.summary.mean_prompt_range_semitones());
    let _ = writeln!(
        out,
        "prompts: first {PROMPT_BARS} bars, answers {ANSWER_BARS} bars; prompt range {prompt_range:.1} semitones; density = answer notes/beat over prompt notes/beat"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::engines::train_long_term;
    use crate::test_kit::folk_tune;
    use crate::test_kit::random_kernel;

    #[test]
    fn checks_cover_every_engine_and_the_original_reproducibly() {
        let v = Vocabulary::default();
        // Each folk tune played twice, so there is a continuation after the prompt.
        let twice = |s: i8| {
            let once = folk_tune(s);
            let bars = (once.iter().map(|n| n.end_beats()).fold(0.0, f64::max) / 4.0).ceil();
            let again = once.iter().map(|n| Note {
                onset_beats: n.onset_beats + 4.0 * bars,
                ..*n
            });
            once.iter().copied().chain(again).collect::<Vec<_>>()
        };
        let tunes: Vec<Tune> = [-2, 0, 3]
            .iter()
            .map(|&s| Tune::new(format!("t{s}"), &twice(s), &v))
            .collect();
        let brains = Brains {
            wavenet: random_kernel(2),
            long_term: Some(train_long_term(v, tunes.iter().map(|t| &t.tokens[..]))),
        };
        let rows = continuation_checks(&brains, &tunes, 7);
        assert_eq!(rows.len(), 1 + EngineKind::ALL.len() * TEMPERATURES.len());
        // The original continuation of a folk tune stays mostly in its key (random pitches: 7/12)
        // and on its grid.
        let original = &rows[0].summary;
        assert_eq!(original.answers(), 3);
        assert!(
            original.in_key() > 0.8 && original.on_grid() > 0.9,
            "{original:?}"
        );
        // A Markov engine trained on these very tunes continues them in key.
        let markov = rows
            .iter()
            .find(|r| r.engine == "markov" && r.temperature == Some(0.5))
            .unwrap();
        assert!(markov.summary.total_notes() > 0);
        assert!(markov.summary.in_key() > 0.8, "{:?}", markov.summary);
        let again = continuation_checks(&brains, &tunes, 7);
        for (a, b) in rows.iter().zip(&again) {
            assert_eq!(a.summary, b.summary);
        }
        assert!(checks_table(&rows).contains("original"));
    }
}
