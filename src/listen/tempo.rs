//! Free tempo: the player's beat — their tempo and where their beats fall — heard from a
//! phrase's onsets, for when the transport is stopped and the player keeps their own time.
//!
//! A beat is a reading of the onsets: every onset lands on a point of a grid of twelve points a
//! beat (16ths and triplets), a little early or late. Many readings fit any phrase (the same
//! notes are 8ths at 140 BPM or 16ths at 70), so each reading is scored as a musician would
//! weigh it: how closely the onsets fit its grid (players spread by 10–20 milliseconds, not
//! more), and how usual each step from one onset's place in the beat to the next is in the
//! tunes WaveJam learned from ([`RhythmModel`]). The best reading is fitted to the onsets by
//! least squares and folded into [`SLOWEST_BPM`]–[`FASTEST_BPM`].
//!
//! Time is in seconds here; the caller converts from its clock.

use std::sync::OnceLock;

use crate::assets::default_tunes;
use crate::music::encoding::Vocabulary;
use crate::music::Note;

/// Slowest tempo a player is heard at, in BPM.
pub const SLOWEST_BPM: f64 = 60.0;
/// Fastest tempo a player is heard at, in BPM.
pub const FASTEST_BPM: f64 = 180.0;
/// Fewest distinct onsets (chords count once) a beat is heard from.
pub const MIN_ONSETS: usize = 4;
/// Onsets closer than this (seconds) are one: a chord, spread by the hand.
const CHORD_SECONDS: f64 = 0.04;
/// Most onsets read: the latest ones of a longer phrase.
const MAX_ONSETS: usize = 48;
/// How far a player's onsets spread around the grid (standard deviation, seconds): a keyboard
/// player's 10–20 ms. Wider lets a fast phrase fit a grid at a wrong tempo, for a twelfth of a
/// beat is short there (29 ms at 170 BPM): `wavejam listen-checks` heard 11 of 240 takes at
/// 170 BPM at another tempo than the player's or an octave of it with 25 ms, 3 with 15 ms (and
/// 14–16 ms alike); 10 ms, narrower than the players it hears, fits their tempo less closely
/// (the answers on their grid within 1/48 beat 0.58 of the time at 170 BPM, against 0.62).
const SPREAD_SECONDS: f64 = 0.015;
/// Ratio between neighbouring candidate tempos (0.5 %).
const TEMPO_STEP: f64 = 1.005;
/// Grid points per beat: 16ths and triplets.
const POINTS_PER_BEAT: i64 = 12;
/// Longest time between onsets the rhythm model tells apart, in twelfths of a beat (two
/// beats); longer ones share its last cell.
const LONGEST_INTERVAL: usize = 24;
/// Share of anything the tunes never showed (a position or an interval never seen).
const RARE: f64 = 0.001;
/// How far the player's tempo is expected to move from one phrase to the next: the standard
/// deviation of its logarithm (about 8 %).
const TEMPO_DRIFT: f64 = 0.08;
/// How much less likely a new tempo is than the one the player kept (a floor under the drift's
/// penalty): a player who really changes tempo, or was heard at a wrong level, is followed.
/// The scores are sums over a phrase's onsets, so the floor is low: at 1e-6 a 13-note line in
/// quarters still slipped to 8ths at half the kept tempo, at 1e-8 it keeps it while a phrase of
/// 8ths at 3/5 of the kept tempo is heard at its own (both in the unit tests).
const TEMPO_CHANGE: f64 = 1e-8;
/// Weight, in onsets, of the intervals of all positions in each position's own intervals: the
/// rarely seen positions lean on the common shares.
const BACKOFF_ONSETS: f64 = 10.0;

/// How the tunes WaveJam learned from move through the beat: where onsets fall in it, and how
/// far the next onset comes from each place. Most notes fall on the beat or the off-beat 8th;
/// after a note on the beat the next often comes a beat later, after an off-beat one it seldom
/// does, so this also tells the beat from the off-beat in a run of 8ths.
#[derive(Debug, Clone, PartialEq)]
pub struct RhythmModel {
    /// Log share of onsets at each twelfth of the beat.
    position: [f64; POINTS_PER_BEAT as usize],
    /// Log share of each time to the next onset (twelfths of a beat, 1 to
    /// [`LONGEST_INTERVAL`] and longer in the last cell), given the onset's twelfth.
    next: [[f64; LONGEST_INTERVAL + 1]; POINTS_PER_BEAT as usize],
}

