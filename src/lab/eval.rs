//! Bits per note: how well a model predicts held-out tunes, comparable across engines.
//!
//! Each file's notes are quantised to the event grid and encoded ([`Vocabulary::encode`]). The
//! code length of a file is `−log2 P(e_1 … e_n)`, the sum over its events, from the first to
//! `END`, of `−log2 P(e_i | e_1 … e_{i−1})`: each event is predicted only from the earlier
//! events of the same file (the model is [`reset`](EventModel::reset) before each file, and its
//! online memory learns as it reads). Bits per note is the sum of the files' code lengths over
//! the sum of their notes (the notes the encoding keeps, see [`Vocabulary::encode`]); bits per
//! event divides by the number of events instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::models::engines::{hybrid, markov, train_long_term};
use crate::models::wavenet::WaveNetKernel;
use crate::models::{EventModel, Markov, MarkovConfig, Unigram, WaveNetModel};
use crate::music::encoding::{note_count, Token, Vocabulary};
use crate::music::meter::Meter;
use crate::music::midi_file::read_tune;
use crate::music::Note;

/// One tune as the models read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tune {
    /// Where it came from (a path relative to its folder).
    pub name: String,
    /// Its events' token ids, ending with `END`.
    pub tokens: Vec<u16>,
    /// Its notes after quantisation (the encoding's note-ons).
    pub notes: usize,
    /// Its bar lines (4/4 unless its file says otherwise).
    pub meter: Meter,
}

impl Tune {
    /// The tune of `notes` (times in beats from the tune's start).
    pub fn new(name: impl Into<String>, notes: &[Note], vocabulary: &Vocabulary) -> Self {
        let tokens = vocabulary.encode(notes);
        Self {
            name: name.into(),
            notes: note_count(&tokens),
            tokens: vocabulary.ids(&tokens),
            meter: Meter::default(),
        }
    }

    /// The tune with bar lines `meter`.
    pub fn with_meter(self, meter: Meter) -> Self {
        Self { meter, ..self }
    }

    /// The tune of already encoded `tokens` (ids ending with `END`).
    pub fn from_ids(name: impl Into<String>, tokens: Vec<u16>) -> Self {
        let vocabulary = Vocabulary::default();
        Self {
            name: name.into(),
            notes: note_count(&vocabulary.tokens(&tokens)),
            tokens,
            meter: Meter::default(),
        }
    }

    /// Whether at most one note sounds at any time (on the grid).
    pub fn is_monophonic(&self, vocabulary: &Vocabulary) -> bool {
        let mut sounding = 0usize;
        for &id in &self.tokens {
            match vocabulary.token(id) {
                Some(Token::NoteOn(_)) => sounding += 1,
                Some(Token::NoteOff(_)) => sounding = sounding.saturating_sub(1),
                _ => {}
            }
            if sounding > 1 {
                return false;
            }
        }
        true
    }
}

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// The readable MIDI files of a folder, as tunes.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    /// In path order.
    pub tunes: Vec<Tune>,
    /// Files (and subfolders) that could not be read.
    pub skipped: Vec<Skipped>,
}

/// Why an evaluation could not run.
#[derive(Debug)]
pub enum EvalError {
    /// A folder could not be listed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A folder holds no readable MIDI file with notes (of the kind asked for: melodies only,
    /// where only melodies are read).
    NoTunes { dir: PathBuf, skipped: usize },
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Io { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            EvalError::NoTunes { dir, skipped } => write!(
                f,
                "no MIDI file with notes (of the kind asked for) under {} ({skipped} skipped: unreadable or without notes)",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for EvalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EvalError::Io { source, .. } => Some(source),
            EvalError::NoTunes { .. } => None,
        }
    }
}

