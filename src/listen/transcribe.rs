//! From what a player's hands did to notation the engines read as they read the corpus: the
//! phrase's rhythmic grid, onsets on it, one melodic line, and the chords under it.
//!
//! Players are not notation. Their onsets spread around the beat by tens of milliseconds, legato
//! notes overlap the next, a grace note or a slip lands just before the note meant, the left hand
//! strikes chords. Read literally, the engines take the jitter for rhythm, the overlaps for
//! chords and the slips for ornaments, and continue all of it. So, per phrase:
//! 1. the grid is the one of [`Grid::ALL`] the onsets fit best (swung 8ths are straight 8ths
//!    played late: they are written straight, and the swing is measured); slips are left out;
//! 2. onsets and releases snap to the grid;
//! 3. notes on one onset are a chord: the melody is its highest note, the rest is harmony, but a
//!    note shorter than [`SLIP_BEATS`] next to a longer one was a slip or a grace note, and goes
//!    (a phrase of chords only stays as it is);
//! 4. the line is one voice: a note ends where the next one starts.
//!
//! Clean notation comes through unchanged: its onsets and releases are on the grid.

use crate::music::Note;

/// A note shorter than this (in beats, a 32nd) struck with a longer one is a slip or a grace
/// note; such notes do not count for the grid either.
pub const SLIP_BEATS: f64 = 0.125;
/// A gap before the next note shorter than this share of the time between their onsets, after
/// a release off the grid, is articulation (the note played detached), not a rest.
const DETACHED: f64 = 0.45;
/// A release this little after a grid point (beats, a 16th) is a note held a little past its
/// end there.
const HELD_OVER_BEATS: f64 = 0.0625;
/// A grid must fit the onsets this much better (in mean squared distance) than a grid before it
/// in [`Grid::ALL`] to be chosen over it: the simpler reading wins a near tie.
const BETTER_FIT: f64 = 0.5;

/// A rhythmic grid within the beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grid {
    /// Sixteenth notes: four points a beat.
    #[default]
    Straight16,
    /// Eighth notes played long-short: the off-beat falls at two thirds of the beat (16ths, and
    /// the off-beat of a run of them, stay where they are); written as straight eighths.
    Swung8,
    /// Eighth-note triplets: three points a beat.
    Triplet8,
}

impl Grid {
    /// Its name, as the panel shows it.
    pub fn label(self) -> &'static str {
        match self {
            Grid::Straight16 => "straight",
            Grid::Swung8 => "swung 8ths",
            Grid::Triplet8 => "triplets",
        }
    }

    /// Every grid, simplest first.
    pub const ALL: [Grid; 3] = [Grid::Straight16, Grid::Swung8, Grid::Triplet8];

    /// Grid points within the beat, in beats: (as played, as written).
    fn points(self) -> &'static [(f64, f64)] {
        match self {
            Grid::Straight16 => &[
                (0.0, 0.0),
                (0.25, 0.25),
                (0.5, 0.5),
                (0.75, 0.75),
                (1.0, 1.0),
            ],
            Grid::Swung8 => &[
                (0.0, 0.0),
                (0.25, 0.25),
                (0.5, 0.5),
                (2.0 / 3.0, 0.5),
                (0.75, 0.75),
                (1.0, 1.0),
            ],
            Grid::Triplet8 => &[
                (0.0, 0.0),
                (1.0 / 3.0, 1.0 / 3.0),
                (2.0 / 3.0, 2.0 / 3.0),
                (1.0, 1.0),
            ],
        }
    }

    /// Where the played position `in_beat` (0–1 beat) is written: at its nearest point's
    /// written place, as far from it as played (so the swing is taken out).
    fn written(self, in_beat: f64) -> f64 {
        let (played, written) = self
            .points()
            .iter()
            .copied()
            .min_by(|a, b| (in_beat - a.0).abs().total_cmp(&(in_beat - b.0).abs()))
            .unwrap_or((0.0, 0.0));
        written + (in_beat - played)
    }

    /// The written grid's step, in beats.
    fn written_step(self) -> f64 {
        match self {
            Grid::Straight16 | Grid::Swung8 => 0.25,
            Grid::Triplet8 => 1.0 / 3.0,
        }
    }

    /// `beat` (host beats) written on this grid: swing taken out, then onto the written grid's
    /// points every `step` beats.
    fn snap(self, beat: f64, step: f64) -> f64 {
        (self.unswung(beat) / step).round() * step
    }

    /// `beat` (host beats) with the swing taken out.
    fn unswung(self, beat: f64) -> f64 {
        let whole = beat.floor();
        whole + self.written(beat - whole)
    }

    /// Where a note written at `onset` and let go at `release` (host beats) ends as written: a
    /// release just after a grid point (a note held a little over) ends there; one between
    /// points was let go early, and ends at the next point of the note's own level (8ths for a
    /// note on an 8th, else the grid's step).
    fn written_end(self, onset: f64, release: f64) -> f64 {
        let step = self.written_step();
        if self.since_point(release) <= HELD_OVER_BEATS {
            return self.snap(release, step);
        }
        let on_eighth = (onset * 2.0 - (onset * 2.0).round()).abs() < 1e-9;
        let level = if on_eighth && self != Grid::Triplet8 {
            0.5
        } else {
            step
        };
        (self.unswung(release) / level - 1e-9).ceil() * level
    }

    /// Distance from `beat` (host beats) to the nearest of the grid's points, in beats.
    fn distance(self, beat: f64) -> f64 {
        let in_beat = beat - beat.floor();
        self.points()
            .iter()
            .map(|(p, _)| (in_beat - p).abs())
            .fold(f64::INFINITY, f64::min)
    }

    /// Mean squared distance from `onsets` (host beats) to the grid's points, in beats².
    fn misfit(self, onsets: &[f64]) -> f64 {
        let total: f64 = onsets
            .iter()
            .map(|onset| self.distance(*onset).powi(2))
            .sum();
        total / onsets.len().max(1) as f64
    }

    /// How long after the grid's last point at or before it `beat` (host beats) is, in beats.
    fn since_point(self, beat: f64) -> f64 {
        let in_beat = beat - beat.floor();
        self.points()
            .iter()
            .filter(|(p, _)| *p <= in_beat)
            .map(|(p, _)| in_beat - p)
            .fold(in_beat, f64::min)
    }
}

