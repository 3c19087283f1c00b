//! Notation played the way people play it: loose onsets, legato overlaps and early releases,
//! a left hand of chords, swing. Seeded, so the same tune and seed always make the same
//! performance: the listening checks ([`crate::lab::listening`]) and the tests play these.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::music::key::{find_key, Key};
use crate::music::Note;

/// How far a live onset strays (one standard deviation), in seconds.
pub const ONSET_SPREAD_SECONDS: f64 = 0.012;
/// Mean and spread (one standard deviation) of live velocities.
pub const LIVE_VELOCITY: (f64, f64) = (85.0, 12.0);

/// A number from a seeded stream, about normally distributed (mean 0, deviation 1, within ±3:
/// a sum of uniforms).
fn about_normal(rng: &mut ChaCha8Rng) -> f64 {
    let sum: f64 = (0..12).map(|_| rng.random_range(0.0..1.0)).sum();
    (sum - 6.0).clamp(-3.0, 3.0)
}

/// `notes` played as a keyboard player plays them at `tempo_bpm`: onsets spread by
/// [`ONSET_SPREAD_SECONDS`], every other note held 20–80 ms into the next, the others released
/// 10–40 % early, velocities [`LIVE_VELOCITY`]. Seeded: the same `seed` plays the same way.
pub fn played_live(notes: &[Note], tempo_bpm: f64, seed: u64) -> Vec<Note> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let beats_per_second = tempo_bpm / 60.0;
    notes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let onset =
                n.onset_beats + about_normal(&mut rng) * ONSET_SPREAD_SECONDS * beats_per_second;
            let end = if i % 2 == 0 {
                n.end_beats() + rng.random_range(0.020..0.080) * beats_per_second
            } else {
                n.end_beats() - n.duration_beats * rng.random_range(0.1..0.4)
            };
            let (mean, spread) = LIVE_VELOCITY;
            let velocity = (mean + about_normal(&mut rng) * spread).round() as u8;
            Note {
                onset_beats: onset,
                duration_beats: end - onset,
                velocity,
                ..*n
            }
        })
        .collect()
}

/// `notes` played legato at `tempo_bpm`: onsets spread as by [`played_live`] (seeded), every
/// note held 30 ms past its written end, into the next.
pub fn played_legato(notes: &[Note], tempo_bpm: f64, seed: u64) -> Vec<Note> {
    let hold = 0.030 * tempo_bpm / 60.0;
    played_live(notes, tempo_bpm, seed)
        .iter()
        .zip(notes)
        .map(|(played, written)| Note {
            onset_beats: played.onset_beats,
            duration_beats: written.end_beats() + hold - played.onset_beats,
            ..*written
        })
        .collect()
}

/// `notes` with a left hand: in each bar of `bar_beats` (from the first note's bar to the last
/// note's), the triad of the tune's key ([`find_key`]) that holds most of the bar's melody,
/// struck with the bar's first note (or its line) and held to the bar's end, below the
/// melody: its top an octave or more under the bar's lowest note.
pub fn with_chords(notes: &[Note], bar_beats: f64) -> Vec<Note> {
    let mut all = notes.to_vec();
    if notes.is_empty() || bar_beats.is_nan() || bar_beats <= 0.0 {
        return all;
    }
    let key = find_key(notes);
    let first = notes.iter().map(|n| n.onset_beats).fold(f64::MAX, f64::min);
    let last = notes.iter().map(|n| n.onset_beats).fold(f64::MIN, f64::max);
    let mut bar = (first / bar_beats).floor() * bar_beats;
    while bar <= last {
        let start = bar.max(first);
        let end = bar + bar_beats;
        let in_bar: Vec<&Note> = notes
            .iter()
            .filter(|n| n.onset_beats < end && n.end_beats() > start)
            .collect();
        if let Some(lowest) = in_bar.iter().map(|n| n.pitch).min() {
            let triad = best_triad(key, &in_bar);
            let top_limit = lowest.saturating_sub(12);
            for pitch in voiced_below(triad, top_limit) {
                all.push(Note {
                    pitch,
                    velocity: 70,
                    onset_beats: start,
                    duration_beats: end - start,
                });
            }
        }
        bar += bar_beats;
    }
    all
}

/// Pitch classes of the diatonic triads of `key` (on each degree of its scale: for a minor
/// key, natural minor with a major dominant), the primary ones first: I, IV, V, vi, ii, iii,
/// vii.
fn diatonic_triads(key: Key) -> Vec<[u8; 3]> {
    let scale: [u8; 7] = if key.minor {
        [0, 2, 3, 5, 7, 8, 10]
    } else {
        [0, 2, 4, 5, 7, 9, 11]
    };
    [0, 3, 4, 5, 1, 2, 6]
        .into_iter()
        .map(|degree| {
            let mut triad = [0u8; 3];
            for (i, step) in [0, 2, 4].into_iter().enumerate() {
                let mut interval = scale[(degree + step) % 7];
                // The minor key's dominant takes the leading tone.
                if key.minor && degree == 4 && step == 2 {
                    interval = 11;
                }
                triad[i] = (key.tonic + interval) % 12;
            }
            triad
        })
        .collect()
}