impl RhythmModel {
    /// The model counted from `tunes` (notes in beats); notes off the twelve points a beat
    /// are left out, with the intervals to and from them.
    pub fn count<'a>(tunes: impl IntoIterator<Item = &'a [Note]>) -> RhythmModel {
        const POINTS: usize = POINTS_PER_BEAT as usize;
        let mut positions = [0.0; POINTS];
        let mut intervals = [[0.0; LONGEST_INTERVAL + 1]; POINTS];
        for tune in tunes {
            let twelfths: Vec<Option<i64>> = tune
                .iter()
                .map(|n| {
                    let twelfths = n.onset_beats * POINTS_PER_BEAT as f64;
                    ((twelfths - twelfths.round()).abs() < 1e-6).then_some(twelfths.round() as i64)
                })
                .collect();
            for t in twelfths.iter().flatten() {
                positions[t.rem_euclid(POINTS_PER_BEAT) as usize] += 1.0;
            }
            for pair in twelfths.windows(2) {
                if let [Some(from), Some(to)] = *pair {
                    if to > from {
                        let cell = ((to - from) as usize).min(LONGEST_INTERVAL);
                        intervals[from.rem_euclid(POINTS_PER_BEAT) as usize][cell] += 1.0;
                    }
                }
            }
        }
        let log_share = |count: f64, total: f64| (count / total.max(1.0)).max(RARE).ln();
        let onsets: f64 = positions.iter().sum();
        let mut all = [0.0; LONGEST_INTERVAL + 1];
        for row in &intervals {
            for (sum, count) in all.iter_mut().zip(row) {
                *sum += count;
            }
        }
        let gaps: f64 = all.iter().sum();
        let mut model = RhythmModel {
            position: positions.map(|count| log_share(count, onsets)),
            next: [[0.0; LONGEST_INTERVAL + 1]; POINTS],
        };
        for (logs, row) in model.next.iter_mut().zip(&intervals) {
            let seen: f64 = row.iter().sum();
            for (cell, log) in logs.iter_mut().enumerate() {
                let common = all[cell] / gaps.max(1.0);
                *log = log_share(row[cell] + BACKOFF_ONSETS * common, seen + BACKOFF_ONSETS);
            }
        }
        model
    }

    /// The model of the embedded tunes, counted the first time it is asked for.
    pub fn embedded() -> &'static RhythmModel {
        static MODEL: OnceLock<RhythmModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            let vocabulary = Vocabulary::default();
            // NOTE: the embedded file cannot fail to read (tested in `assets`); no tunes would
            // leave every reading equally usual, and the grid fit alone would decide.
            let tunes: Vec<Vec<Note>> = default_tunes()
                .unwrap_or_default()
                .iter()
                .map(|tune| vocabulary.decode_ids(tune))
                .collect();
            RhythmModel::count(tunes.iter().map(Vec::as_slice))
        })
    }

    /// How usual it is to go from a note at grid point `from` (twelfths of a beat, `None` for
    /// the first note) to one at `to` (log).
    fn step(&self, from: Option<i64>, to: i64) -> f64 {
        match from {
            None => self.position[to.rem_euclid(POINTS_PER_BEAT) as usize],
            // NOTE: two onsets on one grid point are a reading that hears a chord in a run.
            Some(from) if to <= from => 2.0 * RARE.ln(),
            Some(from) => {
                let cell = ((to - from) as usize).min(LONGEST_INTERVAL);
                self.next[from.rem_euclid(POINTS_PER_BEAT) as usize][cell]
            }
        }
    }
}

/// A player's beat: `bpm` beats a minute, one of them at `phase_seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayerBeat {
    pub bpm: f64,
    /// A beat line, in the onsets' seconds.
    pub phase_seconds: f64,
}

impl PlayerBeat {
    /// Length of one beat, in seconds.
    pub fn seconds(&self) -> f64 {
        60.0 / self.bpm
    }
}

