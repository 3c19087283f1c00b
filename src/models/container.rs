//! The container both kinds of model file share (the phrase WaveNet's and the neural voice's):
//! safetensors whose `__metadata__` names the format and its version, with every tensor of one
//! IEEE float type ([`Precision`]), validated in full on load (framing, format, version, each
//! expected tensor's shape and finiteness, no other tensor) with a [`ModelError`] that says what
//! is wrong. What the tensors and the other metadata mean is each format's own business.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// One tensor as a model file stores it: (name, shape, row-major values).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Metadata key of the format name.
pub const KEY_FORMAT: &str = "format";
/// Metadata key of the format version.
pub const KEY_VERSION: &str = "format_version";

/// How a model file stores its weights: every tensor in the same IEEE float type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// `F32`: what training computes in, kept for checkpoints that training resumes from.
    Single,
    /// `F16`: half the bytes to store and, in the kernel, to stream from memory every step (a
    /// step is bound by that bandwidth); 11 significant bits, plenty for trained weights.
    Half,
}

impl Precision {
    /// The safetensors dtype of the precision's tensors.
    fn dtype(self) -> Dtype {
        match self {
            Precision::Single => Dtype::F32,
            Precision::Half => Dtype::F16,
        }
    }

    /// The precision whose tensors have `dtype`, if any.
    fn of(dtype: Dtype) -> Option<Self> {
        match dtype {
            Dtype::F32 => Some(Precision::Single),
            Dtype::F16 => Some(Precision::Half),
            _ => None,
        }
    }

    /// `value` in this precision, widened back to f32 (rounded to nearest, ties to even).
    pub fn round(self, value: f32) -> f32 {
        match self {
            Precision::Single => value,
            Precision::Half => half::f16::from_f32(value).to_f32(),
        }
    }
}

/// Why a model file was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// The bytes are not a safetensors file (no header, header not JSON, bad offsets).
    NotSafetensors { reason: String },
    /// The file ends before its header or data does.
    Truncated { needed: usize, found: usize },
    /// A required metadata key is absent.
    MissingMetadata { key: &'static str },
    /// The file is some other format.
    WrongFormat {
        expected: &'static str,
        found: String,
    },
    /// The format version is not the one this build reads.
    Version { found: String, supported: u32 },
    /// The hyperparameters or vocabulary are unreadable, unusable or inconsistent.
    BadConfig { reason: String },
    /// An expected tensor is absent.
    MissingTensor { name: String },
    /// The file holds a tensor the config does not call for.
    UnexpectedTensor { name: String },
    /// A tensor's shape is not the one the config calls for.
    Shape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A tensor is neither f32 nor f16, or not of the file's first tensor's dtype (`expected`).
    Dtype {
        name: String,
        found: String,
        expected: String,
    },
    /// A tensor holds a NaN or an infinity (at this flat index).
    NonFinite { name: String, index: usize },
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::NotSafetensors { reason } => {
                write!(f, "not a safetensors model file: {reason}")
            }
            ModelError::Truncated { needed, found } => write!(
                f,
                "model file is truncated: {found} bytes, needs at least {needed}"
            ),
            ModelError::MissingMetadata { key } => {
                write!(f, "model file has no \"{key}\" in its metadata")
            }
            ModelError::WrongFormat { expected, found } => {
                write!(f, "not a {expected} file (format \"{found}\")")
            }
            ModelError::Version { found, supported } => write!(
                f,
                "model format version {found} is not supported (this build reads {supported})"
            ),
            ModelError::BadConfig { reason } => write!(f, "bad model config: {reason}"),
            ModelError::MissingTensor { name } => write!(f, "tensor {name} is missing"),
            ModelError::UnexpectedTensor { name } => {
                write!(f, "tensor {name} is not part of this model")
            }
            ModelError::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "shape mismatch for {name}: expected {expected:?}, found {found:?}"
            ),
            ModelError::Dtype {
                name,
                found,
                expected,
            } => write!(f, "tensor {name} is {found}, expected {expected}"),
            ModelError::NonFinite { name, index } => {
                write!(f, "tensor {name} has a non-finite value at index {index}")
            }
        }
    }
}

impl std::error::Error for ModelError {}

/// One tensor of the weight contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// A model file whose framing, format and version have been checked; its tensors are read
/// against the specs its metadata calls for ([`Opened::tensors`]).
pub struct Opened<'a> {
    metadata: HashMap<String, String>,
    file: SafeTensors<'a>,
}