/// The diatonic triad holding the longest share of `melody` (ties: the primary triad).
fn best_triad(key: Key, melody: &[&Note]) -> [u8; 3] {
    diatonic_triads(key)
        .into_iter()
        .map(|triad| {
            let held: f64 = melody
                .iter()
                .filter(|n| triad.contains(&(n.pitch % 12)))
                .map(|n| n.duration_beats)
                .sum();
            (held, triad)
        })
        .fold(None, |best: Option<(f64, [u8; 3])>, next| match best {
            Some(b) if b.0 >= next.0 => Some(b),
            _ => Some(next),
        })
        .map_or(
            [key.tonic, (key.tonic + 4) % 12, (key.tonic + 7) % 12],
            |b| b.1,
        )
}

/// `triad` (root, third, fifth pitch classes) in root position with its top at or below
/// `top_limit` (never below MIDI 24).
fn voiced_below(triad: [u8; 3], top_limit: u8) -> [u8; 3] {
    let up = |from: u8, class: u8| from + (class + 12 - from % 12) % 12;
    let place = |root: u8| {
        let third = up(root + 1, triad[1]);
        [root, third, up(third + 1, triad[2])]
    };
    let mut root = up(24, triad[0]);
    while place(root + 12)[2] <= top_limit {
        root += 12;
    }
    place(root)
}

/// `notes` swung: every note on an off-beat 8th moves to two thirds of its beat (2:1), and the
/// note before it ends there — except in beats with 16ths, which a swing player plays straight.
pub fn swung(notes: &[Note]) -> Vec<Note> {
    let sixteenths_in = |whole: f64| {
        notes.iter().any(|n| {
            let at = n.onset_beats - whole;
            (at - 0.25).abs() < 1e-9 || (at - 0.75).abs() < 1e-9
        })
    };
    let swing = |beat: f64| {
        let whole = beat.floor();
        if ((beat - whole) - 0.5).abs() < 1e-9 && !sixteenths_in(whole) {
            whole + 2.0 / 3.0
        } else {
            beat
        }
    };
    notes
        .iter()
        .map(|n| {
            let onset = swing(n.onset_beats);
            Note {
                onset_beats: onset,
                duration_beats: swing(n.end_beats()) - onset,
                ..*n
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::folk_tune;

    #[test]
    fn a_live_performance_is_seeded_and_loose_within_bounds() {
        let tune = folk_tune(0);
        let live = played_live(&tune, 120.0, 7);
        assert_eq!(live, played_live(&tune, 120.0, 7));
        assert_ne!(live, played_live(&tune, 120.0, 8));
        let spread = 3.0 * ONSET_SPREAD_SECONDS * 2.0;
        for (played, written) in live.iter().zip(&tune) {
            assert!((played.onset_beats - written.onset_beats).abs() <= spread + 1e-9);
            assert_eq!(played.pitch, written.pitch);
        }
    }

    /// In D major, a bar of D and F# gets D major below it, a bar of G and B gets G major; a
    /// bar's chord tops out an octave or more under its lowest note.
    #[test]
    fn chords_are_the_keys_triads_below_the_melody() {
        let tune = folk_tune(0);
        let chords = with_chords(&tune, 4.0);
        let left: Vec<&Note> = chords[tune.len()..].iter().collect();
        assert_eq!(left.len() % 3, 0);
        let key = find_key(&tune);
        for chord in left.chunks(3) {
            let lowest_above = tune
                .iter()
                .filter(|n| {
                    n.onset_beats < chord[0].end_beats() && n.end_beats() > chord[0].onset_beats
                })
                .map(|n| n.pitch)
                .min()
                .unwrap();
            assert!(chord.iter().all(|n| n.pitch + 12 <= lowest_above));
            assert!(chord.iter().all(|n| key.contains(n.pitch)));
        }
        let d_major = Key {
            tonic: 2,
            minor: false,
        };
        let bar = |pitches: [u8; 2]| {
            let melody: Vec<Note> = pitches
                .iter()
                .map(|&p| Note {
                    pitch: p,
                    velocity: 80,
                    onset_beats: 0.0,
                    duration_beats: 1.0,
                })
                .collect();
            let refs: Vec<&Note> = melody.iter().collect();
            best_triad(d_major, &refs)
        };
        assert_eq!(bar([62, 66]), [2, 6, 9]);
        assert_eq!(bar([67, 71]), [7, 11, 2]);
    }
}
