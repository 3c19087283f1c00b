//! The voice file format: the model files' container ([`crate::models::container`]) with format
//! [`FORMAT_NAME`], the network's weights below, and metadata `config` (JSON [`VoiceConfig`]),
//! `dynamics` (JSON [`Dynamics`]) and optionally `training` (the command and data summary).
//!
//! # Weight contract
//! | tensor | shape |
//! | --- | --- |
//! | `input.weight`, `.bias` | `[C, CONTROLS, 1]`, `[C]` |
//! | `layers.{l}.dilated.weight`, `.bias` | `[2G, C, 2]`, `[2G]` (tap 0 is `t − d`, tap 1 is `t`; outputs `..G` are tanh, `G..` sigmoid) |
//! | `layers.{l}.skip.weight`, `.bias` | `[S, G, 1]`, `[S]` |
//! | `layers.{l}.residual.weight`, `.bias` | `[C, G, 1]`, `[C]` (every layer but the last) |
//! | `head.hidden.weight`, `.bias` | `[H, S, 1]`, `[H]` |
//! | `head.output.weight`, `.bias` | `[1, H, 1]`, `[1]` |

use std::collections::HashMap;

use crate::models::container::{self, ModelError, NamedTensor, Opened, Precision, TensorSpec};
use crate::models::stack::layer_tensors;
use crate::voice::{Dynamics, VoiceConfig, CONTROLS};

/// The `format` metadata value of a voice file.
pub const FORMAT_NAME: &str = "wavejam-voice";
/// The version of the format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Metadata key of the JSON hyperparameters.
pub const KEY_CONFIG: &str = "config";
/// Metadata key of the JSON dynamics.
pub const KEY_DYNAMICS: &str = "dynamics";
/// Metadata key of the training summary.
pub const KEY_TRAINING: &str = "training";

/// Every tensor a voice of `config` has, in a fixed order.
pub fn expected_tensors(config: &VoiceConfig) -> Vec<TensorSpec> {
    let (c, g, s, h) = (
        config.residual_channels,
        config.gate_channels,
        config.skip_channels,
        config.head_channels,
    );
    let mut specs = Vec::new();
    let mut push = |name: String, shape: Vec<usize>| specs.push(TensorSpec { name, shape });
    push("input.weight".into(), vec![c, CONTROLS, 1]);
    push("input.bias".into(), vec![c]);
    specs.extend(layer_tensors(config, c, g, s));
    let mut push = |name: String, shape: Vec<usize>| specs.push(TensorSpec { name, shape });
    push("head.hidden.weight".into(), vec![h, s, 1]);
    push("head.hidden.bias".into(), vec![h]);
    push("head.output.weight".into(), vec![1, h, 1]);
    push("head.output.bias".into(), vec![1]);
    specs
}

/// A validated voice file.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceFile {
    pub config: VoiceConfig,
    pub dynamics: Dynamics,
    /// The training summary, if the file has one.
    pub training: Option<String>,
    /// How the file stores its weights.
    pub precision: Precision,
    /// Every tensor of [`expected_tensors`], row-major, by name, widened to f32.
    pub tensors: HashMap<String, Vec<f32>>,
}