/// A phrase as notation.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// One line: the top voice, on the grid, each note ending by the next one's onset.
    pub melody: Vec<Note>,
    /// The other notes of the chords, on the grid.
    pub harmony: Vec<Note>,
    pub grid: Grid,
    /// What the player added to the grid.
    pub groove: Groove,
}

/// Most grid positions in a beat (16ths).
const MAX_POSITIONS: usize = 4;
/// An offset smaller than this (in beats, a 48th: a tick and a half) is the player's looseness,
/// not their groove.
pub const GROOVE_THRESHOLD_BEATS: f64 = 1.0 / 48.0;
/// The off-beat 8th's position among a beat's 16ths.
const OFF_BEAT: usize = 2;
/// The last triplet's position among a beat's triplet 8ths.
const LAST_TRIPLET: usize = 2;
/// A mean offset is groove, not chance, beyond this many standard errors.
const SYSTEMATIC: f64 = 2.5;

/// What a player adds to the grid, per written position in the beat (16ths, or triplet 8ths):
/// how early or late their notes come there (swing is a late off-beat) and how hard they play
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Groove {
    /// The grid it was measured on.
    grid: Grid,
    /// Positions in the beat (0 before anything is heard).
    positions: usize,
    /// Mean of played minus written onset, in beats, at each position.
    offsets: [f64; MAX_POSITIONS],
    /// Mean velocity at each position.
    velocities: [f64; MAX_POSITIONS],
    counts: [u32; MAX_POSITIONS],
    /// On a swung grid: the mean offset of the off-beat 8ths played swung (beats), and how many
    /// there were (the off-beats of 16th runs, played straight, are not swing).
    swing: f64,
    swung: u32,
    /// How far single onsets stray from their position's mean offset (pooled standard
    /// deviation, beats): the player's looseness.
    spread: f64,
    /// Mean velocity of all the line's notes.
    mean_velocity: f64,
}

