//! Free tempo: the player's beat — their tempo and where their beats fall — heard from a
//! phrase's onsets, for when the transport is stopped and the player keeps their own time.
//!
//! A beat is a reading of the onsets: every onset lands on a point of a grid of twelve points a
//! beat (16ths and triplets), a little early or late. Many readings fit any phrase (the same
//! notes are 8ths at 140 BPM or 16ths at 70), so each reading is scored as a musician would
//! weigh it: how closely the onsets fit its grid (players spread by tens of milliseconds, not
//! more), how usual each onset's place in the beat is, and how usual each time between onsets
//! is, in the tunes WaveJam learned from ([`POSITION_SHARE`], [`INTERVAL_SHARE`]: most notes
//! fall on the beat or the off-beat 8th, most intervals are an 8th or a 16th). The best reading
//! among tempos of [`SLOWEST_BPM`]–[`FASTEST_BPM`] is then fitted to the onsets by least squares.
//!
//! Time is in seconds here; the caller converts from its clock.

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
/// How far a player's onsets spread around the grid (standard deviation, seconds).
const SPREAD_SECONDS: f64 = 0.025;
/// Ratio between neighbouring candidate tempos (0.5 %).
const TEMPO_STEP: f64 = 1.005;
/// Grid points per beat: 16ths and triplets.
const POINTS_PER_BEAT: i64 = 12;
/// Share of anything the tables below leave out (a position or an interval never seen).
const RARE: f64 = 0.001;

/// Share of onsets at each twelfth of the beat in the embedded tunes (a unit test recounts
/// them): on the beat, the off-beat 8th, the 16ths, the triplets.
const POSITION_SHARE: [f64; 12] = [
    0.479, RARE, RARE, 0.049, 0.011, RARE, 0.337, RARE, 0.013, 0.096, RARE, RARE,
];

/// Share of times between onsets, in twelfths of a beat (index), in the embedded tunes (a unit
/// test recounts them); longer ones share [`RARE`].
const INTERVAL_SHARE: [f64; 25] = [
    RARE, RARE, 0.009, 0.235, 0.031, RARE, 0.528, RARE, RARE, 0.048, RARE, RARE, 0.114, RARE, RARE,
    RARE, RARE, RARE, 0.009, RARE, RARE, RARE, RARE, RARE, 0.009,
];

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
pub fn find_beat(onsets: &[f64]) -> Option<PlayerBeat> {
    let onsets = distinct_onsets(onsets);
    if onsets.len() < MIN_ONSETS {
        return None;
    }
    let mut best: Option<(f64, PlayerBeat)> = None;
    let mut bpm = SLOWEST_BPM;
    while bpm <= FASTEST_BPM {
        for &anchor in &onsets {
            let guess = PlayerBeat {
                bpm,
                phase_seconds: anchor,
            };
            let Some(fitted) = refit(&onsets, guess) else {
                continue;
            };
            let score = log_likelihood(&onsets, fitted);
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, fitted));
            }
        }
        bpm *= TEMPO_STEP;
    }
    best.map(|(_, beat)| beat)
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

