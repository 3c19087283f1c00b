//! The phrase WaveNet's file format: safetensors with the weight contract below and the format,
//! version, hyperparameters and vocabulary in its `__metadata__`, validated in full on load.
//!
//! # Weight contract (names from the training model's `VarBuilder`)
//! | tensor | shape |
//! | --- | --- |
//! | `token_embedding.weight` | `[V, C]` |
//! | `position_embedding.weight` | `[P, C]` |
//! | `layers.{l}.dilated.weight`, `.bias` | `[2G, C, 2]`, `[2G]` (tap 0 is `t − d`, tap 1 is `t`; outputs `..G` are tanh, `G..` sigmoid) |
//! | `layers.{l}.skip.weight`, `.bias` | `[S, G, 1]`, `[S]` |
//! | `layers.{l}.residual.weight`, `.bias` | `[C, G, 1]`, `[C]` (every layer but the last) |
//! | `head.hidden.weight`, `.bias` | `[H, S, 1]`, `[H]` |
//! | `head.output.weight`, `.bias` | `[V, H, 1]`, `[V]` |
//!
//! Every tensor is little-endian and of one dtype, the file's [`Precision`]: `F16` (what
//! `wavejam train` writes as a model: half the bytes, and the kernel streams them as they are) or
//! `F32` (its resumable checkpoints, and models written before half precision). Metadata keys: `format` = [`FORMAT_NAME`],
//! `format_version` = [`FORMAT_VERSION`], `config` (JSON [`WaveNetConfig`]), `vocabulary` (JSON
//! [`Vocabulary`], whose `len()` must be the config's `vocab_size`), and optionally `training`
//! (free text: corpus, epochs, validation loss).

use std::collections::HashMap;

use crate::models::container::{self, NamedTensor, Opened};
pub use crate::models::container::{ModelError, Precision, TensorSpec, KEY_FORMAT, KEY_VERSION};
use crate::models::stack::layer_tensors;

use crate::models::wavenet::WaveNetConfig;
use crate::music::encoding::Vocabulary;

/// The `format` metadata value of a phrase WaveNet file.
pub const FORMAT_NAME: &str = "wavejam-phrase-wavenet";
/// The version of the format this build reads and writes. A change of meaning gets a new number.
pub const FORMAT_VERSION: u32 = 1;

/// Metadata key of the JSON hyperparameters.
pub const KEY_CONFIG: &str = "config";
/// Metadata key of the JSON vocabulary.
pub const KEY_VOCABULARY: &str = "vocabulary";
/// Metadata key of the free-text training summary.
pub const KEY_TRAINING: &str = "training";

/// Every tensor a model of `config` has, in a fixed order (embeddings, layers, head).
pub fn expected_tensors(config: &WaveNetConfig) -> Vec<TensorSpec> {
    let (v, p, c, g, s, h) = (
        config.vocab_size,
        config.bar_positions,
        config.residual_channels,
        config.gate_channels,
        config.skip_channels,
        config.head_channels,
    );
    let mut specs = Vec::new();
    let mut push = |name: String, shape: Vec<usize>| specs.push(TensorSpec { name, shape });
    push("token_embedding.weight".into(), vec![v, c]);
    push("position_embedding.weight".into(), vec![p, c]);
    specs.extend(layer_tensors(config, c, g, s));
    let mut push = |name: String, shape: Vec<usize>| specs.push(TensorSpec { name, shape });
    push("head.hidden.weight".into(), vec![h, s, 1]);
    push("head.hidden.bias".into(), vec![h]);
    push("head.output.weight".into(), vec![v, h, 1]);
    push("head.output.bias".into(), vec![v]);
    specs
}

/// A validated model file: its hyperparameters, vocabulary, training summary and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFile {
    pub config: WaveNetConfig,
    pub vocabulary: Vocabulary,
    /// The free-text training summary, if the file has one.
    pub training: Option<String>,
    /// How the file stores its weights (every value of `tensors` is exact in it).
    pub precision: Precision,
    /// Every tensor of [`expected_tensors`], row-major, by name, widened to f32.
    pub tensors: HashMap<String, Vec<f32>>,
}