impl<'a> Opened<'a> {
    /// Checks the safetensors framing and that the metadata names `format` at `version`.
    pub fn open(bytes: &'a [u8], format: &'static str, version: u32) -> Result<Self, ModelError> {
        check_framing(bytes)?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| match e {
            safetensors::SafeTensorError::MetadataIncompleteBuffer => data_length_error(bytes),
            other => ModelError::NotSafetensors {
                reason: other.to_string(),
            },
        })?;
        let file = SafeTensors::deserialize(bytes).map_err(|e| ModelError::NotSafetensors {
            reason: e.to_string(),
        })?;
        let opened = Self {
            metadata: header.metadata().clone().unwrap_or_default(),
            file,
        };
        let found = opened.get(KEY_FORMAT)?;
        if found != format {
            return Err(ModelError::WrongFormat {
                expected: format,
                found: found.to_string(),
            });
        }
        let found = opened.get(KEY_VERSION)?;
        if found.trim().parse::<u32>() != Ok(version) {
            return Err(ModelError::Version {
                found: found.to_string(),
                supported: version,
            });
        }
        Ok(opened)
    }

    /// The metadata value of `key`.
    pub fn get(&self, key: &'static str) -> Result<&str, ModelError> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or(ModelError::MissingMetadata { key })
    }

    /// The metadata value of `key`, if there is one.
    pub fn optional(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The JSON metadata value of `key`, parsed (`BadConfig` naming the key if it does not parse).
    pub fn json<T: serde::de::DeserializeOwned>(&self, key: &'static str) -> Result<T, ModelError> {
        serde_json::from_str(self.get(key)?).map_err(|e| ModelError::BadConfig {
            reason: format!("{key}: {e}"),
        })
    }

    /// [`json`](Self::json), then checked by `validate` (its reason becomes `BadConfig`).
    pub fn validated<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
        validate: impl FnOnce(&T) -> Result<(), String>,
    ) -> Result<T, ModelError> {
        let value = self.json(key)?;
        validate(&value).map_err(|reason| ModelError::BadConfig { reason })?;
        Ok(value)
    }

    /// Every tensor of `expected` (widened to f32, row-major, by name) and the file's precision:
    /// each present with its shape, finite, all f32 or all f16, and no other tensor in the file.
    pub fn tensors(
        &self,
        expected: &[TensorSpec],
    ) -> Result<(HashMap<String, Vec<f32>>, Precision), ModelError> {
        let mut present: BTreeMap<String, TensorView<'_>> =
            self.file.tensors().into_iter().collect();
        let mut tensors = HashMap::with_capacity(expected.len());
        let mut precision = None;
        for spec in expected {
            let view = present
                .remove(&spec.name)
                .ok_or_else(|| ModelError::MissingTensor {
                    name: spec.name.clone(),
                })?;
            // NOTE: the first tensor sets the file's precision; the others must share it.
            let (values, found) = read_values(spec, &view, precision)?;
            precision = Some(found);
            tensors.insert(spec.name.clone(), values);
        }
        if let Some(name) = present.into_keys().next() {
            return Err(ModelError::UnexpectedTensor { name });
        }
        // NOTE: an empty `expected` has no precision of its own.
        Ok((tensors, precision.unwrap_or(Precision::Single)))
    }
}

/// The 8-byte header length and the header itself must fit in the file.
fn check_framing(bytes: &[u8]) -> Result<(), ModelError> {
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(ModelError::Truncated {
            needed: 8,
            found: bytes.len(),
        });
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    // NOTE: safetensors caps headers at 100 MB; anything above is not a model file.
    if header_len > 100_000_000 {
        return Err(ModelError::NotSafetensors {
            reason: format!("header length {header_len} is implausible"),
        });
    }
    let needed = 8 + header_len as usize;
    if bytes.len() < needed {
        return Err(ModelError::Truncated {
            needed,
            found: bytes.len(),
        });
    }
    Ok(())
}

/// The error for a file whose data part is not as long as its header says: truncated when
/// shorter, not safetensors when longer.
fn data_length_error(bytes: &[u8]) -> ModelError {
    // NOTE: `check_framing` and safetensors have read the header, so these steps succeed.
    let header_len = bytes
        .first_chunk::<8>()
        .map_or(0, |n| u64::from_le_bytes(*n)) as usize;
    let header: serde_json::Value = bytes
        .get(8..8 + header_len)
        .and_then(|h| serde_json::from_slice(h).ok())
        .unwrap_or_default();
    let data_len = header
        .as_object()
        .into_iter()
        .flat_map(|tensors| tensors.values())
        .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0) as usize;
    let needed = 8 + header_len + data_len;
    if bytes.len() < needed {
        ModelError::Truncated {
            needed,
            found: bytes.len(),
        }
    } else {
        ModelError::NotSafetensors {
            reason: format!("{} bytes after the data", bytes.len() - needed),
        }
    }
}