/// The player's beat in `onsets` (seconds, any order; chords and spreads count once), or `None`
/// when fewer than [`MIN_ONSETS`] distinct onsets give nothing to go on.
///
/// Readings from half the slowest to twice the fastest tempo compete, and the best is then
/// folded into [`SLOWEST_BPM`]–[`FASTEST_BPM`] by octaves: a fast reel read as 8ths at 190 BPM
/// is heard at 95, in 16ths, not squeezed onto a wrong grid at 180. A player keeps their tempo
/// from phrase to phrase: with the tempo heard in the previous phrase (`previous_bpm`), readings
/// away from it are less likely (by [`TEMPO_DRIFT`]), so a phrase that alone could be heard at
/// either of two levels is heard at the one the player set.
pub fn find_beat(onsets: &[f64], previous_bpm: Option<f64>) -> Option<PlayerBeat> {
    let onsets = distinct_onsets(onsets);
    if onsets.len() < MIN_ONSETS {
        return None;
    }
    let model = RhythmModel::embedded();
    let mut best: Option<(f64, PlayerBeat)> = None;
    let mut bpm = SLOWEST_BPM / 2.0;
    while bpm <= FASTEST_BPM * 2.0 {
        for &anchor in &onsets {
            let guess = PlayerBeat {
                bpm,
                phase_seconds: anchor,
            };
            if let Some((score, beat)) = fitted(model, &onsets, guess) {
                let score = score + kept_tempo(beat.bpm, previous_bpm);
                if best.is_none_or(|(best, _)| score > best) {
                    best = Some((score, beat));
                }
            }
        }
        bpm *= TEMPO_STEP;
    }
    let (_, beat) = best?;
    Some(into_range(model, &onsets, beat))
}

/// `beat` folded into [`SLOWEST_BPM`]–[`FASTEST_BPM`] by octaves, refitted to `onsets` at each
/// step (when halving, the likelier of the two ways to take every other beat).
fn into_range(model: &RhythmModel, onsets: &[f64], mut beat: PlayerBeat) -> PlayerBeat {
    // NOTE: a search reading is within an octave of the range and a refit moves a tempo by far
    // less than an octave: one or two steps do; four bound the loop.
    for _ in 0..4 {
        let steps: Vec<PlayerBeat> = if beat.bpm < SLOWEST_BPM {
            vec![PlayerBeat {
                bpm: beat.bpm * 2.0,
                ..beat
            }]
        } else if beat.bpm > FASTEST_BPM {
            [0.0, 1.0]
                .iter()
                .map(|shift| PlayerBeat {
                    bpm: beat.bpm / 2.0,
                    phase_seconds: beat.phase_seconds + shift * beat.seconds(),
                })
                .collect()
        } else {
            break;
        };
        beat = steps
            .iter()
            .filter_map(|&step| fitted(model, onsets, step))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(steps[0], |(_, fitted)| fitted);
    }
    beat
}

/// `bpm` moved by octaves into [`SLOWEST_BPM`]–[`FASTEST_BPM`] (the tempo a reading is heard
/// at); a tempo that is not a positive number stays as it is.
fn folded(bpm: f64) -> f64 {
    if !(bpm.is_finite() && bpm > 0.0) {
        return bpm;
    }
    let mut folded = bpm;
    while folded < SLOWEST_BPM {
        folded *= 2.0;
    }
    while folded > FASTEST_BPM {
        folded /= 2.0;
    }
    folded
}

/// How likely (log) it is that a player whose last phrase was at `previous_bpm` plays at `bpm`
/// (as heard, folded): they keep it, give or take [`TEMPO_DRIFT`], or take another tempo
/// ([`TEMPO_CHANGE`]) — so one phrase heard at a wrong level does not hold every next one to it.
/// 0 without a previous tempo.
fn kept_tempo(bpm: f64, previous_bpm: Option<f64>) -> f64 {
    previous_bpm
        .filter(|previous| previous.is_finite() && *previous > 0.0)
        .map_or(0.0, |previous| {
            let drift = (folded(bpm) / previous).ln() / TEMPO_DRIFT;
            (-0.5 * drift * drift).max(TEMPO_CHANGE.ln())
        })
}