/// Every `.mid` / `.midi` file under `dir` (recursively, in path order) as a tune; files that
/// cannot be read or parsed, or hold no notes, are skipped and listed.
///
/// # Errors
/// If `dir` itself cannot be listed.
pub fn load_folder(dir: &Path, vocabulary: &Vocabulary) -> Result<Corpus, EvalError> {
    let mut files = Vec::new();
    let mut corpus = Corpus::default();
    let entries = std::fs::read_dir(dir).map_err(|source| EvalError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut folders: std::collections::BTreeSet<PathBuf> = dir.canonicalize().into_iter().collect();
    collect_midi_files(entries, &mut files, &mut corpus.skipped, &mut folders);
    files.sort();
    for path in files {
        let tune = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| read_tune(&bytes).map_err(|e| e.to_string()));
        match tune {
            // NOTE: a tune without notes has nothing to score or learn (its bits per note would
            // be 0 / 0).
            Ok(tune) if tune.notes.is_empty() => corpus.skipped.push(Skipped {
                path,
                reason: "no notes".into(),
            }),
            Ok(tune) => {
                let name = path.strip_prefix(dir).unwrap_or(&path);
                let name = name.to_string_lossy().into_owned();
                corpus
                    .tunes
                    .push(Tune::new(name, &tune.notes, vocabulary).with_meter(tune.meter));
            }
            Err(reason) => corpus.skipped.push(Skipped { path, reason }),
        }
    }
    Ok(corpus)
}

/// Adds the MIDI files of `entries` and of the folders below to `files`; a folder already in
/// `folders` (canonical paths of those read) is not read again, so a linked folder is read once
/// and a link to a folder above ends there.
fn collect_midi_files(
    entries: std::fs::ReadDir,
    files: &mut Vec<PathBuf>,
    skipped: &mut Vec<Skipped>,
    folders: &mut std::collections::BTreeSet<PathBuf>,
) {
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                skipped.push(Skipped {
                    path: PathBuf::new(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let path = entry.path();
        // NOTE: `metadata` follows symlinks, so a linked folder is read too.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                let seen = path.canonicalize().is_ok_and(|f| !folders.insert(f));
                if seen {
                    continue;
                }
                match std::fs::read_dir(&path) {
                    Ok(sub) => collect_midi_files(sub, files, skipped, folders),
                    Err(e) => skipped.push(Skipped {
                        path,
                        reason: e.to_string(),
                    }),
                }
            }
            Ok(_) if is_midi(&path) => files.push(path),
            Ok(_) => {}
            Err(e) if is_midi(&path) => skipped.push(Skipped {
                path,
                reason: e.to_string(),
            }),
            Err(_) => {}
        }
    }
}

fn is_midi(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"))
}

/// The code length of one tune in bits: `−log2` of the probability `model` gives its events,
/// each predicted from the ones before it (the model is reset first). `scratch` must be as
/// long as the vocabulary.
pub fn code_length_bits(model: &mut dyn EventModel, tokens: &[u16], scratch: &mut [f64]) -> f64 {
    model.reset();
    let mut bits = 0.0;
    for &token in tokens {
        model.distribution(scratch);
        bits -= scratch[usize::from(token)].log2();
        model.observe(token);
    }
    bits
}

/// A model's score on a set of tunes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelScore {
    pub name: String,
    pub files: usize,
    pub notes: usize,
    pub events: usize,
    /// Total code length over every event.
    pub bits_per_event: f64,
    /// Total code length over every note.
    pub bits_per_note: f64,
}

/// Scores `model` on `tunes` (see the module docs).
pub fn score(model: &mut dyn EventModel, tunes: &[Tune], vocabulary: &Vocabulary) -> ModelScore {
    let mut scratch = vec![0.0; vocabulary.len()];
    let bits: f64 = tunes
        .iter()
        .map(|tune| {
            model.set_meter(&tune.meter);
            code_length_bits(model, &tune.tokens, &mut scratch)
        })
        .sum();
    let notes = tunes.iter().map(|t| t.notes).sum();
    let events = tunes.iter().map(|t| t.tokens.len()).sum();
    ModelScore {
        name: model.name(),
        files: tunes.len(),
        notes,
        events,
        bits_per_event: bits / events as f64,
        bits_per_note: bits / notes as f64,
    }
}