impl Groove {
    /// The groove of `line`: (written, played) notes on `grid`.
    fn measure(line: &[(Note, Note)], grid: Grid) -> Self {
        let positions = (1.0 / grid.written_step()).round() as usize;
        let mut groove = Groove {
            grid,
            positions,
            ..Groove::default()
        };
        for (written, played) in line {
            let at = groove.position(written.onset_beats);
            groove.offsets[at] += played.onset_beats - written.onset_beats;
            groove.velocities[at] += f64::from(played.velocity);
            groove.counts[at] += 1;
            groove.mean_velocity += f64::from(played.velocity);
            let in_beat = played.onset_beats.rem_euclid(1.0);
            if grid == Grid::Swung8 && at == OFF_BEAT && in_beat > 7.0 / 12.0 {
                groove.swing += played.onset_beats - written.onset_beats;
                groove.swung += 1;
            }
        }
        groove.swing /= f64::from(groove.swung.max(1));
        for at in 0..positions {
            let count = f64::from(groove.counts[at].max(1));
            groove.offsets[at] /= count;
            groove.velocities[at] /= count;
        }
        let squares: f64 = line
            .iter()
            .map(|(written, played)| {
                let offset = played.onset_beats - written.onset_beats;
                (offset - groove.offsets[groove.position(written.onset_beats)]).powi(2)
            })
            .sum();
        let used = groove.counts.iter().filter(|c| **c > 0).count();
        groove.spread = (squares / line.len().saturating_sub(used).max(1) as f64).sqrt();
        groove.mean_velocity /= line.len().max(1) as f64;
        groove
    }

    /// The grid the groove was measured on (the phrase's).
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// The grid position of `beat` (host beats) in its beat.
    fn position(&self, beat: f64) -> usize {
        let positions = self.positions.max(1);
        ((beat.rem_euclid(1.0) * positions as f64).round() as usize) % positions
    }

    /// How late (or, negative, early) the player plays `beat`'s grid position, in beats: their
    /// mean offset there if it is systematic (two notes or more, beyond
    /// [`GROOVE_THRESHOLD_BEATS`], and beyond what their looseness makes of a mean by chance:
    /// [`SYSTEMATIC`] standard errors), else 0.
    ///
    /// A phrase heard swung says so itself: one swung off-beat 8th is enough to swing the
    /// answer's. In a phrase heard in triplets, an off-beat 8th is played as the last triplet of
    /// its beat, as the player played theirs.
    pub fn offset_at(&self, beat: f64) -> f64 {
        let at = self.position(beat);
        let (offset, count, needed) = match self.grid {
            Grid::Swung8 if at == OFF_BEAT => (self.swing, self.swung, 1),
            _ => (self.offsets[at], self.counts[at], 2),
        };
        let chance = SYSTEMATIC * self.spread / f64::from(count.max(1)).sqrt();
        let groove = if count >= needed && offset.abs() > GROOVE_THRESHOLD_BEATS.max(chance) {
            offset
        } else {
            0.0
        };
        let off_beat_eighth = (beat.rem_euclid(1.0) - 0.5).abs() < 1e-6;
        if self.grid == Grid::Triplet8 && off_beat_eighth && self.counts[LAST_TRIPLET] > 0 {
            1.0 / 6.0 + groove
        } else {
            groove
        }
    }

    /// How much harder (or, negative, softer) than their mean the player plays `beat`'s grid
    /// position, in velocity steps (0 where they played nothing).
    pub fn accent_at(&self, beat: f64) -> f64 {
        let at = self.position(beat);
        if self.counts[at] > 0 {
            self.velocities[at] - self.mean_velocity
        } else {
            0.0
        }
    }
}

/// The phrase `notes` (onsets in host beats, any order) as notation.
pub fn transcribe(notes: &[Note]) -> Transcription {
    let onsets: Vec<f64> = notes
        .iter()
        .filter(|n| n.duration_beats >= SLIP_BEATS)
        .map(|n| n.onset_beats)
        .collect();
    let grid = Grid::ALL
        .into_iter()
        .reduce(|best, next| {
            if next.misfit(&onsets) < BETTER_FIT * best.misfit(&onsets) {
                next
            } else {
                best
            }
        })
        .unwrap_or(Grid::Straight16);
    let step = grid.written_step();
    // Releases snap to the grid too: a note let go a little early or late is not a 32nd rest
    // or a tied 32nd.
    // Each note on the grid, with how it was played.
    let mut snapped: Vec<(Note, Note)> = notes
        .iter()
        .map(|n| {
            let onset = grid.snap(n.onset_beats, step);
            let end = grid.written_end(onset, n.end_beats()).max(onset + step);
            let written = Note {
                onset_beats: onset,
                duration_beats: end - onset,
                ..*n
            };
            (written, *n)
        })
        .collect();
    snapped.sort_by(|(a, _), (b, _)| {
        a.onset_beats
            .total_cmp(&b.onset_beats)
            .then(b.pitch.cmp(&a.pitch))
    });
    let (line, harmony) = top_voice(snapped);
    let groove = Groove::measure(&line, grid);
    Transcription {
        melody: one_line(&line, grid),
        harmony,
        grid,
        groove,
    }
}

