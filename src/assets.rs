//! The default models, embedded so WaveJam answers offline out of the box: the phrase WaveNet
//! (`assets/wavenet.safetensors`, see the README's "Train your own" for the command that made
//! it) and the melodies of the corpus' training split that the Markov engine's long-term memory
//! learns (`assets/melodies.wjtunes`, written by `wavejam tunes`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::model::{ModelError, WaveNetKernel};
use crate::symbolic::encoding::Vocabulary;
use crate::symbolic::engines::{train_long_term, Brains};
use crate::symbolic::melodies::{read_tunes, TunesError};
use crate::symbolic::models::markov::LongTermMemory;

/// The default phrase WaveNet's model file.
pub const DEFAULT_WAVENET: &[u8] = include_bytes!("../assets/wavenet.safetensors");
/// The default long-term memory's tunes (see [`crate::symbolic::melodies`]).
pub const DEFAULT_TUNES: &[u8] = include_bytes!("../assets/melodies.wjtunes");

/// The default WaveNet, ready to run.
///
/// # Errors
/// Only if the embedded file is broken (a test checks it is not).
pub fn default_wavenet() -> Result<WaveNetKernel, ModelError> {
    WaveNetKernel::load(DEFAULT_WAVENET)
}

/// The default tunes, as event ids.
///
/// # Errors
/// Only if the embedded file is broken (a test checks it is not).
pub fn default_tunes() -> Result<Vec<Vec<u16>>, TunesError> {
    read_tunes(DEFAULT_TUNES, &Vocabulary::default())
}

/// The default long-term memory, built from [`default_tunes`] the first time it is asked for and
/// shared by every caller in the process after that (it takes a few seconds and ~100 MB).
pub fn default_long_term() -> Arc<LongTermMemory> {
    static MEMORY: OnceLock<Arc<LongTermMemory>> = OnceLock::new();
    MEMORY
        .get_or_init(|| {
            // NOTE: `default_tunes` cannot fail on the embedded file (tested); an empty memory
            // would still give normalised, if untrained, answers.
            let tunes = default_tunes().unwrap_or_default();
            train_long_term(Vocabulary::default(), tunes.iter().map(Vec::as_slice))
        })
        .clone()
}

/// Starts building [`default_long_term`] on a background thread, once per process, so the first
/// `activate()` (which needs it) does not wait the whole build on the host's thread.
pub fn prepare_long_term_in_background() {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if !STARTED.swap(true, Ordering::AcqRel) {
        // NOTE: if the thread cannot start, the first `default_long_term` call builds it.
        let _ = std::thread::Builder::new()
            .name("wavejam-memory".into())
            .spawn(|| drop(default_long_term()));
    }
}

/// The default engines' models.
///
/// # Errors
/// Only if the embedded WaveNet is broken.
pub fn default_brains() -> Result<Brains, ModelError> {
    Ok(Brains {
        wavenet: default_wavenet()?,
        long_term: default_long_term(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_models_load() {
        let kernel = default_wavenet().unwrap();
        assert_eq!(kernel.vocabulary(), &Vocabulary::default());
        let tunes = default_tunes().unwrap();
        assert!(tunes.len() > 1000, "{} tunes", tunes.len());
    }
}
