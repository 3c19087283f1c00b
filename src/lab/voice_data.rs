//! Training audio for the neural voices (issue #13): phrases of the corpus' training split (the
//! embedded melodies, [`crate::assets::default_tunes`]) played by an instrument of the FluidR3
//! GM soundfont ([`crate::lab::fluidsynth`]) over its whole range, at several velocities and
//! tempos, as numbered WAV files with the MIDI file of each beside it (`wavejam voice-data`).
//!
//! Everything is drawn from one seeded generator, so a seed gives the same files.

use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::assets::default_tunes;
use crate::lab::fluidsynth;
use crate::lab::render::{write_wav, WavFormat};
use crate::music::encoding::Vocabulary;
use crate::music::Note;

/// A General MIDI instrument of the soundfont and the keys it plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Instrument {
    /// Lower-case name, the voice's folder name.
    pub name: &'static str,
    /// General MIDI program, 0-based.
    pub program: u8,
    /// Lowest MIDI key the phrases use.
    pub lowest: u8,
    /// Highest MIDI key the phrases use.
    pub highest: u8,
}

/// The fiddle: FluidR3's Violin, from its open G string (G3, 55) to A6 (93).
///
/// NOTE: FluidR3's Violin has sample zones up to key 101 but none for key 94 (A#6), which plays
/// silence; 93 is the top of its unbroken range (above any fiddle tune of the corpus anyway).
pub const FIDDLE: Instrument = Instrument {
    name: "fiddle",
    program: 40,
    lowest: 55,
    highest: 93,
};

/// The flute: FluidR3's Flute, from C4 (60) to C7 (96), a concert flute's range.
pub const FLUTE: Instrument = Instrument {
    name: "flute",
    program: 73,
    lowest: 60,
    highest: 96,
};

/// Every voice's instrument.
pub const INSTRUMENTS: [Instrument; 2] = [FIDDLE, FLUTE];

/// The phrases' velocities, in turn, from soft to loud (FluidR3's Violin and Flute play the
/// same samples at every velocity, louder with it; the flute's release lengthens with it).
pub const VELOCITY_LEVELS: [u8; 4] = [45, 70, 95, 120];
/// Each note's velocity is its phrase's level ± up to this.
const VELOCITY_SPREAD: i16 = 6;
/// The phrases' tempos, in BPM (drawn uniformly, whole BPM).
const TEMPO_BPM: std::ops::RangeInclusive<u32> = 80..=140;
/// The phrases' lengths, in seconds (drawn uniformly; a whole number of beats).
const PHRASE_S: std::ops::Range<f64> = 8.0..16.0;
/// A phrase has at least this many notes.
const MIN_NOTES: usize = 4;
/// Draws that may fail in a row (a window of too few notes, a span wider than the instrument's
/// range) before the tunes are declared unusable.
const MAX_TRIES: usize = 1000;
/// The golden ratio's fractional part: the phrases' places `k × this (mod 1)` fill [0, 1)
/// evenly for any number of phrases.
const GOLDEN_FRACTION: f64 = 0.618_033_988_749_894_9;

/// What [`voice_data`] wrote (also in `summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoiceDataSummary {
    pub instrument: String,
    pub program: u8,
    pub sample_rate: u32,
    pub seed: u64,
    /// WAV files written (each with its MIDI file).
    pub files: usize,
    /// Audio written, in seconds.
    pub seconds: f64,
    pub notes: usize,
    /// The lowest and highest MIDI key played (0 and 0 if none).
    pub lowest_pitch: u8,
    pub highest_pitch: u8,
    /// Notes played on each MIDI key.
    pub notes_per_pitch: BTreeMap<u8, usize>,
    /// The phrases' velocity levels used (see [`VELOCITY_LEVELS`]).
    pub velocity_levels: Vec<u8>,
    /// The softest and loudest note played (0 and 0 if none).
    pub lowest_velocity: u8,
    pub highest_velocity: u8,
}

