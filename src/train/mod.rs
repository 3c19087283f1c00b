//! Training-side models in candle (feature `train`, so the plugin build never pulls candle).
//!
//! The models here define the weight contract (their `VarBuilder` names) that the hand-written
//! kernels of [`crate::models::wavenet`] read; tests prove both compute the same thing.

pub mod recordings;
pub mod trainer;
pub mod voice;
pub mod voice_trainer;
pub mod wavenet;

pub use trainer::{train, TrainOptions, TrainReport};
pub use voice_trainer::{train_voice, VoiceTrainOptions, VoiceTrainReport};
pub use wavenet::PhraseWaveNet;
