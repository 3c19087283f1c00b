//! The three answering engines over events, built the same way for `wavejam eval`, `wavejam
//! continue` and the plugin:
//! - `wavenet`: the phrase WaveNet alone ([`WaveNetModel`]);
//! - `markov`: the long-term memory trained on the corpus plus the short-term memory of what it
//!   has read since its last reset ([`Markov`]);
//! - `hybrid` (the default): the WaveNet mixed with the Markov engine's long- and short-term
//!   memories, each a separate expert, by an entropy-weighted arithmetic mean ([`Mixture`]): the
//!   WaveNet knows the idiom, the short-term memory picks up the motifs just played.

use std::sync::Arc;

use crate::models::markov::LongTermMemory;
use crate::models::mixing::Combination;
use crate::models::wavenet::WaveNetKernel;
use crate::models::{EventModel, Markov, MarkovConfig, Mixture, WaveNetModel};
use crate::music::encoding::Vocabulary;

/// How the hybrid's experts are combined.
pub const HYBRID_COMBINATION: Combination = Combination::Arithmetic;
/// Entropy bias of the hybrid's combination.
pub const HYBRID_BIAS: f64 = 1.0;

/// Which engine answers.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum EngineKind {
    #[default]
    Hybrid,
    WaveNet,
    Markov,
}

impl EngineKind {
    /// Every engine, the default first.
    pub const ALL: [EngineKind; 3] = [EngineKind::Hybrid, EngineKind::WaveNet, EngineKind::Markov];

    /// The engine's name in reports, the panel and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Hybrid => "hybrid",
            EngineKind::WaveNet => "wavenet",
            EngineKind::Markov => "markov",
        }
    }
}

/// What the engines are built from: a WaveNet and a trained long-term memory.
#[derive(Debug, Clone)]
pub struct Brains {
    pub wavenet: WaveNetKernel,
    /// `None` while the long-term memory is still being built (the plugin warming up): `hybrid`
    /// then mixes the WaveNet with the short-term memory alone, `markov` is the short-term
    /// memory alone.
    pub long_term: Option<Arc<LongTermMemory>>,
}

impl Brains {
    /// The engine `kind`, at the start of a tune.
    pub fn engine(&self, kind: EngineKind) -> Box<dyn EventModel + Send> {
        match (kind, &self.long_term) {
            (EngineKind::Hybrid, Some(memory)) => Box::new(hybrid(&self.wavenet, memory)),
            (EngineKind::Hybrid, None) => Box::new(warming_hybrid(&self.wavenet)),
            (EngineKind::WaveNet, _) => Box::new(WaveNetModel::new(self.wavenet.clone())),
            (EngineKind::Markov, Some(memory)) => Box::new(markov(memory, true, true)),
            (EngineKind::Markov, None) => Box::new(short_term_markov(*self.wavenet.vocabulary())),
        }
    }
}

/// A long-term memory of the default Markov config trained on `tunes` (event ids, each ending
/// with `END`).
pub fn train_long_term<'a>(
    vocabulary: Vocabulary,
    tunes: impl IntoIterator<Item = &'a [u16]>,
) -> Arc<LongTermMemory> {
    let mut markov = Markov::new(vocabulary, MarkovConfig::default());
    markov.train(tunes);
    markov.long_term().expect("trained").clone()
}

/// The Markov engine of the default config on `memory`, with either memory switched off as asked.
pub fn markov(memory: &Arc<LongTermMemory>, long_term: bool, short_term: bool) -> Markov {
    let config = MarkovConfig {
        long_term,
        short_term,
        ..MarkovConfig::default()
    };
    let mut markov = Markov::new(memory.vocabulary(), config);
    markov.set_long_term(memory.clone());
    markov
}

/// The Markov engine of the default config with its short-term memory alone.
fn short_term_markov(vocabulary: Vocabulary) -> Markov {
    let config = MarkovConfig {
        long_term: false,
        ..MarkovConfig::default()
    };
    Markov::new(vocabulary, config)
}

/// The hybrid engine without its long-term memory: the WaveNet and the short-term memory.
fn warming_hybrid(wavenet: &WaveNetKernel) -> Mixture {
    let vocabulary = *wavenet.vocabulary();
    Mixture::new(
        "hybrid (warming up)",
        vec![
            Box::new(WaveNetModel::new(wavenet.clone())),
            Box::new(short_term_markov(vocabulary)),
        ],
        vocabulary.len(),
        HYBRID_COMBINATION,
        HYBRID_BIAS,
    )
}

/// The hybrid engine (see the module docs).
pub fn hybrid(wavenet: &WaveNetKernel, memory: &Arc<LongTermMemory>) -> Mixture {
    let vocabulary = *wavenet.vocabulary();
    Mixture::new(
        "hybrid",
        vec![
            Box::new(WaveNetModel::new(wavenet.clone())),
            Box::new(markov(memory, true, false)),
            Box::new(markov(memory, false, true)),
        ],
        vocabulary.len(),
        HYBRID_COMBINATION,
        HYBRID_BIAS,
    )
}
