//! The tests' kit: notes, melodies and small tunes built in code, seeded random WaveNet models,
//! and temporary folders.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::models::container::{NamedTensor, TensorSpec};
use crate::models::wavenet::weights::{expected_tensors, to_safetensors};
use crate::models::wavenet::{Precision, WaveNetConfig, WaveNetKernel};
use crate::music::encoding::Vocabulary;
use crate::music::Note;
use crate::params::{EngineChoice, ScaleLock, SeedMode};
use crate::protocol::{Request, Source};

/// A note of velocity 80.
pub fn note(pitch: u8, onset_beats: f64, duration_beats: f64) -> Note {
    Note {
        pitch,
        velocity: 80,
        onset_beats,
        duration_beats,
    }
}

/// A melody from `(pitch, beats)` pairs, legato; a pitch of 0 is a rest.
pub fn melody(start_beats: f64, notes: &[(u8, f64)]) -> Vec<Note> {
    let mut t = start_beats;
    let mut out = Vec::new();
    for &(pitch, beats) in notes {
        if pitch > 0 {
            out.push(note(pitch, t, beats));
        }
        t += beats;
    }
    out
}

/// A melody of equal notes at velocity 100, `beats_per_note` apart and as long .
pub fn test_melody(pitches: &[u8], beats_per_note: f64) -> Vec<Note> {
    pitches
        .iter()
        .enumerate()
        .map(|(i, &pitch)| Note {
            pitch,
            velocity: 100,
            onset_beats: i as f64 * beats_per_note,
            duration_beats: beats_per_note,
        })
        .collect()
}

/// A folk-like tune in D, transposed by `transpose` semitones: two phrases, the first repeated,
/// with a pickup, a rest and a long last note.
pub fn folk_tune(transpose: i8) -> Vec<Note> {
    let phrase_a: &[(u8, f64)] = &[
        (62, 0.5),
        (66, 0.5),
        (69, 0.5),
        (66, 0.5),
        (71, 1.0),
        (69, 0.5),
        (66, 0.5),
        (67, 0.5),
        (66, 0.5),
        (64, 0.5),
        (62, 0.5),
        (64, 1.5),
        (0, 0.5),
    ];
    let phrase_b: &[(u8, f64)] = &[
        (74, 0.5),
        (73, 0.5),
        (71, 0.5),
        (69, 0.5),
        (67, 0.75),
        (66, 0.25),
        (64, 0.5),
        (62, 0.5),
        (64, 0.5),
        (66, 0.5),
        (64, 0.5),
        (62, 3.0),
    ];
    let mut all = vec![(57, 0.5)];
    for phrase in [phrase_a, phrase_a, phrase_b] {
        all.extend_from_slice(phrase);
    }
    let mut notes = melody(3.5, &all);
    for n in &mut notes {
        n.pitch = (i16::from(n.pitch) + i16::from(transpose)) as u8;
    }
    notes
}

/// A short polyphonic piece: a held bass under chords, triplets and a long gap.
pub fn chorale() -> Vec<Note> {
    let mut notes = vec![note(48, 0.0, 4.0), note(43, 4.0, 2.0)];
    for (i, chord) in [[60, 64, 67], [62, 65, 69], [64, 67, 72], [62, 67, 71]]
        .iter()
        .enumerate()
    {
        for &p in chord {
            notes.push(note(p, i as f64, 1.0));
        }
    }
    for i in 0..3 {
        notes.push(note(72 - i as u8 * 2, 4.0 + i as f64 / 3.0, 1.0 / 3.0));
    }
    notes.push(note(60, 15.0, 1.0));
    notes
}

/// Runs the unit test `test` (its full path) alone in a new process of this test binary, with
/// the environment variable `marker` set so the test knows it is the child: for what needs a
/// fresh process (nothing built yet) or may abort it.
pub fn run_in_fresh_process(test: &str, marker: &str) -> std::process::Output {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env(marker, "1")
        .output()
        .unwrap()
}

/// A fresh folder `wavejam-{name}-{pid}` under the system's temporary folder.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("wavejam-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seeded random weights for `config` (name, shape, row-major values), uniform in
/// ±`1.5 / sqrt(fan_in)` (embeddings ±1): deterministic stand-ins for a trained model.
pub fn random_tensors(config: &WaveNetConfig, seed: u64) -> Vec<NamedTensor> {
    random_values(expected_tensors(config), seed)
}

/// Seeded random values for `specs`, as [`random_tensors`] draws them.
pub fn random_values(specs: Vec<TensorSpec>, seed: u64) -> Vec<NamedTensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    specs
        .into_iter()
        .map(|spec| {
            let n: usize = spec.shape.iter().product();
            let bound = if spec.name.contains("embedding") {
                1.0
            } else {
                let fan_in = spec.shape.get(1..).map_or(1, |s| s.iter().product());
                1.5 / (fan_in.max(1) as f32).sqrt()
            };
            let values = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            (spec.name, spec.shape, values)
        })
        .collect()
}

/// The bytes of a model file of [`random_tensors`] in `precision` with the default
/// vocabulary, ready for [`WaveNetKernel::load`] (tests).
pub fn random_model_bytes(config: &WaveNetConfig, seed: u64, precision: Precision) -> Vec<u8> {
    to_safetensors(
        config,
        &Vocabulary::default(),
        None,
        precision,
        &random_tensors(config, seed),
    )
    .expect("random tensors have their shapes' value counts")
}

/// A small WaveNet config for tests (fast to run, every layer kind present).
pub fn small_config() -> WaveNetConfig {
    WaveNetConfig {
        vocab_size: 353,
        bar_positions: 96,
        residual_channels: 20,
        gate_channels: 12,
        skip_channels: 28,
        head_channels: 36,
        layers_per_stack: 4,
        stacks: 2,
    }
}

/// `max |a − b| / max(1, max |b|)`.
pub fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(1.0, f32::max);
    diff / scale
}

/// `len` seeded random tokens below `vocab` and bar positions below `positions`.
pub fn test_sequence(len: usize, seed: u64, vocab: u16, positions: u32) -> (Vec<u16>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tokens = (0..len).map(|_| rng.random_range(0..vocab)).collect();
    let positions = (0..len).map(|_| rng.random_range(0..positions)).collect();
    (tokens, positions)
}

/// A seeded random model of [`small_config`], loaded.
pub fn random_kernel(seed: u64) -> WaveNetKernel {
    WaveNetKernel::load(&random_model_bytes(&small_config(), seed, Precision::Half)).unwrap()
}

/// An answer request for `engine`: 8 beats in 4/4 bars from beat 0, due at beat 4 on a grid of
/// beats, seed 3, temperature 1, no scale lock, full feel, the transport playing at 120 BPM.
pub fn request(engine: EngineChoice) -> Request {
    Request {
        serial: 1,
        phrase_index: 0,
        engine,
        temperature: 1.0,
        seed: 3,
        seed_mode: SeedMode::Fixed,
        length_beats: 8.0,
        bar_beats: 4.0,
        bar_origin_beat: 0.0,
        start_beat: 4.0,
        trigger_beat: 4.0,
        step_beats: 1.0,
        tempo_bpm: 120.0,
        free_tempo: false,
        source: Source::Phrase,
        scale: ScaleLock::Off,
        feel: 1.0,
        offline: false,
    }
}