impl VoiceFile {
    /// Parses and validates a voice file: format and version, config and dynamics, then every
    /// expected tensor present with its shape, finite, all f32 or all f16, and no other tensor.
    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        let file = Opened::open(bytes, FORMAT_NAME, FORMAT_VERSION)?;
        let config: VoiceConfig = file.validated(KEY_CONFIG, VoiceConfig::validate)?;
        let dynamics: Dynamics = file.validated(KEY_DYNAMICS, Dynamics::validate)?;
        let (tensors, precision) = file.tensors(&expected_tensors(&config))?;
        Ok(Self {
            config,
            dynamics,
            training: file.optional(KEY_TRAINING).map(str::to_string),
            precision,
            tensors,
        })
    }

    /// The tensor `name` (present for every name of [`expected_tensors`]).
    pub fn tensor(&self, name: &str) -> &[f32] {
        self.tensors.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The bytes of a voice file of `tensors` (name, shape, row-major values) stored in `precision`.
///
/// # Errors
/// A value count that does not match its shape, or a value too large for `precision`.
pub fn to_safetensors(
    config: &VoiceConfig,
    dynamics: &Dynamics,
    training: Option<&str>,
    precision: Precision,
    tensors: &[NamedTensor],
) -> Result<Vec<u8>, String> {
    let text = |e: serde_json::Error| e.to_string();
    let mut metadata = vec![
        (KEY_CONFIG, serde_json::to_string(config).map_err(text)?),
        (KEY_DYNAMICS, serde_json::to_string(dynamics).map_err(text)?),
    ];
    if let Some(training) = training {
        metadata.push((KEY_TRAINING, training.to_string()));
    }
    container::write(FORMAT_NAME, FORMAT_VERSION, &metadata, precision, tensors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::random_values;

    fn config() -> VoiceConfig {
        VoiceConfig {
            residual_channels: 4,
            gate_channels: 3,
            skip_channels: 5,
            head_channels: 6,
            layers_per_stack: 3,
            ..VoiceConfig::default()
        }
    }

    fn dynamics() -> Dynamics {
        Dynamics {
            quiet_db: -45.0,
            loud_db: -15.0,
            attack_s: 0.03,
            release_s: 0.2,
            key_offsets_db: Vec::new(),
        }
    }

    fn tensors() -> Vec<NamedTensor> {
        random_values(expected_tensors(&config()), 7)
    }

    fn bytes(tensors: &[NamedTensor], precision: Precision) -> Vec<u8> {
        to_safetensors(&config(), &dynamics(), Some("test"), precision, tensors).unwrap()
    }

    #[test]
    fn a_voice_file_round_trips_in_both_precisions() {
        let tensors = tensors();
        let single = VoiceFile::parse(&bytes(&tensors, Precision::Single)).unwrap();
        assert_eq!(single.config, config());
        assert_eq!(single.dynamics, dynamics());
        assert_eq!(single.training.as_deref(), Some("test"));
        for (name, _, values) in &tensors {
            assert_eq!(single.tensor(name), values.as_slice(), "{name}");
        }
        let half = VoiceFile::parse(&bytes(&tensors, Precision::Half)).unwrap();
        assert_eq!(half.precision, Precision::Half);
        let (name, _, values) = &tensors[0];
        let rounded: Vec<f32> = values.iter().map(|v| Precision::Half.round(*v)).collect();
        assert_eq!(half.tensor(name), rounded.as_slice());
    }

    #[test]
    fn truncated_wrong_and_broken_voice_files_are_refused_with_the_reason() {
        let tensors = tensors();
        let good = bytes(&tensors, Precision::Single);
        assert!(matches!(
            VoiceFile::parse(&good[..good.len() - 10]),
            Err(ModelError::Truncated { .. })
        ));
        assert!(matches!(
            VoiceFile::parse(&good[..5]),
            Err(ModelError::Truncated { .. })
        ));
        let phrase_model = crate::test_kit::random_model_bytes(
            &crate::test_kit::small_config(),
            1,
            Precision::Single,
        );
        assert_eq!(
            VoiceFile::parse(&phrase_model).unwrap_err().to_string(),
            "not a wavejam-voice file (format \"wavejam-phrase-wavenet\")"
        );
        let newer = container::write(
            FORMAT_NAME,
            FORMAT_VERSION + 1,
            &[(KEY_CONFIG, serde_json::to_string(&config()).unwrap())],
            Precision::Single,
            &tensors,
        )
        .unwrap();
        assert!(matches!(
            VoiceFile::parse(&newer),
            Err(ModelError::Version { supported: 1, .. })
        ));
        let mut reshaped = tensors.clone();
        reshaped[0].1 = vec![4, CONTROLS + 1, 1];
        reshaped[0].2.extend([0.0; 4]);
        assert!(matches!(
            VoiceFile::parse(&bytes(&reshaped, Precision::Single)),
            Err(ModelError::Shape { name, .. }) if name == "input.weight"
        ));
        let mut nan = tensors.clone();
        nan[3].2[1] = f32::NAN;
        assert!(matches!(
            VoiceFile::parse(&bytes(&nan, Precision::Single)),
            Err(ModelError::NonFinite { index: 1, .. })
        ));
        let silent = Dynamics {
            quiet_db: -20.0,
            loud_db: -30.0,
            ..dynamics()
        };
        let backwards =
            to_safetensors(&config(), &silent, None, Precision::Single, &tensors).unwrap();
        assert!(matches!(
            VoiceFile::parse(&backwards),
            Err(ModelError::BadConfig { .. })
        ));
    }
}
