//! Conversion between notes in beats and the engines' steps on the tick grid.
//!
//! Engines see a phrase as a sequence of [`Step`]s: each note's pitch, velocity, duration and the
//! inter-onset interval (IOI) from the previous note, all quantised to [`TICKS_PER_BEAT`]. Onsets
//! are quantised as absolute positions before IOIs are taken, so rounding never accumulates
//! along a phrase.

use crate::models::step_model::{Step, MAX_STEP_TICKS};
use crate::music::Note;
use crate::music::{beats_to_ticks, ticks_to_beats};

/// Converts `notes` into steps in `out` (cleared first).
///
/// Notes are ordered by quantised onset, then pitch, so a chord always reads bottom-up with IOI 0
/// after its lowest note. The first step's IOI is its onset from beat 0 (0 for a phrase, whose
/// onsets start at its first note). IOIs are clamped to `0..=MAX_STEP_TICKS` (a longer rest
/// shortens only that gap), durations to `1..=MAX_STEP_TICKS`, velocities to 1–127.
pub fn notes_to_steps(notes: &[Note], out: &mut Vec<Step>) {
    out.clear();
    let mut order: Vec<(u64, usize)> = notes
        .iter()
        .enumerate()
        .map(|(index, note)| (beats_to_ticks(note.onset_beats), index))
        .collect();
    // NOTE: stable sort, so identical notes keep their input order and the result is deterministic.
    order.sort_by_key(|&(onset_ticks, index)| (onset_ticks, notes[index].pitch));
    out.reserve(order.len());
    let max_ticks = u64::from(MAX_STEP_TICKS);
    let mut previous_onset_ticks = 0;
    for (onset_ticks, index) in order {
        let note = &notes[index];
        // Onsets are sorted, so the difference is never negative.
        let ioi_ticks = (onset_ticks - previous_onset_ticks).min(max_ticks);
        previous_onset_ticks = onset_ticks;
        out.push(Step {
            pitch: note.pitch.min(127),
            ioi_ticks: ioi_ticks as u16,
            duration_ticks: beats_to_ticks(note.duration_beats).clamp(1, max_ticks) as u16,
            velocity: note.velocity.clamp(1, 127),
        });
    }
}

/// Converts `steps` into notes in `out` (cleared first).
///
/// The running onset starts at beat 0 and each step's IOI advances it, so a first IOI of 0 puts
/// the first note on beat 0. A zero duration (not a valid step) becomes one tick.
pub fn steps_to_notes(steps: &[Step], out: &mut Vec<Note>) {
    out.clear();
    out.reserve(steps.len());
    let mut onset_ticks: u64 = 0;
    for step in steps {
        onset_ticks += u64::from(step.ioi_ticks);
        out.push(Note {
            pitch: step.pitch,
            velocity: step.velocity,
            onset_beats: ticks_to_beats(onset_ticks),
            duration_beats: ticks_to_beats(u64::from(step.duration_ticks.max(1))),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_kit::note;

    fn step(pitch: u8, ioi_ticks: u16, duration_ticks: u16) -> Step {
        Step {
            pitch,
            ioi_ticks,
            duration_ticks,
            velocity: 80,
        }
    }

    fn beats(ticks: u64) -> f64 {
        ticks_to_beats(ticks)
    }

    #[test]
    fn on_grid_notes_round_trip_exactly() {
        // Eighths, a triplet, a 32nd and a dotted quarter, all on the 24-tick grid.
        let notes = vec![
            note(60, beats(0), beats(12)),
            note(62, beats(12), beats(12)),
            note(64, beats(24), beats(8)),
            note(65, beats(32), beats(8)),
            note(67, beats(40), beats(8)),
            note(69, beats(48), beats(3)),
            note(71, beats(51), beats(36)),
        ];
        let mut steps = Vec::new();
        notes_to_steps(&notes, &mut steps);
        let iois: Vec<u16> = steps.iter().map(|s| s.ioi_ticks).collect();
        assert_eq!(iois, [0, 12, 12, 8, 8, 8, 3]);
        let mut back = Vec::new();
        steps_to_notes(&steps, &mut back);
        assert_eq!(back, notes);
        let mut steps_again = Vec::new();
        notes_to_steps(&back, &mut steps_again);
        assert_eq!(steps_again, steps);
    }

    #[test]
    fn chord_notes_get_zero_ioi_and_sort_by_pitch() {
        let notes = vec![
            note(74, beats(24), beats(24)),
            note(67, beats(0), beats(24)),
            note(60, beats(0), beats(24)),
            note(64, 0.001, beats(24)),
        ];
        let mut steps = Vec::new();
        notes_to_steps(&notes, &mut steps);
        assert_eq!(
            steps,
            [
                step(60, 0, 24),
                step(64, 0, 24),
                step(67, 0, 24),
                step(74, 24, 24)
            ]
        );
    }

    #[test]
    fn off_grid_onsets_quantise_without_drift() {
        // Onsets 8.4 ticks apart: rounding each IOI would give 8 every time and lose 0.4 per note;
        // rounding absolute onsets keeps the last note at tick round(29 * 8.4) = 244.
        let spacing_beats = 8.4 / 24.0;
        let notes: Vec<Note> = (0..30)
            .map(|i| note(60, f64::from(i) * spacing_beats, beats(8)))
            .collect();
        let mut steps = Vec::new();
        notes_to_steps(&notes, &mut steps);
        let last_onset_ticks: u32 = steps.iter().map(|s| u32::from(s.ioi_ticks)).sum();
        assert_eq!(last_onset_ticks, 244);
        assert!(steps[1..]
            .iter()
            .all(|s| s.ioi_ticks == 8 || s.ioi_ticks == 9));
    }

    #[test]
    fn long_gaps_durations_and_bad_velocities_are_clamped() {
        let notes = vec![
            Note {
                velocity: 0,
                ..note(60, 0.0, 0.001)
            },
            note(62, 10.0, 20.0),
            note(64, 11.0, 1.0),
        ];
        let mut steps = Vec::new();
        notes_to_steps(&notes, &mut steps);
        assert_eq!(steps[0].duration_ticks, 1);
        assert_eq!(steps[0].velocity, 1);
        assert_eq!(steps[1].ioi_ticks, MAX_STEP_TICKS);
        assert_eq!(steps[1].duration_ticks, MAX_STEP_TICKS);
        // Only the long gap shrinks: the next IOI is still one beat.
        assert_eq!(steps[2].ioi_ticks, 24);
    }

    #[test]
    fn negative_and_nan_onsets_count_as_beat_zero() {
        let notes = vec![note(60, -2.0, 1.0), note(62, f64::NAN, 1.0)];
        let mut steps = Vec::new();
        notes_to_steps(&notes, &mut steps);
        assert_eq!(steps, [step(60, 0, 24), step(62, 0, 24)]);
    }

    #[test]
    fn outputs_are_cleared_first() {
        let mut steps = vec![step(1, 2, 3)];
        notes_to_steps(&[], &mut steps);
        assert!(steps.is_empty());
        let mut notes = vec![note(1, 2.0, 3.0)];
        steps_to_notes(&[step(60, 48, 12)], &mut notes);
        assert_eq!(notes, [note(60, 2.0, 0.5)]);
    }
}