/// The engines `wavejam eval` compares: the unigram baseline, the Markov engine (its long- and
/// short-term memories alone, then together) trained on `train` (untrained if empty), and with a
/// WaveNet, `wavenet` and `hybrid` (with `train`'s long-term memory).
pub fn standard_models(
    vocabulary: Vocabulary,
    train: &[Tune],
    wavenet: Option<&WaveNetKernel>,
) -> Vec<Box<dyn EventModel + Send>> {
    let mut unigram = Unigram::new(vocabulary);
    for tune in train {
        unigram.train(&tune.tokens);
    }
    let mut models: Vec<Box<dyn EventModel + Send>> = vec![Box::new(unigram)];
    if train.is_empty() {
        models.push(Box::new(
            Markov::new(vocabulary, MarkovConfig::default()).with_name("markov"),
        ));
        if let Some(kernel) = wavenet {
            models.push(Box::new(WaveNetModel::new(kernel.clone())));
        }
        return models;
    }
    let memory = train_long_term(vocabulary, train.iter().map(|t| &t.tokens[..]));
    for (long_term, short_term) in [(true, false), (false, true), (true, true)] {
        models.push(Box::new(markov(&memory, long_term, short_term)));
    }
    if let Some(kernel) = wavenet {
        models.push(Box::new(WaveNetModel::new(kernel.clone())));
        models.push(Box::new(hybrid(kernel, &memory)));
    }
    models
}

/// The scores of every model of [`standard_models`].
#[derive(Debug, Clone)]
pub struct EvalReport {
    pub rows: Vec<ModelScore>,
    /// Training files used (0 without a training folder).
    pub train_files: usize,
    /// Files that could not be read, in either folder.
    pub skipped: Vec<Skipped>,
}

impl EvalReport {
    /// The rows as a text table, with a line counting skipped files.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>9} {:>10} {:>11} {:>10}",
            "model", "files", "notes", "events", "bits/event", "bits/note"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<12} {:>6} {:>9} {:>10} {:>11.4} {:>10.4}",
                r.name, r.files, r.notes, r.events, r.bits_per_event, r.bits_per_note
            );
        }
        let _ = writeln!(out, "trained on {} files", self.train_files);
        if !self.skipped.is_empty() {
            let _ = writeln!(
                out,
                "warning: skipped {} files (unreadable or without notes)",
                self.skipped.len()
            );
        }
        out
    }

    /// `{"models": [{"name", "files", "notes", "events", "bits_per_event", "bits_per_note"}]}`
    /// (a ratio without notes or events is `null`).
    pub fn to_json(&self) -> String {
        self.to_json_value().to_string()
    }

    /// [`EvalReport::to_json`] as a JSON value (to add more to it).
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::json!({ "models": self.rows })
    }
}

/// What the models of an evaluation learn from.
#[derive(Debug, Clone)]
pub enum Training<'a> {
    /// Nothing: the models start untrained.
    Untrained,
    /// Every MIDI file under a folder.
    Folder(&'a Path),
    /// Tunes already read (e.g. the embedded default melodies).
    Tunes(Vec<Tune>),
}