/// The highest note of each onset (slips aside) and the others; a phrase of chords only (two or
/// more notes on every onset) is its own line. `sorted` by written onset: (written, played)
/// notes; the line keeps both, the harmony the written ones.
fn top_voice(sorted: Vec<(Note, Note)>) -> (Vec<(Note, Note)>, Vec<Note>) {
    let chords: Vec<&[(Note, Note)]> = sorted
        .chunk_by(|(a, _), (b, _)| a.onset_beats == b.onset_beats)
        .collect();
    if !chords.is_empty() && chords.iter().all(|c| c.len() > 1) {
        return (sorted.clone(), Vec::new());
    }
    let mut line = Vec::with_capacity(chords.len());
    let mut harmony = Vec::new();
    for chord in chords {
        let longest = chord
            .iter()
            .map(|(_, played)| played.duration_beats)
            .fold(0.0, f64::max);
        let meant =
            |played: &Note| played.duration_beats >= SLIP_BEATS || played.duration_beats >= longest;
        let top = (0..chord.len())
            .filter(|&i| meant(&chord[i].1))
            .max_by_key(|&i| (chord[i].0.pitch, std::cmp::Reverse(i)))
            .expect("the longest note is meant");
        line.push(chord[top]);
        harmony.extend(
            chord
                .iter()
                .enumerate()
                .filter(|&(i, (_, played))| i != top && meant(played))
                .map(|(_, (written, _))| *written),
        );
    }
    (line, harmony)
}