impl ModelFile {
    /// Parses and validates safetensors bytes: format and version, config and vocabulary, then
    /// every expected tensor present with its shape, finite, all f32 or all f16, and no other
    /// tensor.
    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        let file = Opened::open(bytes, FORMAT_NAME, FORMAT_VERSION)?;
        let config: WaveNetConfig = file.validated(KEY_CONFIG, WaveNetConfig::validate)?;
        let vocabulary: Vocabulary = file.json(KEY_VOCABULARY)?;
        let reads = Vocabulary::default();
        if vocabulary != reads {
            // The engines, the answerer and the listening all speak the default vocabulary.
            return Err(ModelError::BadConfig {
                reason: format!(
                    "its time shifts run to {} ticks; WaveJam reads models whose run to {}",
                    vocabulary.max_shift_ticks(),
                    reads.max_shift_ticks()
                ),
            });
        }
        if vocabulary.len() != config.vocab_size {
            return Err(ModelError::BadConfig {
                reason: format!(
                    "the vocabulary has {} ids, the config {}",
                    vocabulary.len(),
                    config.vocab_size
                ),
            });
        }
        let (tensors, precision) = file.tensors(&expected_tensors(&config))?;
        Ok(Self {
            config,
            vocabulary,
            training: file.optional(KEY_TRAINING).map(str::to_string),
            precision,
            tensors,
        })
    }

    /// The tensor `name` (present for every name of [`expected_tensors`]).
    pub fn tensor(&self, name: &str) -> &[f32] {
        self.tensors.get(name).map_or(&[], Vec::as_slice)
    }

    /// The file's bytes with its weights stored in `precision` (rounded to nearest), metadata
    /// kept: how a model written in single precision becomes a half one (`wavejam convert`).
    ///
    /// # Errors
    /// A weight too large for `precision`.
    pub fn to_bytes(&self, precision: Precision) -> Result<Vec<u8>, String> {
        let tensors: Vec<NamedTensor> = expected_tensors(&self.config)
            .into_iter()
            .map(|spec| {
                let values = self.tensor(&spec.name).to_vec();
                (spec.name, spec.shape, values)
            })
            .collect();
        to_safetensors(
            &self.config,
            &self.vocabulary,
            self.training.as_deref(),
            precision,
            &tensors,
        )
    }
}

/// The bytes of a model file: `tensors` (name, shape, row-major f32 values), stored in
/// `precision` (rounded to nearest), with the format, version, config, vocabulary and optional
/// training summary in the metadata. Writes what it is given; [`ModelFile::parse`] is the check.
/// The same tensors give the same bytes, so a file's content hash identifies its model.
///
/// # Errors
/// A value count that does not match its shape, or a finite value too large for `precision`.
pub fn to_safetensors(
    config: &WaveNetConfig,
    vocabulary: &Vocabulary,
    training: Option<&str>,
    precision: Precision,
    tensors: &[NamedTensor],
) -> Result<Vec<u8>, String> {
    let mut metadata = vec![
        (KEY_CONFIG, json(config)?),
        (KEY_VOCABULARY, json(vocabulary)?),
    ];
    if let Some(training) = training {
        metadata.push((KEY_TRAINING, training.to_string()));
    }
    container::write(FORMAT_NAME, FORMAT_VERSION, &metadata, precision, tensors)
}