/// Scores the [`standard_models`] (with `wavenet`, if given) on every MIDI file under `data_dir`,
/// training them as `training` says. Unreadable files are skipped and counted. With
/// `monophonic_only`, tunes with overlapping notes are left out of both (the reference figures
/// are on melodies).
///
/// # Errors
/// If a folder cannot be listed, or `data_dir` holds no readable MIDI file.
pub fn eval_folder(
    training: Training<'_>,
    data_dir: &Path,
    monophonic_only: bool,
    wavenet: Option<&WaveNetKernel>,
) -> Result<EvalReport, EvalError> {
    let vocabulary = Vocabulary::default();
    let keep = |tune: &Tune| !monophonic_only || tune.is_monophonic(&vocabulary);
    let mut skipped = Vec::new();
    let train: Vec<Tune> = match training {
        Training::Folder(dir) => {
            let corpus = load_folder(dir, &vocabulary)?;
            skipped.extend(corpus.skipped);
            corpus.tunes.into_iter().filter(keep).collect()
        }
        Training::Tunes(tunes) => tunes.into_iter().filter(keep).collect(),
        Training::Untrained => Vec::new(),
    };
    let mut data = load_folder(data_dir, &vocabulary)?;
    skipped.extend(data.skipped);
    data.tunes.retain(keep);
    if data.tunes.is_empty() {
        return Err(EvalError::NoTunes {
            dir: data_dir.to_path_buf(),
            skipped: skipped.len(),
        });
    }
    let rows = standard_models(vocabulary, &train, wavenet)
        .iter_mut()
        .map(|model| score(model.as_mut(), &data.tunes, &vocabulary))
        .collect();
    Ok(EvalReport {
        rows,
        train_files: train.len(),
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mixing::Combination;
    use crate::music::midi_file::to_smf_bytes;
    use crate::test_kit::random_kernel;
    use crate::test_kit::TempDir;
    use crate::test_kit::{chorale, folk_tune, melody};

    fn v() -> Vocabulary {
        Vocabulary::default()
    }

    fn training_set() -> Vec<Tune> {
        let mut tunes: Vec<Tune> = [-5, -3, 0, 2, 5]
            .iter()
            .map(|&t| Tune::new(format!("folk{t}"), &folk_tune(t), &v()))
            .collect();
        tunes.push(Tune::new("chorale", &chorale(), &v()));
        tunes
    }

    fn held_out() -> Vec<Tune> {
        vec![
            Tune::new("folk+7", &folk_tune(7), &v()),
            Tune::new("chorale-5", &transposed(&chorale(), -5), &v()),
            Tune::new(
                "scale",
                &melody(
                    0.0,
                    &[(60, 1.0), (62, 1.0), (64, 0.5), (65, 0.5), (67, 2.0)],
                ),
                &v(),
            ),
        ]
    }

    fn transposed(notes: &[Note], by: i8) -> Vec<Note> {
        notes
            .iter()
            .map(|n| Note {
                pitch: (i16::from(n.pitch) + i16::from(by)) as u8,
                ..*n
            })
            .collect()
    }

    /// Markov variants worth checking for normalisation.
    fn markov_variants() -> Vec<MarkovConfig> {
        let base = MarkovConfig::default();
        let mut out = vec![base.clone()];
        out.push(MarkovConfig {
            viewpoint_combination: Combination::Arithmetic,
            memory_combination: Combination::Arithmetic,
            ..base.clone()
        });
        out.push(MarkovConfig {
            viewpoints: vec![base.viewpoints[0]],
            ..base.clone()
        });
        out.push(MarkovConfig {
            viewpoints: vec![base.viewpoints[1], base.viewpoints[3], base.viewpoints[4]],
            viewpoint_bias: 0.0,
            memory_bias: 6.0,
            ..base.clone()
        });
        for (long_term, short_term) in [(true, false), (false, true), (false, false)] {
            out.push(MarkovConfig {
                long_term,
                short_term,
                ..base.clone()
            });
        }
        out
    }

    fn all_models() -> Vec<Box<dyn EventModel + Send>> {
        let train = training_set();
        let kernel = random_kernel(9);
        let mut models = standard_models(v(), &[], Some(&kernel));
        models.extend(standard_models(v(), &train, Some(&kernel)));
        for config in markov_variants() {
            let mut trained = Markov::new(v(), config.clone());
            trained.train(train.iter().map(|t| &t.tokens[..]));
            models.push(Box::new(trained));
            models.push(Box::new(Markov::new(v(), config)));
        }
        models
    }

    /// Each tune is scored in its own meter: the same notes cost the WaveNet other bits in 6/8
    /// bars than in 4/4, and a 4/4 tune after a 6/8 one is scored as on its own.
    #[test]
    fn the_wavenet_reads_each_tunes_meter() {
        let tune = Tune::new("reel", &folk_tune(0), &v());
        let jig = tune.clone().with_meter(Meter::constant(72));
        let mut model = WaveNetModel::new(random_kernel(9));
        let common = score(&mut model, std::slice::from_ref(&tune), &v()).bits_per_note;
        let both = score(&mut model, &[jig.clone(), tune], &v()).bits_per_note;
        let compound = score(&mut model, &[jig], &v()).bits_per_note;
        assert_ne!(compound, common);
        assert!((both - (compound + common) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn every_engine_is_normalised_at_every_step() {
        let mut dist = vec![0.0; v().len()];
        for mut model in all_models() {
            for tune in held_out().iter().chain(&training_set()) {
                model.reset();
                for &token in &tune.tokens {
                    model.distribution(&mut dist);
                    let sum: f64 = dist.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-9, "{} sums to {sum}", model.name());
                    assert!(
                        dist.iter().all(|p| p.is_finite() && *p > 0.0),
                        "{}",
                        model.name()
                    );
                    model.observe(token);
                }
            }
        }
    }

    #[test]
    fn short_term_memory_learns_a_repeated_phrase() {
        let motif = [
            (60, 0.5),
            (64, 0.5),
            (67, 1.0),
            (65, 0.5),
            (62, 0.5),
            (0, 1.0),
        ];
        let repeats = 12;
        let phrase: Vec<(u8, f64)> = motif.iter().copied().cycle().take(6 * repeats).collect();
        let tune = Tune::new("motif", &melody(0.0, &phrase), &v());
        let per_repeat = (tune.tokens.len() - 1) / repeats;
        let mut dist = vec![0.0; v().len()];
        let mut stm = Markov::new(
            v(),
            MarkovConfig {
                long_term: false,
                ..MarkovConfig::default()
            },
        );
        stm.reset();
        let mut bits = Vec::new();
        for &token in &tune.tokens {
            stm.distribution(&mut dist);
            bits.push(-dist[usize::from(token)].log2());
            stm.observe(token);
        }
        let first: f64 = bits[..per_repeat].iter().sum();
        let last: f64 = bits[(repeats - 1) * per_repeat..repeats * per_repeat]
            .iter()
            .sum();
        assert!(first > 5.0 * per_repeat as f64, "first pass {first} bits");
        assert!(
            last < 0.1 * per_repeat as f64,
            "last pass {last} bits for {per_repeat} events"
        );
    }

    #[test]
    fn unigram_on_a_uniform_corpus_costs_log2_of_the_vocabulary() {
        let all: Vec<u16> = (0..v().len() as u16).collect();
        let mut unigram = Unigram::new(v());
        for _ in 0..3 {
            unigram.train(&all);
        }
        let tunes = held_out();
        let expected = (v().len() as f64).log2();
        for mut model in [unigram, Unigram::new(v())] {
            let s = score(&mut model, &tunes, &v());
            assert!((s.bits_per_event - expected).abs() < 1e-9, "{s:?}");
        }
        // Trained on the tunes' own style, it does better than uniform.
        let mut styled = Unigram::new(v());
        for tune in training_set() {
            styled.train(&tune.tokens);
        }
        assert!(score(&mut styled, &tunes, &v()).bits_per_event < expected - 1.0);
    }

    #[test]
    fn bits_per_note_is_the_total_code_length_over_all_notes() {
        // A uniform model costs log2(V) per event, END included.
        let tunes = held_out();
        let s = score(&mut Unigram::new(v()), &tunes, &v());
        let events: usize = tunes.iter().map(|t| t.tokens.len()).sum();
        let notes: usize = tunes.iter().map(|t| t.notes).sum();
        assert_eq!((s.files, s.events, s.notes), (3, events, notes));
        assert_eq!(notes, folk_tune(0).len() + chorale().len() + 5);
        let total = events as f64 * (v().len() as f64).log2();
        assert!((s.bits_per_note - total / notes as f64).abs() < 1e-9);
        assert!((s.bits_per_event - total / events as f64).abs() < 1e-9);
        assert!(tunes.iter().all(|t| t.tokens.last() == Some(&v().end_id())));
    }

    #[test]
    fn the_order_of_files_does_not_change_the_total() {
        let train = training_set();
        let mut tunes = held_out();
        tunes.extend(training_set());
        for mut model in standard_models(v(), &train, None) {
            let forward = score(model.as_mut(), &tunes, &v());
            tunes.reverse();
            let backward = score(model.as_mut(), &tunes, &v());
            tunes.reverse();
            let again = score(model.as_mut(), &tunes, &v());
            assert!(
                (forward.bits_per_note - backward.bits_per_note).abs() < 1e-9,
                "{forward:?} {backward:?}"
            );
            assert_eq!(forward, again, "deterministic");
        }
    }

    #[test]
    fn long_term_memory_and_viewpoints_help_on_the_same_style() {
        let train = training_set();
        let mut tunes = held_out();
        // A new tune that repeats itself: what the short-term memory is for.
        let motif = [
            (69, 0.5),
            (71, 0.25),
            (69, 0.25),
            (67, 0.5),
            (64, 0.5),
            (62, 1.0),
        ];
        let phrase: Vec<(u8, f64)> = motif.iter().copied().cycle().take(24).collect();
        tunes.push(Tune::new("motif", &melody(0.0, &phrase), &v()));
        let rows: Vec<ModelScore> = standard_models(v(), &train, None)
            .iter_mut()
            .map(|m| score(m.as_mut(), &tunes, &v()))
            .collect();
        let bits = |name: &str| rows.iter().find(|r| r.name == name).unwrap().bits_per_note;
        assert!(bits("markov-ltm") < bits("unigram") - 3.0, "{rows:?}");
        assert!(bits("markov") < bits("markov-ltm"), "{rows:?}");
        assert!(bits("markov") < bits("markov-stm"), "{rows:?}");
        // The transposition-invariant viewpoints carry the style to a key not trained on.
        let token_only = MarkovConfig {
            viewpoints: vec![MarkovConfig::default().viewpoints[0]],
            short_term: false,
            ..MarkovConfig::default()
        };
        let mut plain = Markov::new(v(), token_only);
        plain.train(train.iter().map(|t| &t.tokens[..]));
        let folk = &tunes[..1];
        assert_eq!(folk[0].name, "folk+7");
        let mut ltm = standard_models(v(), &train, None).remove(1);
        assert_eq!(ltm.name(), "markov-ltm");
        assert!(
            score(ltm.as_mut(), folk, &v()).bits_per_note
                < score(&mut plain, folk, &v()).bits_per_note - 1.0
        );
    }

    #[test]
    fn a_trained_long_term_memory_serialises() {
        let train = training_set();
        let mut markov = Markov::new(v(), MarkovConfig::default());
        markov.train(train.iter().map(|t| &t.tokens[..]));
        let memory = markov.long_term().unwrap();
        assert_eq!(memory.tunes(), train.len());
        let json = serde_json::to_string(memory.as_ref()).unwrap();
        let back: crate::models::markov::LongTermMemory = serde_json::from_str(&json).unwrap();
        back.validate().unwrap();
        let mut loaded = Markov::new(v(), MarkovConfig::default());
        loaded.set_long_term(std::sync::Arc::new(back));
        let tunes = held_out();
        assert_eq!(
            score(&mut loaded, &tunes, &v()),
            score(&mut markov, &tunes, &v())
        );
        // Viewpoint sets must match.
        let other = MarkovConfig {
            viewpoints: vec![MarkovConfig::default().viewpoints[0]],
            ..MarkovConfig::default()
        };
        let result = std::panic::catch_unwind(|| {
            let mut m = Markov::new(v(), other);
            m.set_long_term(markov.long_term().unwrap().clone());
        });
        assert!(result.is_err());
    }

    #[test]
    fn tunes_know_whether_they_are_monophonic() {
        assert!(Tune::new("f", &folk_tune(0), &v()).is_monophonic(&v()));
        assert!(!Tune::new("c", &chorale(), &v()).is_monophonic(&v()));
    }

    #[test]
    fn eval_folder_reads_nested_folders_and_skips_unreadable_files() {
        let dir = TempDir::new("symbolic-eval-folder");
        let write = |rel: &str, bytes: &[u8]| {
            let path = dir.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        for (i, t) in [-3i8, 0, 4].iter().enumerate() {
            write(
                &format!("train/folk/{i}.mid"),
                &to_smf_bytes(&folk_tune(*t), 120.0, 0, &[]),
            );
        }
        write("train/satb/c.MID", &to_smf_bytes(&chorale(), 90.0, 0, &[]));
        write(
            "data/a/held.mid",
            &to_smf_bytes(&folk_tune(7), 120.0, 0, &[]),
        );
        write(
            "data/b/deeper/c.midi",
            &to_smf_bytes(&chorale(), 90.0, 1, &[]),
        );
        write("data/broken.mid", b"MThd but not really");
        write("data/readme.txt", b"not a tune");
        write("data/silent.mid", &to_smf_bytes(&[], 120.0, 0, &[]));

        let report = eval_folder(
            Training::Folder(&dir.0.join("train")),
            &dir.0.join("data"),
            false,
            None,
        )
        .unwrap();
        assert_eq!(report.train_files, 4);
        assert_eq!(report.skipped.len(), 2);
        assert!(report.skipped[0].path.ends_with("broken.mid"));
        assert!(report.skipped[1].path.ends_with("silent.mid"));
        assert_eq!(report.skipped[1].reason, "no notes");
        let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["unigram", "markov-ltm", "markov-stm", "markov"]);
        let notes = folk_tune(7).len() + chorale().len();
        assert!(report.rows.iter().all(|r| r.files == 2 && r.notes == notes));
        assert!(report.table().contains("skipped 2 files"));
        assert!(report
            .table()
            .lines()
            .nth(4)
            .unwrap()
            .starts_with("markov "));

        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.keys().collect::<Vec<_>>(), ["models"]);
        let models = json["models"].as_array().unwrap();
        assert_eq!(models.len(), 4);
        for (m, r) in models.iter().zip(&report.rows) {
            let mut keys: Vec<&String> = m.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(
                keys,
                [
                    "bits_per_event",
                    "bits_per_note",
                    "events",
                    "files",
                    "name",
                    "notes"
                ]
            );
            assert_eq!(m["name"], r.name.as_str());
            assert!((m["bits_per_note"].as_f64().unwrap() - r.bits_per_note).abs() < 1e-12);
        }

        // Untrained: the baseline is uniform and the engine learns online only.
        let untrained = eval_folder(Training::Untrained, &dir.0.join("data"), false, None).unwrap();
        let names: Vec<&str> = untrained.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["unigram", "markov"]);
        assert!((untrained.rows[0].bits_per_event - (v().len() as f64).log2()).abs() < 1e-9);
        assert!(untrained.rows[1].bits_per_note < untrained.rows[0].bits_per_note);

        // Folders that cannot be used are errors.
        assert!(matches!(
            eval_folder(Training::Untrained, &dir.0.join("missing"), false, None),
            Err(EvalError::Io { .. })
        ));
        std::fs::create_dir_all(dir.0.join("empty")).unwrap();
        assert!(matches!(
            eval_folder(Training::Untrained, &dir.0.join("empty"), false, None),
            Err(EvalError::NoTunes { .. })
        ));
    }

    /// A folder linked twice, and a link back to a folder above, are read once: every tune
    /// counts once, and the walk ends.
    #[test]
    fn linked_folders_are_read_once() {
        let dir = TempDir::new("linked-folders");
        let tunes = dir.0.join("tunes");
        std::fs::create_dir_all(&tunes).unwrap();
        std::fs::write(
            tunes.join("a.mid"),
            to_smf_bytes(&folk_tune(0), 120.0, 0, &[]),
        )
        .unwrap();
        std::os::unix::fs::symlink(&tunes, dir.0.join("again")).unwrap();
        std::os::unix::fs::symlink(&dir.0, tunes.join("up")).unwrap();
        let corpus = load_folder(&dir.0, &v()).unwrap();
        assert_eq!(corpus.tunes.len(), 1);
        assert!(corpus.skipped.is_empty());
    }
}