/// The grid point (in twelfths of a beat from `beat`'s phase) the onset at `t` was most likely
/// meant for, and how likely that is (log): the usual places weigh against the closer ones, so
/// an 8th played a little late is still an 8th, not the rare point next to it.
fn place(t: f64, beat: PlayerBeat) -> (i64, f64) {
    let step = beat.seconds() / POINTS_PER_BEAT as f64;
    let nearest = ((t - beat.phase_seconds) / step).round() as i64;
    (nearest - 2..=nearest + 2)
        .map(|index| {
            let miss = t - beat.phase_seconds - index as f64 * step;
            let share = POSITION_SHARE[index.rem_euclid(POINTS_PER_BEAT) as usize];
            let score = share.ln() - miss * miss / (2.0 * SPREAD_SECONDS * SPREAD_SECONDS);
            (index, score)
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((nearest, f64::MIN))
}

/// The least-squares beat through `onsets` on the grid points `guess` puts them on; `None` if
/// they all land on one point or the fit leaves the tempo range.
fn refit(onsets: &[f64], guess: PlayerBeat) -> Option<PlayerBeat> {
    let n = onsets.len() as f64;
    let points: Vec<f64> = onsets
        .iter()
        .map(|&t| place(t, guess).0 as f64 / POINTS_PER_BEAT as f64)
        .collect();
    let mean_x = points.iter().sum::<f64>() / n;
    let mean_t = onsets.iter().sum::<f64>() / n;
    let (mut sxx, mut sxt) = (0.0, 0.0);
    for (x, t) in points.iter().zip(onsets) {
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
    if !(SLOWEST_BPM * 0.98..=FASTEST_BPM * 1.02).contains(&bpm) {
        return None;
    }
    Some(PlayerBeat {
        bpm,
        phase_seconds: mean_t - seconds * mean_x,
    })
}

/// How likely `onsets` are under the reading `beat`: each onset's place (see [`place`]) and
/// the share of each time between onsets.
fn log_likelihood(onsets: &[f64], beat: PlayerBeat) -> f64 {
    let mut score = 0.0;
    let mut previous: Option<i64> = None;
    for &t in onsets {
        let (index, placed) = place(t, beat);
        score += placed;
        if let Some(previous) = previous {
            let interval = usize::try_from(index - previous).unwrap_or(0);
            // NOTE: two onsets on one grid point are a reading that hears a chord in a run.
            let share = match interval {
                0 => RARE * RARE,
                i => INTERVAL_SHARE.get(i).copied().unwrap_or(RARE),
            };
            score += share.ln();
        }
        previous = Some(index);
    }
    score
}

#[cfg(test)]
mod tests {
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
            assert_beat(find_beat(&onsets).unwrap(), bpm, 1.3);
        }
    }

    #[test]
    fn chords_count_once_and_the_order_does_not_matter() {
        let tune = folk_tune(0);
        let mut onsets = seconds(&tune, 95.0, 0.0);
        let chord_notes: Vec<f64> = onsets.iter().step_by(4).map(|t| t + 0.012).collect();
        onsets.extend(chord_notes);
        onsets.reverse();
        assert_beat(find_beat(&onsets).unwrap(), 95.0, 0.0);
    }

    #[test]
    fn too_few_onsets_give_no_beat() {
        assert_eq!(find_beat(&[0.0, 0.5, 1.0]), None);
        assert_eq!(find_beat(&[0.0, 0.01, 0.02, 0.03, 0.5]), None);
        assert_eq!(find_beat(&[]), None);
        assert_eq!(find_beat(&[f64::NAN, 0.0, 1.0, 2.0]), None);
    }

    /// The tables are the embedded tunes' counts: recount them.
    #[test]
    fn the_rhythm_tables_are_the_corpus_counts() {
        let vocabulary = crate::music::encoding::Vocabulary::default();
        let tunes = crate::assets::default_tunes().unwrap();
        let mut positions = [0.0; 12];
        let mut intervals = [0.0; 25];
        let (mut onsets, mut gaps) = (0.0, 0.0);
        for tune in &tunes {
            let notes = vocabulary.decode_ids(tune);
            let twelfths: Vec<i64> = notes
                .iter()
                .map(|n| (n.onset_beats * 24.0).round() as i64)
                .filter(|ticks| ticks % 2 == 0)
                .map(|ticks| ticks / 2)
                .collect();
            for t in &twelfths {
                positions[t.rem_euclid(12) as usize] += 1.0;
            }
            onsets += notes.len() as f64;
            for pair in twelfths.windows(2) {
                if let Some(slot) = intervals.get_mut((pair[1] - pair[0]) as usize) {
                    *slot += 1.0;
                }
            }
            gaps += notes.len().saturating_sub(1) as f64;
        }
        for (i, share) in POSITION_SHARE.iter().enumerate() {
            let counted = positions[i] / onsets;
            assert!((counted.max(RARE) - share).abs() < 0.005, "position {i}");
        }
        for (i, share) in INTERVAL_SHARE.iter().enumerate() {
            let counted = intervals[i] / gaps;
            assert!((counted.max(RARE) - share).abs() < 0.005, "interval {i}");
        }
    }
}
