//! Answers that fit the player: the answer, written on the grid, played with the player's
//! groove (how late or early they play each position in the beat, their swing) and accents, as
//! much as the Feel parameter asks.

use crate::listen::transcribe::Groove;
use crate::music::Note;

/// Plays `notes` (an answer starting at host beat `start_beat`, onsets from its start, in onset
/// order, `length_beats` long) with `groove` at `feel` (0: on the grid, 1: the player's whole
/// groove); with `accents`, their velocities also take the player's accent at each position.
/// A note that ended where the next began still does; the notes stay in onset order.
pub fn play_with_groove(
    notes: &mut [Note],
    start_beat: f64,
    groove: &Groove,
    feel: f64,
    accents: bool,
    length_beats: f64,
) {
    let feel = if feel.is_finite() {
        feel.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let shift = |onset: f64| feel * groove.offset_at(start_beat + onset);
    for i in 0..notes.len() {
        let note = notes[i];
        let onset = (note.onset_beats + shift(note.onset_beats)).max(0.0);
        let next = notes.get(i + 1).map(|n| n.onset_beats);
        let legato = next.is_some_and(|next| (note.end_beats() - next).abs() < 1e-9);
        let end = match next {
            Some(next) if legato => next + shift(next),
            _ => note.end_beats() + shift(note.end_beats()),
        };
        let end = end.min(length_beats).max(onset + 1e-3);
        notes[i].onset_beats = onset;
        notes[i].duration_beats = end - onset;
        if accents {
            let accent = feel * groove.accent_at(start_beat + note.onset_beats);
            notes[i].velocity = (f64::from(note.velocity) + accent)
                .round()
                .clamp(1.0, 127.0) as u8;
        }
    }
    // NOTE: positions may shift by different amounts; the audio thread plays onsets in order.
    notes.sort_by(|a, b| a.onset_beats.total_cmp(&b.onset_beats));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::performance::{played_live, swung};
    use crate::listen::transcribe::transcribe;
    use crate::test_kit::melody;

    fn eighths() -> Vec<Note> {
        melody(0.0, &[(62, 0.5), (64, 0.5), (66, 0.5), (67, 0.5)].repeat(4))
    }

    /// An answer of straight 8ths after a swung phrase swings as the player did, at full feel;
    /// on the grid at no feel; after loosely timed straight playing, it stays on the grid.
    #[test]
    fn answers_swing_with_a_swinging_player_and_only_then() {
        let swinging = transcribe(&swung(&eighths())).groove;
        let mut answer = eighths();
        play_with_groove(&mut answer, 4.0, &swinging, 1.0, false, 8.0);
        for (played, written) in answer.iter().zip(eighths()) {
            let late = if written.onset_beats.fract() == 0.5 {
                1.0 / 6.0
            } else {
                0.0
            };
            assert!(
                (played.onset_beats - written.onset_beats - late).abs() < 1e-9,
                "{played:?}"
            );
        }
        // Long-short: each down-beat 8th lasts until the swung off-beat.
        assert!(
            (answer[0].duration_beats - 2.0 / 3.0).abs() < 1e-9,
            "{:?}",
            answer[0]
        );
        let mut straight = eighths();
        play_with_groove(&mut straight, 4.0, &swinging, 0.0, false, 8.0);
        assert_eq!(straight, eighths());
        let loose = transcribe(&played_live(&eighths(), 120.0, 2)).groove;
        let mut on_grid = eighths();
        play_with_groove(&mut on_grid, 4.0, &loose, 1.0, false, 8.0);
        for (played, written) in on_grid.iter().zip(eighths()) {
            assert_eq!(played.onset_beats, written.onset_beats);
        }
    }

    /// A player who leans on the beat gets answers that do too.
    #[test]
    fn answers_take_the_players_accents() {
        let mut accented = eighths();
        for n in &mut accented {
            n.velocity = if n.onset_beats.fract() == 0.0 {
                110
            } else {
                70
            };
        }
        let groove = transcribe(&accented).groove;
        let mut answer = eighths();
        play_with_groove(&mut answer, 0.0, &groove, 1.0, true, 8.0);
        assert!(
            answer.iter().all(|n| n.velocity
                == if n.onset_beats.fract() == 0.0 {
                    100
                } else {
                    60
                }),
            "{answer:?}"
        );
    }
}