/// The values of one tensor (widened to f32) and its precision, after checking its shape, its
/// dtype (`precision` where the file's is known) and finiteness.
fn read_values(
    spec: &TensorSpec,
    view: &TensorView<'_>,
    precision: Option<Precision>,
) -> Result<(Vec<f32>, Precision), ModelError> {
    if view.shape() != spec.shape.as_slice() {
        return Err(ModelError::Shape {
            name: spec.name.clone(),
            expected: spec.shape.clone(),
            found: view.shape().to_vec(),
        });
    }
    let found = Precision::of(view.dtype()).filter(|p| precision.is_none_or(|q| q == *p));
    let Some(found) = found else {
        return Err(ModelError::Dtype {
            name: spec.name.clone(),
            found: format!("{:?}", view.dtype()),
            expected: precision.map_or("F32 or F16".into(), |p| format!("{:?}", p.dtype())),
        });
    };
    // NOTE: safetensors data need not be aligned, so read bytes, not a cast slice.
    let values: Vec<f32> = match found {
        Precision::Single => view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Precision::Half => view
            .data()
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
    };
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::NonFinite {
            name: spec.name.clone(),
            index,
        });
    }
    Ok((values, found))
}

/// The bytes of a model file of `format` at `version` with `metadata` (key, value) and
/// Writes `bytes` (a model or voice file) to `path` whole or not at all: to a file beside it,
/// then renamed over it, so a run stopped mid-write leaves the file there as it was. The folder
/// is made if it is missing.
///
/// # Errors
/// The folder or the file cannot be written (the message names it).
pub fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    let failed = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| format!("cannot write {path}: {e}")
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed(path))?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, bytes).map_err(failed(&partial))?;
    std::fs::rename(&partial, path).map_err(failed(path))
}

/// `tensors` (name, shape, row-major f32 values) stored in `precision` (rounded to nearest).
/// Writes what it is given; [`Opened`] is the check. The same input gives the same bytes (keys
/// and tensors in name order), so a file's content hash identifies its model.
///
/// # Errors
/// A value count that does not match its shape, or a finite value too large for `precision`.
pub fn write(
    format: &str,
    version: u32,
    metadata: &[(&str, String)],
    precision: Precision,
    tensors: &[NamedTensor],
) -> Result<Vec<u8>, String> {
    let mut map = serde_json::Map::new();
    map.insert(KEY_FORMAT.to_string(), format.into());
    map.insert(KEY_VERSION.to_string(), version.to_string().into());
    for (key, value) in metadata {
        map.insert(key.to_string(), value.clone().into());
    }
    let metadata = map;
    let mut sorted: Vec<&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    // NOTE: serde_json's map is ordered by key, so the header is canonical.
    let mut header = serde_json::Map::new();
    header.insert(
        "__metadata__".to_string(),
        serde_json::Value::Object(metadata),
    );
    let mut offset = 0usize;
    for (name, shape, values) in &sorted {
        if shape.iter().product::<usize>() != values.len() {
            return Err(format!(
                "{name}: {} values for shape {shape:?}",
                values.len()
            ));
        }
        if let Some(v) = values
            .iter()
            .find(|v| v.is_finite() && !precision.round(**v).is_finite())
        {
            return Err(format!(
                "{name}: {v} does not fit in {precision:?} precision"
            ));
        }
        let dtype = format!("{:?}", precision.dtype());
        let end = offset + values.len() * precision.dtype().bitsize() / 8;
        header.insert(
            name.clone(),
            serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    let mut header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
    // The data starts 8-byte aligned, as the safetensors writer does it.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut bytes = Vec::with_capacity(8 + header.len() + offset);
    bytes.extend((header.len() as u64).to_le_bytes());
    bytes.extend(header);
    for (_, _, values) in sorted {
        match precision {
            Precision::Single => bytes.extend(values.iter().flat_map(|v| v.to_le_bytes())),
            Precision::Half => bytes.extend(
                values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes()),
            ),
        }
    }
    Ok(bytes)
}
