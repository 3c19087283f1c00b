//! The default models, embedded so WaveJam answers offline out of the box: the phrase WaveNet
//! (`assets/wavenet.safetensors`, see the README's "Train your own" for the command that made
//! it) and the melodies of the corpus' training split that the Markov engine's long-term memory
//! learns (`assets/melodies.wjtunes`, written by `wavejam tunes`), and the neural voices
//! (`assets/voices/*.safetensors`, see the README's "Voices" for the commands that made them).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::models::engines::{train_long_term, Brains};
use crate::models::markov::LongTermMemory;
use crate::models::melodies::{read_tunes, TunesError};
use crate::models::wavenet::{ModelError, WaveNetKernel};
use crate::music::encoding::Vocabulary;
use crate::voice::VoiceFile;

/// The default phrase WaveNet's model file.
pub const DEFAULT_WAVENET: &[u8] = include_bytes!("../assets/wavenet.safetensors");
/// The default long-term memory's tunes (see [`crate::models::melodies`]).
pub const DEFAULT_TUNES: &[u8] = include_bytes!("../assets/melodies.wjtunes");

/// The default WaveNet, ready to run.
///
/// # Errors
/// Only if the embedded file is broken (a test checks it is not).
pub fn default_wavenet() -> Result<WaveNetKernel, ModelError> {
    WaveNetKernel::load(DEFAULT_WAVENET)
}

/// The Fiddle voice's file (trained on fluidsynth's GM violin, program 40).
pub const FIDDLE_VOICE: &[u8] = include_bytes!("../assets/voices/fiddle.safetensors");
/// The Flute voice's file (trained on fluidsynth's GM flute, program 73).
pub const FLUTE_VOICE: &[u8] = include_bytes!("../assets/voices/flute.safetensors");

/// The embedded voice named `name` (`fiddle` or `flute`), validated; `None` for another name.
///
/// # Errors
/// Only if the embedded file is broken (a test checks it is not).
pub fn default_voice(name: &str) -> Option<Result<VoiceFile, ModelError>> {
    let bytes = match name {
        "fiddle" => FIDDLE_VOICE,
        "flute" => FLUTE_VOICE,
        _ => return None,
    };
    Some(VoiceFile::parse(bytes))
}

/// The default tunes, as event ids.
///
/// # Errors
/// Only if the embedded file is broken (a test checks it is not).
pub fn default_tunes() -> Result<Vec<Vec<u16>>, TunesError> {
    read_tunes(DEFAULT_TUNES, &Vocabulary::default())
}

fn long_term_cell() -> &'static OnceLock<Arc<LongTermMemory>> {
    static MEMORY: OnceLock<Arc<LongTermMemory>> = OnceLock::new();
    &MEMORY
}

/// The default long-term memory, built from [`default_tunes`] the first time it is asked for and
/// shared by every caller in the process after that (it takes a few seconds and ~100 MB); the
/// caller waits for it.
pub fn default_long_term() -> Arc<LongTermMemory> {
    long_term_cell()
        .get_or_init(|| {
            // NOTE: `default_tunes` cannot fail on the embedded file (tested); an empty memory
            // would still give normalised, if untrained, answers.
            let tunes = default_tunes().unwrap_or_default();
            train_long_term(Vocabulary::default(), tunes.iter().map(Vec::as_slice))
        })
        .clone()
}

/// [`default_long_term`] if it is built, without waiting.
pub fn long_term_if_ready() -> Option<Arc<LongTermMemory>> {
    long_term_cell().get().cloned()
}

/// Name of the thread that builds [`default_long_term`] (host tests wait for it to end).
pub const LONG_TERM_THREAD: &str = "wavejam-memory";

/// Starts building [`default_long_term`] on a background thread, once per process (the first
/// activation calls it: a plugin scan that only instantiates WaveJam never pays for it).
pub fn prepare_long_term_in_background() {
    static STARTED: AtomicBool = AtomicBool::new(false);
    if !STARTED.swap(true, Ordering::AcqRel) {
        // NOTE: if the thread cannot start, the engines answer without the memory until a
        // caller of `default_long_term` builds it.
        let _ = std::thread::Builder::new()
            .name(LONG_TERM_THREAD.into())
            .spawn(|| drop(default_long_term()));
    }
}

/// The default engines' models, waiting for the long-term memory.
///
/// # Errors
/// Only if the embedded WaveNet is broken.
pub fn default_brains() -> Result<Brains, ModelError> {
    Ok(Brains {
        wavenet: default_wavenet()?,
        long_term: Some(default_long_term()),
    })
}

/// The default engines' models without waiting: no long-term memory while it is being built
/// (see [`prepare_long_term_in_background`]).
///
/// # Errors
/// Only if the embedded WaveNet is broken.
pub fn warming_brains() -> Result<Brains, ModelError> {
    Ok(Brains {
        wavenet: default_wavenet()?,
        long_term: long_term_if_ready(),
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
        for name in ["fiddle", "flute"] {
            let voice = default_voice(name).unwrap().unwrap();
            assert_eq!(voice.config, crate::voice::VoiceConfig::default(), "{name}");
        }
        assert!(default_voice("tuba").is_none());
    }
}