/// The line (one note per onset, in onset order: (written, played) on `grid`; a phrase of
/// chords only has a chord per onset) as one voice, written: each note ends by the next onset.
/// A note let go early — between grid points, not just after one (a note held a little over its
/// end), and by less than [`DETACHED`] of the time to the next note — was played detached, not
/// followed by a rest: it lasts to the next note.
fn one_line(line: &[(Note, Note)], grid: Grid) -> Vec<Note> {
    let mut written: Vec<Note> = line.iter().map(|(written, _)| *written).collect();
    for i in 0..written.len() {
        let onset = written[i].onset_beats;
        let Some(next) = (i + 1..written.len()).find(|&j| written[j].onset_beats > onset) else {
            break;
        };
        let next_onset = written[next].onset_beats;
        let (played, next_played) = (line[i].1, line[next].1);
        let note = &mut written[i];
        let between = next_onset - note.onset_beats;
        let gap = next_played.onset_beats - played.end_beats();
        let played_between = next_played.onset_beats - played.onset_beats;
        let early = grid.since_point(played.end_beats()) > HELD_OVER_BEATS;
        note.duration_beats = if gap > 0.0 && gap < DETACHED * played_between && early {
            between
        } else {
            note.duration_beats.min(between)
        };
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::performance::{played_live, swung, with_chords};
    use crate::test_kit::{folk_tune, melody};

    const TEMPO: f64 = 120.0;

    fn pitches_and_onsets(notes: &[Note]) -> Vec<(u8, f64)> {
        notes.iter().map(|n| (n.pitch, n.onset_beats)).collect()
    }

    /// Notation comes through unchanged.
    #[test]
    fn clean_notation_is_unchanged() {
        let tune = folk_tune(0);
        let heard = transcribe(&tune);
        assert_eq!(heard.melody, tune);
        assert_eq!(heard.grid, Grid::Straight16);
        assert!(heard.harmony.is_empty());
        // Written staccato (released on the grid) keeps its rests.
        let staccato: Vec<Note> = tune
            .iter()
            .map(|n| Note {
                duration_beats: n.duration_beats - 0.25 * f64::from(n.duration_beats >= 0.5),
                ..*n
            })
            .collect();
        assert_eq!(transcribe(&staccato).melody, staccato);
    }

    /// Notes let go early, between grid points, were played detached: they are written to the
    /// next note, or to the next 8th before a rest, which stays a rest.
    #[test]
    fn detached_notes_are_written_legato() {
        let tune = melody(0.0, &[(60, 0.5), (62, 0.5), (64, 1.0), (0, 1.0), (65, 1.0)]);
        let detached: Vec<Note> = tune
            .iter()
            .map(|n| Note {
                duration_beats: n.duration_beats * 0.7,
                ..*n
            })
            .collect();
        assert_eq!(transcribe(&detached).melody, tune);
    }

    /// Played live (jitter, legato overlaps, early releases, other velocities) the tune is
    /// heard as written: the same notes on the same onsets, one voice.
    #[test]
    fn a_live_phrase_is_heard_as_written() {
        let tune = folk_tune(2);
        for seed in 0..20 {
            let live = played_live(&tune, TEMPO, seed);
            let heard = transcribe(&live);
            assert_eq!(heard.grid, Grid::Straight16, "seed {seed}");
            assert_eq!(
                pitches_and_onsets(&heard.melody),
                pitches_and_onsets(&tune),
                "seed {seed}"
            );
            for pair in heard.melody.windows(2) {
                assert!(
                    pair[0].end_beats() <= pair[1].onset_beats + 1e-9,
                    "{pair:?}"
                );
            }
            assert!(heard.melody.iter().all(|n| n.duration_beats > 0.0));
            // Loose timing is no groove.
            for position in [0.0, 0.25, 0.5, 0.75] {
                assert_eq!(heard.groove.offset_at(position), 0.0, "seed {seed}");
            }
        }
    }

    /// Chords under the melody are harmony; the melody is the top voice, as written.
    #[test]
    fn the_melody_over_chords_is_its_top_voice() {
        let tune = folk_tune(0);
        let played = played_live(&with_chords(&tune, 4.0), TEMPO, 7);
        let heard = transcribe(&played);
        assert_eq!(pitches_and_onsets(&heard.melody), pitches_and_onsets(&tune));
        // Each bar's triad, under the melody note it was struck with.
        assert_eq!(heard.harmony.len(), 3 * 7, "{:?}", heard.harmony);
        for h in &heard.harmony {
            let over = heard.melody.iter().find(|m| m.onset_beats == h.onset_beats);
            assert!(
                over.is_some_and(|m| m.pitch > h.pitch),
                "{h:?} under {over:?}"
            );
        }
    }

    /// A phrase of chords only stays chords, each chord held to the next.
    #[test]
    fn chords_alone_stay_chords() {
        let chords = with_chords(&[], 4.0);
        assert!(transcribe(&chords).melody.is_empty());
        let mut block = Vec::new();
        for (i, root) in [48u8, 53, 55, 48].into_iter().enumerate() {
            for offset in [0, 4, 7] {
                block.push(crate::test_kit::note(root + offset, i as f64, 1.0));
            }
        }
        let melody = transcribe(&block).melody;
        assert_eq!(melody.len(), 12);
        assert!(melody.iter().all(|n| n.duration_beats == 1.0), "{melody:?}");
    }

    /// Swung 8ths are written straight, and the swing is measured.
    #[test]
    fn swung_eighths_are_written_straight() {
        let eighths = [(62, 0.5), (66, 0.5), (69, 0.5), (66, 0.5), (71, 1.0)];
        let tune = melody(0.0, &eighths.repeat(4));
        let heard = transcribe(&played_live(&swung(&tune), TEMPO, 3));
        assert_eq!(heard.grid, Grid::Swung8);
        assert_eq!(pitches_and_onsets(&heard.melody), pitches_and_onsets(&tune));
        // The off-beat comes a sixth of a beat late; the beat itself on time.
        let swing = heard.groove.offset_at(0.5);
        assert!((swing - 1.0 / 6.0).abs() < 0.02, "{swing}");
        assert_eq!(heard.groove.offset_at(0.0), 0.0);
        assert_eq!(transcribe(&tune).groove.offset_at(0.5), 0.0);
    }

    /// Triplets are heard as triplets.
    #[test]
    fn triplets_are_heard_on_the_triplet_grid() {
        let third = 1.0 / 3.0;
        let written = melody(
            0.0,
            &[(60, third), (62, third), (64, third), (65, 1.0)].repeat(3),
        );
        let heard = transcribe(&played_live(&written, TEMPO, 5));
        assert_eq!(heard.grid, Grid::Triplet8);
        for (h, w) in heard.melody.iter().zip(&written) {
            assert!((h.onset_beats - w.onset_beats).abs() < 1e-9, "{h:?} {w:?}");
        }
    }

    /// A grace note struck just before the note meant is dropped.
    #[test]
    fn a_grace_note_before_its_note_is_dropped() {
        let written = melody(0.0, &[(60, 1.0), (64, 1.0), (67, 1.0)]);
        let mut played = written.clone();
        // 50 ms (a tenth of a beat at 120 BPM) before the 64, 30 ms long.
        played.push(crate::test_kit::note(65, 0.9, 0.06));
        let heard = transcribe(&played);
        assert_eq!(
            pitches_and_onsets(&heard.melody),
            pitches_and_onsets(&written)
        );
    }
}