impl VoiceDataSummary {
    fn new(instrument: &Instrument, sample_rate: u32, seed: u64) -> Self {
        Self {
            instrument: instrument.name.into(),
            program: instrument.program,
            sample_rate,
            seed,
            files: 0,
            seconds: 0.0,
            notes: 0,
            lowest_pitch: 0,
            highest_pitch: 0,
            notes_per_pitch: BTreeMap::new(),
            velocity_levels: Vec::new(),
            lowest_velocity: 0,
            highest_velocity: 0,
        }
    }

    /// Counts a phrase of `samples` written.
    fn add(&mut self, phrase: &Phrase, samples: usize) {
        self.files += 1;
        self.seconds += samples as f64 / f64::from(self.sample_rate);
        for n in &phrase.notes {
            *self.notes_per_pitch.entry(n.pitch).or_default() += 1;
            let first = self.notes == 0;
            self.notes += 1;
            if first || n.velocity < self.lowest_velocity {
                self.lowest_velocity = n.velocity;
            }
            self.highest_velocity = self.highest_velocity.max(n.velocity);
        }
        let pitches = self.notes_per_pitch.keys();
        self.lowest_pitch = pitches.clone().next().copied().unwrap_or(0);
        self.highest_pitch = pitches.last().copied().unwrap_or(0);
        if !self.velocity_levels.contains(&phrase.velocity_level) {
            self.velocity_levels.push(phrase.velocity_level);
            self.velocity_levels.sort_unstable();
        }
    }
}

impl std::fmt::Display for VoiceDataSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let levels: Vec<String> = self.velocity_levels.iter().map(u8::to_string).collect();
        write!(
            f,
            "{} (program {}): {} files, {:.1} s of audio at {} Hz, {} notes on {} keys from {} to \
             {}, velocities {}–{} (levels {})",
            self.instrument,
            self.program,
            self.files,
            self.seconds,
            self.sample_rate,
            self.notes,
            self.notes_per_pitch.len(),
            self.lowest_pitch,
            self.highest_pitch,
            self.lowest_velocity,
            self.highest_velocity,
            levels.join(", ")
        )
    }
}

/// One phrase to render.
#[derive(Debug, Clone, PartialEq)]
struct Phrase {
    /// Beats from its first note, every key inside the instrument's range.
    notes: Vec<Note>,
    tempo_bpm: f64,
    /// The velocity its notes spread around.
    velocity_level: u8,
}

/// Phrases of `tunes` for an instrument, drawn from a seeded generator: a window of 8–16 s of
/// a random tune from one of its notes, at a random tempo, its centre moved to the next place of
/// a golden-ratio sequence across the instrument's range (see [`transposition`]), the velocity
/// levels in turn.
struct Phrases<'a> {
    tunes: &'a [Vec<Note>],
    instrument: Instrument,
    rng: ChaCha8Rng,
    /// Where the place sequence starts, in [0, 1).
    first_place: f64,
    /// Phrases drawn so far.
    drawn: usize,
}