/// Sorted onsets with those within [`CHORD_SECONDS`] of the previous one merged (the earliest
/// stands for them), at most the latest [`MAX_ONSETS`].
fn distinct_onsets(onsets: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = onsets.iter().copied().filter(|t| t.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut distinct: Vec<f64> = Vec::with_capacity(sorted.len());
    for t in sorted {
        if distinct.last().is_none_or(|last| t - last > CHORD_SECONDS) {
            distinct.push(t);
        }
    }
    let skip = distinct.len().saturating_sub(MAX_ONSETS);
    distinct.split_off(skip)
}

/// The grid points (twelfths of a beat from `beat`'s phase) the sorted `onsets` were most
/// likely meant for, each after the one before, and how likely the reading is (log): how
/// usual each step is weighs against how close each onset is, so an 8th played a little late
/// is still an 8th, not the rare point next to it.
fn read(model: &RhythmModel, onsets: &[f64], beat: PlayerBeat) -> (Vec<i64>, f64) {
    let step = beat.seconds() / POINTS_PER_BEAT as f64;
    let mut points = Vec::with_capacity(onsets.len());
    let mut total = 0.0;
    let mut previous = None;
    for &t in onsets {
        let nearest = ((t - beat.phase_seconds) / step).round() as i64;
        let (point, score) = (nearest - 2..=nearest + 2)
            .map(|point| {
                let miss = t - beat.phase_seconds - point as f64 * step;
                let fit = miss * miss / (2.0 * SPREAD_SECONDS * SPREAD_SECONDS);
                (point, model.step(previous, point) - fit)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((nearest, f64::MIN));
        points.push(point);
        total += score;
        previous = Some(point);
    }
    (points, total)
}

/// The reading that `guess` starts: the onsets placed on its grid, the beat fitted to those
/// points by least squares, and the onsets placed again on the fitted grid, with its
/// likelihood (log). `None` if the onsets all land on one point or the fit leaves the
/// searched range (half the slowest to twice the fastest tempo).
fn fitted(model: &RhythmModel, onsets: &[f64], guess: PlayerBeat) -> Option<(f64, PlayerBeat)> {
    let (points, _) = read(model, onsets, guess);
    let n = onsets.len() as f64;
    let beats: Vec<f64> = points
        .iter()
        .map(|&p| p as f64 / POINTS_PER_BEAT as f64)
        .collect();
    let mean_x = beats.iter().sum::<f64>() / n;
    let mean_t = onsets.iter().sum::<f64>() / n;
    let (mut sxx, mut sxt) = (0.0, 0.0);
    for (x, t) in beats.iter().zip(onsets) {
        sxx += (x - mean_x) * (x - mean_x);
        sxt += (x - mean_x) * (t - mean_t);
    }
    if sxx <= 0.0 {
        return None;
    }
    let seconds = sxt / sxx;
    let bpm = 60.0 / seconds;
    // NOTE: the fit may move a hair past the range's ends; a tempo well outside it is another
    // reading, which its own candidate scores.
    if !(SLOWEST_BPM / 2.0 * 0.98..=FASTEST_BPM * 2.0 * 1.02).contains(&bpm) {
        return None;
    }
    let beat = PlayerBeat {
        bpm,
        phase_seconds: mean_t - seconds * mean_x,
    };
    Some((read(model, onsets, beat).1, beat))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lab::performance::played_live;
    use crate::music::Note;
    use crate::test_kit::folk_tune;

    /// Onset seconds of `notes` (in beats) played at `bpm`, the first at `start` seconds.
    fn seconds(notes: &[Note], bpm: f64, start: f64) -> Vec<f64> {
        notes
            .iter()
            .map(|n| start + n.onset_beats * 60.0 / bpm)
            .collect()
    }

    fn assert_beat(found: PlayerBeat, bpm: f64, beat_line: f64) {
        assert!(
            (found.bpm / bpm - 1.0).abs() < 0.01,
            "heard {:.1} BPM, played {bpm}",
            found.bpm
        );
        let beats_off = (beat_line - found.phase_seconds) / found.seconds();
        let phase_error = (beats_off - beats_off.round()).abs();
        assert!(
            phase_error < 0.05,
            "beat lines off by {phase_error:.3} beats"
        );
    }

    #[test]
    fn a_tune_played_at_its_own_tempo_is_heard_at_it() {
        for bpm in [62.0, 70.0, 95.0, 120.0, 140.0, 160.0, 170.0] {
            let tune = played_live(&folk_tune(0), bpm, 5);
            let onsets = seconds(&tune, bpm, 1.3);
            assert_beat(find_beat(&onsets, None).unwrap(), bpm, 1.3);
        }
    }

    /// A tune in 16ths at 95 BPM is 8ths at 190, past the fastest tempo: heard at 95, on the
    /// beat, not squeezed onto a grid near 180.
    #[test]
    fn a_reading_past_the_fastest_tempo_is_folded_into_range() {
        let in_16ths: Vec<Note> = folk_tune(0)
            .iter()
            .map(|n| Note {
                onset_beats: n.onset_beats / 2.0,
                duration_beats: n.duration_beats / 2.0,
                ..*n
            })
            .collect();
        let tune = played_live(&in_16ths, 95.0, 3);
        assert_beat(
            find_beat(&seconds(&tune, 95.0, 0.7), None).unwrap(),
            95.0,
            0.7,
        );
    }

    /// A hymn-like line in quarters and halves.
    pub(crate) fn hymn_line() -> Vec<Note> {
        let lengths = [
            1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0,
        ];
        let pitches = [67, 69, 71, 72, 71, 69, 67, 71, 72, 74, 72, 71, 67];
        crate::test_kit::melody(0.0, &pitches.into_iter().zip(lengths).collect::<Vec<_>>())
    }

    /// [`hymn_line`] at 150 BPM could be 8ths at 75, and alone is heard
    /// so (the tunes are mostly in 8ths); after a phrase heard at 150, it is heard at 150.
    #[test]
    fn a_player_is_heard_at_the_tempo_they_set() {
        let line = hymn_line();
        let onsets = seconds(&played_live(&line, 150.0, 2), 150.0, 0.4);
        let alone = find_beat(&onsets, None).unwrap();
        assert!((alone.bpm / 75.0 - 1.0).abs() < 0.03, "{alone:?}");
        assert_beat(find_beat(&onsets, Some(148.0)).unwrap(), 150.0, 0.4);
        // A player who changes tempo by a third, or slows down to 3/5 of it, is followed.
        let slower = seconds(&played_live(&folk_tune(0), 90.0, 4), 90.0, 0.4);
        assert_beat(find_beat(&slower, Some(150.0)).unwrap(), 90.0, 0.4);
        let tune = seconds(&played_live(&folk_tune(0), 150.0, 4), 150.0, 0.4);
        assert_beat(find_beat(&tune, Some(110.0)).unwrap(), 150.0, 0.4);
    }

    /// The embedded tunes put most onsets on the beat, and a note a beat long starts on the
    /// beat far more often than off it: what tells the beat from the off-beat in a run of 8ths.
    #[test]
    fn the_rhythm_model_knows_where_beats_fall() {
        let model = RhythmModel::embedded();
        let (on, off) = (0_i64, 6_i64);
        assert!(model.position[0] > model.position[6]);
        assert!(model.position[6] > model.position[1] + 3.0);
        assert!(model.step(Some(on), on + 12) > model.step(Some(off), off + 12) + 0.5);
        assert!(model.step(Some(on), on + 6) > model.step(Some(on), on + 5) + 3.0);
    }

    #[test]
    fn chords_count_once_and_the_order_does_not_matter() {
        let tune = folk_tune(0);
        let mut onsets = seconds(&tune, 95.0, 0.0);
        let chord_notes: Vec<f64> = onsets.iter().step_by(4).map(|t| t + 0.012).collect();
        onsets.extend(chord_notes);
        onsets.reverse();
        assert_beat(find_beat(&onsets, None).unwrap(), 95.0, 0.0);
    }

    #[test]
    fn too_few_onsets_give_no_beat() {
        assert_eq!(find_beat(&[0.0, 0.5, 1.0], None), None);
        assert_eq!(find_beat(&[0.0, 0.01, 0.02, 0.03, 0.5], None), None);
        assert_eq!(find_beat(&[], None), None);
        assert_eq!(find_beat(&[f64::NAN, 0.0, 1.0, 2.0], None), None);
    }
}