/// A metadata value as JSON text.
fn json<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_kit::{random_tensors, small_config};
    use safetensors::tensor::{Dtype, TensorView};

    fn write(config: &WaveNetConfig, tensors: &[NamedTensor]) -> Vec<u8> {
        to_safetensors(
            config,
            &Vocabulary::default(),
            Some("test"),
            Precision::Single,
            tensors,
        )
        .unwrap()
    }

    /// A file with `metadata` replaced, written with the plain safetensors crate.
    fn with_metadata(tensors: &[NamedTensor], metadata: &[(&str, String)]) -> Vec<u8> {
        let bytes: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
            .collect();
        let views: Vec<(&str, TensorView<'_>)> = tensors
            .iter()
            .zip(&bytes)
            .map(|((n, s, _), b)| {
                (
                    n.as_str(),
                    TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
                )
            })
            .collect();
        let metadata = metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        safetensors::serialize(views, Some(metadata)).unwrap()
    }

    fn good_metadata(config: &WaveNetConfig) -> Vec<(&'static str, String)> {
        vec![
            (KEY_FORMAT, FORMAT_NAME.to_string()),
            (KEY_VERSION, FORMAT_VERSION.to_string()),
            (KEY_CONFIG, serde_json::to_string(config).unwrap()),
            (
                KEY_VOCABULARY,
                serde_json::to_string(&Vocabulary::default()).unwrap(),
            ),
        ]
    }

    #[test]
    fn a_good_file_round_trips() {
        let config = small_config();
        let tensors = random_tensors(&config, 1);
        let file = ModelFile::parse(&write(&config, &tensors)).unwrap();
        assert_eq!(file.config, config);
        assert_eq!(file.vocabulary, Vocabulary::default());
        assert_eq!(file.training.as_deref(), Some("test"));
        assert_eq!(file.tensors.len(), tensors.len());
        for (name, _, values) in &tensors {
            assert_eq!(file.tensor(name), values.as_slice(), "{name}");
        }
        assert_eq!(file.precision, Precision::Single);
        // The plain-crate writer with the same metadata makes an equally good file.
        assert!(ModelFile::parse(&with_metadata(&tensors, &good_metadata(&config))).is_ok());
    }

    #[test]
    fn a_half_file_holds_the_weights_rounded_to_half() {
        let config = small_config();
        let mut tensors = random_tensors(&config, 1);
        // Beyond half's 65504 a weight cannot be written.
        tensors[3].2[2] = 7e4;
        let half = |t: &[NamedTensor]| {
            to_safetensors(&config, &Vocabulary::default(), None, Precision::Half, t)
        };
        assert_eq!(
            half(&tensors),
            Err(format!(
                "{}: 70000 does not fit in Half precision",
                tensors[3].0
            ))
        );
        tensors[3].2[2] = 0.1;
        let bytes = half(&tensors).unwrap();
        assert!(bytes.len() < write(&config, &tensors).len() / 2 + 4096);
        let file = ModelFile::parse(&bytes).unwrap();
        assert_eq!(file.precision, Precision::Half);
        let mut changed = 0;
        for (name, _, values) in &tensors {
            for (&read, &written) in file.tensor(name).iter().zip(values) {
                assert_eq!(read, half::f16::from_f32(written).to_f32(), "{name}");
                // Half an ulp: 2⁻¹¹ relative, 2⁻²⁵ absolute below half's normal numbers.
                let bound = (written.abs() / 2048.0).max(2f32.powi(-25));
                assert!(
                    (read - written).abs() <= bound,
                    "{name}: {written} → {read}"
                );
                changed += usize::from(read != written);
            }
        }
        assert!(changed > 0);
        // Converting the single file gives the same bytes, and so does converting it again.
        let single = ModelFile::parse(&write(&config, &tensors)).unwrap();
        let mut converted = single.to_bytes(Precision::Half).unwrap();
        assert!(converted != bytes, "the training summary is kept");
        let training = single.training.clone();
        assert_eq!(ModelFile::parse(&converted).unwrap().training, training);
        converted = ModelFile {
            training: None,
            ..single
        }
        .to_bytes(Precision::Half)
        .unwrap();
        assert!(converted == bytes);
        assert!(file.to_bytes(Precision::Half).unwrap() == bytes);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_refused() {
        let config = small_config();
        let bytes = write(&config, &random_tensors(&config, 1));
        let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        for cut in [0, 5, 8, header_end - 3, header_end + 10, bytes.len() - 1] {
            assert_eq!(
                ModelFile::parse(&bytes[..cut]),
                Err(ModelError::Truncated {
                    needed: if cut < 8 {
                        8
                    } else if cut < header_end {
                        header_end
                    } else {
                        bytes.len()
                    },
                    found: cut,
                }),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.extend([0; 4]);
        assert!(matches!(
            ModelFile::parse(&longer),
            Err(ModelError::NotSafetensors { .. })
        ));
        let midi = b"MThd\0\0\0\x06\0\x01\0\x01\x01\xe0MTrk\0\0\0\x04\0\xff\x2f\0";
        assert!(matches!(
            ModelFile::parse(midi),
            Err(ModelError::NotSafetensors { .. })
        ));
        let mut not_json = vec![8, 0, 0, 0, 0, 0, 0, 0];
        not_json.extend(b"not json");
        assert!(matches!(
            ModelFile::parse(&not_json),
            Err(ModelError::NotSafetensors { .. })
        ));
    }

    #[test]
    fn wrong_format_version_or_config_is_refused() {
        let config = small_config();
        let tensors = random_tensors(&config, 1);
        let with = |key: &'static str, value: Option<&str>| {
            let mut metadata = good_metadata(&config);
            metadata.retain(|(k, _)| *k != key);
            if let Some(value) = value {
                metadata.push((key, value.to_string()));
            }
            ModelFile::parse(&with_metadata(&tensors, &metadata))
        };
        assert_eq!(
            with(KEY_VERSION, Some("2")),
            Err(ModelError::Version {
                found: "2".into(),
                supported: FORMAT_VERSION
            })
        );
        assert_eq!(
            with(KEY_VERSION, None),
            Err(ModelError::MissingMetadata { key: KEY_VERSION })
        );
        assert_eq!(
            with(KEY_FORMAT, Some("gpt2")),
            Err(ModelError::WrongFormat {
                expected: FORMAT_NAME,
                found: "gpt2".into()
            })
        );
        assert!(matches!(
            with(KEY_CONFIG, Some("{\"vocab_size\": 3}")),
            Err(ModelError::BadConfig { .. })
        ));
        let zero_stacks = serde_json::to_string(&WaveNetConfig {
            stacks: 0,
            ..config
        })
        .unwrap();
        assert!(
            matches!(with(KEY_CONFIG, Some(&zero_stacks)), Err(ModelError::BadConfig { reason }) if reason.contains("stacks"))
        );
        assert!(matches!(
            with(KEY_VOCABULARY, Some("{\"max_shift_ticks\": 48}")),
            Err(ModelError::BadConfig { reason }) if reason.contains("run to 48 ticks")
        ));
        // No metadata at all.
        let bare = with_metadata(&tensors, &[]);
        assert_eq!(
            ModelFile::parse(&bare),
            Err(ModelError::MissingMetadata { key: KEY_FORMAT })
        );
    }

    /// A whole, consistent model of another vocabulary (its config and tensors sized for it)
    /// is refused: the engines, the answerer and the listening speak the default one, and such
    /// a model would fail at its first answer.
    #[test]
    fn a_model_of_another_vocabulary_is_refused() {
        let other = Vocabulary::new(48);
        let config = WaveNetConfig {
            vocab_size: other.len(),
            ..small_config()
        };
        let bytes = to_safetensors(
            &config,
            &other,
            None,
            Precision::Single,
            &random_tensors(&config, 1),
        )
        .unwrap();
        let error = ModelFile::parse(&bytes).unwrap_err().to_string();
        assert!(error.contains("run to 48 ticks"), "{error}");
    }

    #[test]
    fn wrong_shape_names_the_tensor_and_both_shapes() {
        let config = small_config();
        let mut tensors = random_tensors(&config, 1);
        let skip = tensors
            .iter_mut()
            .find(|t| t.0 == "layers.3.skip.weight")
            .unwrap();
        skip.1 = vec![28, 13, 1];
        skip.2 = vec![0.5; 28 * 13];
        let err = ModelFile::parse(&write(&config, &tensors)).unwrap_err();
        assert_eq!(
            err,
            ModelError::Shape {
                name: "layers.3.skip.weight".into(),
                expected: vec![28, 12, 1],
                found: vec![28, 13, 1],
            }
        );
        assert_eq!(
            err.to_string(),
            "shape mismatch for layers.3.skip.weight: expected [28, 12, 1], found [28, 13, 1]"
        );
        // A file of another config is refused at its first differing tensor.
        let bigger = WaveNetConfig {
            residual_channels: 24,
            ..config
        };
        let file = write(&config, &random_tensors(&bigger, 1));
        assert!(matches!(
            ModelFile::parse(&file),
            Err(ModelError::Shape { name, .. }) if name == "token_embedding.weight"
        ));
    }

    #[test]
    fn missing_extra_nan_and_mistyped_tensors_are_refused() {
        let config = small_config();
        let good = random_tensors(&config, 1);

        let mut missing = good.clone();
        missing.retain(|t| t.0 != "head.output.bias");
        assert_eq!(
            ModelFile::parse(&write(&config, &missing)),
            Err(ModelError::MissingTensor {
                name: "head.output.bias".into()
            })
        );

        // The last layer has no residual; a file that has one is another model.
        let mut extra = good.clone();
        extra.push(("layers.7.residual.bias".into(), vec![20], vec![0.0; 20]));
        assert_eq!(
            ModelFile::parse(&write(&config, &extra)),
            Err(ModelError::UnexpectedTensor {
                name: "layers.7.residual.bias".into()
            })
        );

        for bad in [f32::NAN, f32::INFINITY] {
            let mut nan = good.clone();
            let emb = nan
                .iter_mut()
                .find(|t| t.0 == "layers.2.dilated.bias")
                .unwrap();
            emb.2[5] = bad;
            assert_eq!(
                ModelFile::parse(&write(&config, &nan)),
                Err(ModelError::NonFinite {
                    name: "layers.2.dilated.bias".into(),
                    index: 5
                })
            );
        }

        // The same bias as f64 (8 bytes a value), or as f16 in an f32 file; or the whole file
        // as f64.
        let retyped = |dtype: Dtype, only: Option<&str>| {
            let dtype_of = |name: &str| {
                if only.is_none_or(|n| n == name) {
                    dtype
                } else {
                    Dtype::F32
                }
            };
            let data: Vec<Vec<u8>> = good
                .iter()
                .map(|(name, _, v)| match dtype_of(name) {
                    Dtype::F64 => v.iter().flat_map(|x| f64::from(*x).to_le_bytes()).collect(),
                    Dtype::F16 => v
                        .iter()
                        .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                        .collect(),
                    _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                })
                .collect();
            let views: Vec<(&str, TensorView<'_>)> = good
                .iter()
                .zip(&data)
                .map(|((n, s, _), b)| {
                    (
                        n.as_str(),
                        TensorView::new(dtype_of(n), s.clone(), b).unwrap(),
                    )
                })
                .collect();
            let metadata = good_metadata(&config)
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            ModelFile::parse(&safetensors::serialize(views, Some(metadata)).unwrap())
        };
        let dtype_error = |name: &str, found: &str, expected: &str| {
            Err(ModelError::Dtype {
                name: name.into(),
                found: found.into(),
                expected: expected.into(),
            })
        };
        let bias = "head.hidden.bias";
        assert_eq!(
            retyped(Dtype::F64, Some(bias)),
            dtype_error(bias, "F64", "F32")
        );
        assert_eq!(
            retyped(Dtype::F16, Some(bias)),
            dtype_error(bias, "F16", "F32")
        );
        let first = "token_embedding.weight";
        let err = retyped(Dtype::F64, None);
        assert_eq!(err, dtype_error(first, "F64", "F32 or F16"));
        assert_eq!(
            err.unwrap_err().to_string(),
            "tensor token_embedding.weight is F64, expected F32 or F16"
        );
        assert_eq!(
            retyped(Dtype::F16, None).map(|f| f.precision),
            Ok(Precision::Half)
        );
    }
}