impl<'a> Phrases<'a> {
    fn new(tunes: &'a [Vec<Note>], instrument: &Instrument, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Self {
            tunes,
            instrument: *instrument,
            first_place: rng.random(),
            rng,
            drawn: 0,
        }
    }

    /// The next phrase; an error if [`MAX_TRIES`] draws in a row find none.
    fn draw(&mut self) -> Result<Phrase, String> {
        for _ in 0..MAX_TRIES {
            if let Some(phrase) = self.try_draw() {
                self.drawn += 1;
                return Ok(phrase);
            }
        }
        Err(format!(
            "no phrase of {MIN_NOTES}+ notes within {} semitones in {MAX_TRIES} draws from {} tunes",
            self.instrument.highest.saturating_sub(self.instrument.lowest),
            self.tunes.len()
        ))
    }

    fn try_draw(&mut self) -> Option<Phrase> {
        let tune = self
            .tunes
            .get(self.rng.random_range(0..self.tunes.len().max(1)))?;
        let tempo_bpm = f64::from(self.rng.random_range(TEMPO_BPM));
        let length_beats = (self.rng.random_range(PHRASE_S) * tempo_bpm / 60.0).round();
        // Start on a note whose window ends inside the tune (the first if the tune is shorter).
        let latest_start = tune.iter().map(Note::end_beats).fold(0.0, f64::max) - length_beats;
        let starts = tune
            .partition_point(|n| n.onset_beats <= latest_start)
            .max(1);
        let start_beats = tune.get(self.rng.random_range(0..starts))?.onset_beats;
        let velocity_level = VELOCITY_LEVELS[self.drawn % VELOCITY_LEVELS.len()];
        let mut notes = excerpt(tune, start_beats, length_beats);
        let place = (self.first_place + self.drawn as f64 * GOLDEN_FRACTION).fract();
        let shift =
            transposition(&notes, &self.instrument, place).filter(|_| notes.len() >= MIN_NOTES)?;
        for n in &mut notes {
            n.pitch = (i16::from(n.pitch) + shift) as u8;
            let spread = self.rng.random_range(-VELOCITY_SPREAD..=VELOCITY_SPREAD);
            n.velocity = (i16::from(velocity_level) + spread).clamp(1, 127) as u8;
        }
        Some(Phrase {
            notes,
            tempo_bpm,
            velocity_level,
        })
    }
}

/// The notes of `tune` that start in `[start_beats, start_beats + length_beats)`, moved to start
/// at 0 and cut at the window's end.
fn excerpt(tune: &[Note], start_beats: f64, length_beats: f64) -> Vec<Note> {
    let end_beats = start_beats + length_beats;
    tune.iter()
        .filter(|n| n.onset_beats >= start_beats && n.onset_beats < end_beats)
        .map(|n| Note {
            onset_beats: n.onset_beats - start_beats,
            duration_beats: n.end_beats().min(end_beats) - n.onset_beats,
            ..*n
        })
        .collect()
}

/// The transposition in semitones that moves the centre of `notes` (halfway between its lowest
/// and highest note) to `place` in `instrument`'s range (0: its lowest key, 1: its highest,
/// evenly between), as near as it can while every note stays inside the range; none when there
/// are no notes or they span more than the range. A phrase placed near an end of the range lies
/// at that end, so the ends are played as often as the keys next to them.
fn transposition(notes: &[Note], instrument: &Instrument, place: f64) -> Option<i16> {
    let lowest = i16::from(notes.iter().map(|n| n.pitch).min()?);
    let highest = i16::from(notes.iter().map(|n| n.pitch).max()?);
    let down_to = i16::from(instrument.lowest) - lowest;
    let up_to = i16::from(instrument.highest) - highest;
    let range = f64::from(instrument.highest - instrument.lowest);
    let target = f64::from(instrument.lowest) + place.clamp(0.0, 1.0) * range;
    let centre = f64::from(lowest + highest) / 2.0;
    (down_to <= up_to).then(|| ((target - centre).round() as i16).clamp(down_to, up_to))
}

/// The embedded training melodies as notes.
fn training_tunes() -> Result<Vec<Vec<Note>>, String> {
    let vocabulary = Vocabulary::default();
    let tunes = default_tunes().map_err(|e| format!("embedded tunes: {e}"))?;
    Ok(tunes.iter().map(|ids| vocabulary.decode_ids(ids)).collect())
}

/// Renders phrases of the training melodies with `instrument` into `out` (created if needed)
/// until `minutes` of audio are written: `0000.wav`, `0001.wav`, … (mono, 32-bit float,
/// `sample_rate` Hz), each with the MIDI file fluidsynth played (`0000.mid`, …), and
/// `summary.json`. Numbered files left in `out` by an earlier run are removed first, so the
/// folder holds this run's phrases only. The same arguments write the same files.
///
/// # Errors
/// A negative or non-finite `minutes`, files that cannot be written, or a render failing (see
/// [`fluidsynth::render`]).
pub fn voice_data(
    instrument: &Instrument,
    out: &Path,
    minutes: f64,
    sample_rate: u32,
    seed: u64,
) -> Result<VoiceDataSummary, String> {
    if !(minutes.is_finite() && minutes >= 0.0) {
        return Err(format!("minutes must be 0 or more, not {minutes}"));
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    remove_earlier_phrases(out)?;
    let tunes = training_tunes()?;
    let mut phrases = Phrases::new(&tunes, instrument, seed);
    let mut summary = VoiceDataSummary::new(instrument, sample_rate, seed);
    while summary.seconds < minutes * 60.0 {
        let phrase = phrases.draw()?;
        let audio = fluidsynth::render(
            &phrase.notes,
            phrase.tempo_bpm,
            instrument.program,
            sample_rate,
        )?;
        let stem = out.join(format!("{:04}", summary.files));
        let (wav, mid) = (stem.with_extension("wav"), stem.with_extension("mid"));
        write_wav(&wav, &[&audio], sample_rate as f32, WavFormat::Float32)
            .map_err(|e| format!("cannot write {}: {e}", wav.display()))?;
        let midi = fluidsynth::midi_bytes(&phrase.notes, phrase.tempo_bpm, instrument.program);
        std::fs::write(&mid, midi).map_err(|e| format!("cannot write {}: {e}", mid.display()))?;
        summary.add(&phrase, audio.len());
    }
    let path = out.join("summary.json");
    let json = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(summary)
}

/// Removes the numbered WAV and MIDI files (`0000.wav`, `0000.mid`, …) in `out`.
fn remove_earlier_phrases(out: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(out).map_err(|e| format!("cannot read {}: {e}", out.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", out.display()))?
            .path();
        let numbered = path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.len() >= 4 && s.bytes().all(|b| b.is_ascii_digit()));
        let ours = path.extension().is_some_and(|e| e == "wav" || e == "mid");
        if numbered && ours && path.is_file() {
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::midi_file::read_notes;
    use crate::test_kit::TempDir;

    /// Many phrases for each instrument stay inside its range and reach both its ends, with
    /// every velocity level, tempos and lengths as promised.
    #[test]
    fn phrases_cover_each_range_and_stay_inside_it() {
        let tunes = training_tunes().unwrap();
        for instrument in INSTRUMENTS {
            let mut phrases = Phrases::new(&tunes, &instrument, 7);
            let drawn: Vec<Phrase> = (0..300).map(|_| phrases.draw().unwrap()).collect();
            let pitches = || drawn.iter().flat_map(|p| p.notes.iter().map(|n| n.pitch));
            assert_eq!(
                pitches().min(),
                Some(instrument.lowest),
                "{}",
                instrument.name
            );
            assert_eq!(
                pitches().max(),
                Some(instrument.highest),
                "{}",
                instrument.name
            );
            for p in &drawn {
                assert!(VELOCITY_LEVELS.contains(&p.velocity_level));
                assert!((80.0..=140.0).contains(&p.tempo_bpm));
                let seconds =
                    p.notes.iter().map(Note::end_beats).fold(0.0, f64::max) * 60.0 / p.tempo_bpm;
                assert!(seconds <= 16.5, "{seconds} s");
                assert!(p.notes.len() >= MIN_NOTES);
                for n in &p.notes {
                    let level = i16::from(p.velocity_level);
                    assert!((i16::from(n.velocity) - level).abs() <= VELOCITY_SPREAD);
                }
            }
            // Phrase centres spread over the range: each third of it holds a fair share.
            let (low, high) = (f64::from(instrument.lowest), f64::from(instrument.highest));
            let mut thirds = [0usize; 3];
            for p in &drawn {
                let pitches = p.notes.iter().map(|n| f64::from(n.pitch));
                let (min, max) = pitches.fold((high, low), |(a, b), x| (a.min(x), b.max(x)));
                let centre = (min + max) / 2.0;
                thirds[((centre - low) / (high - low + 1.0) * 3.0) as usize] += 1;
            }
            assert!(
                thirds.iter().all(|&n| n >= 60),
                "{}: {thirds:?}",
                instrument.name
            );
            // Every key is played, the least played at least a tenth as often as the mean.
            let mut summary = VoiceDataSummary::new(&instrument, 1, 7);
            for p in &drawn {
                summary.add(p, 1);
            }
            let keys = usize::from(instrument.highest - instrument.lowest) + 1;
            let counts = &summary.notes_per_pitch;
            assert_eq!(counts.len(), keys, "{}: {counts:?}", instrument.name);
            let least = counts.values().min().copied().unwrap_or(0);
            assert!(
                least * 10 * keys >= summary.notes,
                "{}: {counts:?}",
                instrument.name
            );
        }
    }

    #[test]
    fn a_phrase_is_placed_from_the_bottom_to_the_top_of_the_range() {
        let notes = [
            crate::test_kit::note(62, 0.0, 1.0),
            crate::test_kit::note(74, 1.0, 1.0),
        ];
        assert_eq!(transposition(&notes, &FLUTE, 0.0), Some(-2));
        assert_eq!(transposition(&notes, &FLUTE, 1.0), Some(22));
        assert_eq!(transposition(&notes, &FLUTE, 0.5), Some(10));
        let wide = [notes[0], crate::test_kit::note(62 + 37, 2.0, 1.0)];
        assert_eq!(transposition(&wide, &FLUTE, 0.5), None);
        assert_eq!(transposition(&[], &FLUTE, 0.5), None);
    }

    /// A few seconds of fiddle: numbered WAV and MIDI files and the summary, the same files
    /// again from the same seed, every note inside the fiddle's range, stale files removed.
    #[test]
    fn voice_data_writes_the_same_phrases_for_a_seed() {
        let dirs = [TempDir::new("voice-data-a"), TempDir::new("voice-data-b")];
        let stale = dirs[0].0.join("0099.wav");
        std::fs::write(&stale, b"old").unwrap();
        let summaries: Vec<VoiceDataSummary> = dirs
            .iter()
            .map(|dir| voice_data(&FIDDLE, &dir.0, 0.1, 16_000, 3).unwrap())
            .collect();
        assert_eq!(summaries[0], summaries[1]);
        let summary = &summaries[0];
        assert!(summary.files >= 1 && summary.seconds >= 6.0, "{summary}");
        assert!(!stale.exists());
        let list = |dir: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        let names = list(&dirs[0].0);
        assert_eq!(names, list(&dirs[1].0));
        assert_eq!(names.len(), 2 * summary.files + 1);
        assert!(names.contains(&"summary.json".to_string()));
        let mut seconds = 0.0;
        for name in &names {
            let bytes = std::fs::read(dirs[0].0.join(name)).unwrap();
            assert_eq!(
                bytes,
                std::fs::read(dirs[1].0.join(name)).unwrap(),
                "{name}"
            );
            if name.ends_with(".mid") {
                let notes = read_notes(&bytes).unwrap();
                assert!(notes.len() >= MIN_NOTES);
                assert!(notes
                    .iter()
                    .all(|n| (FIDDLE.lowest..=FIDDLE.highest).contains(&n.pitch)));
            } else if name.ends_with(".wav") {
                let reader = hound::WavReader::new(bytes.as_slice()).unwrap();
                let spec = reader.spec();
                assert_eq!((spec.channels, spec.sample_rate), (1, 16_000));
                assert_eq!(spec.sample_format, hound::SampleFormat::Float);
                seconds += reader.duration() as f64 / 16_000.0;
            }
        }
        assert!((seconds - summary.seconds).abs() < 1e-6);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dirs[0].0.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(json["files"], summary.files);
    }
}
