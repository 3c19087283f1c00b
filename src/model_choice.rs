//! The user's WaveNet model file: loaded from the panel, saved with the project as its path and
//! content hash, restored when the project is reopened.
//!
//! Every load validates the whole file ([`crate::model::ModelFile::parse`]: format version,
//! tensor names, shapes, dtypes, finite values). A bad file gives a message naming the problem
//! and changes nothing: the previous model keeps playing. On reopening, a file that is missing or
//! whose content changed since it was saved is reported, and the default model plays instead.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::model::WaveNetKernel;

/// Which model the project uses (`#[persist = "model"]`); no path means the embedded default.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ModelChoice {
    /// The model file, as the user gave it.
    pub path: Option<String>,
    /// [`content_hash`] of the file when it was loaded.
    pub hash: Option<String>,
}

/// The persisted field.
pub type ModelChoiceState = Mutex<ModelChoice>;

/// Shared by the panel (which loads), the generator thread (which takes the new model before its
/// next answer) and the audio thread (which reads only `generation`). Never locked by the audio
/// thread.
#[derive(Debug, Default)]
pub struct ModelShared {
    /// A validated model waiting for the generator; `Some(None)` asks for the default.
    pending: Mutex<Option<Option<WaveNetKernel>>>,
    /// What the panel shows about the model in use.
    message: Mutex<String>,
    /// Incremented on every model change, so the audio thread releases the answer playing.
    pub generation: AtomicU64,
}

impl ModelShared {
    /// Hands `kernel` (`None` = the default) to the generator and counts the change.
    pub fn offer(&self, kernel: Option<WaveNetKernel>) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(kernel);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The model offered since the last call, if any (the generator thread; never blocks).
    pub fn take(&self) -> Option<Option<WaveNetKernel>> {
        self.pending.try_lock().ok()?.take()
    }

    /// The panel's line about the model.
    pub fn message(&self) -> String {
        self.message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_message(&self, message: impl Into<String>) {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message.into();
    }
}

/// FNV-1a (64 bit) of `bytes` as 16 hex digits: tells whether a file changed (not a security
/// hash).
pub fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Reads and validates the model file at `path`: the model and its content hash, or a message
/// naming the file and the problem.
pub fn load_model_file(path: &Path) -> Result<(WaveNetKernel, String), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let kernel = WaveNetKernel::load(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((kernel, content_hash(&bytes)))
}

/// The model `choice` names, as the project is reopened: `Ok(None)` for the default, the model
/// if its file is there unchanged, else a message saying what happened (the default plays).
pub fn restore(choice: &ModelChoice) -> Result<Option<WaveNetKernel>, String> {
    let Some(path) = &choice.path else {
        return Ok(None);
    };
    let (kernel, hash) =
        load_model_file(Path::new(path)).map_err(|e| format!("{e}; playing the default model"))?;
    if choice.hash.as_ref().is_some_and(|saved| *saved != hash) {
        return Err(format!(
            "{path} changed since the project was saved; playing the default model"
        ));
    }
    Ok(Some(kernel))
}

/// A short description of a loaded model for the panel.
pub fn describe(kernel: &WaveNetKernel, path: &str) -> String {
    let config = kernel.config();
    format!(
        "{path}: {} parameters, {} layers, receptive field {} events",
        config.param_count(),
        config.layers(),
        config.receptive_field()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::DEFAULT_WAVENET;
    use crate::test_dir::TempDir;

    /// Each kind of bad file gets a message naming the file and its problem.
    #[test]
    fn bad_files_are_refused_with_a_clear_message() {
        let dir = TempDir::new("bad-models");
        let good = DEFAULT_WAVENET.to_vec();
        let mut nan = good.clone();
        // The last 4 bytes are the last value of the last tensor: make it a NaN.
        let n = nan.len();
        nan[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&good[8..8 + header_len]).unwrap();
        let wrong_version =
            header.replacen("\"format_version\":\"1\"", "\"format_version\":\"9\"", 1);
        assert_ne!(wrong_version, header, "the header names its version");
        let mut versioned = (wrong_version.len() as u64).to_le_bytes().to_vec();
        versioned.extend_from_slice(wrong_version.as_bytes());
        versioned.extend_from_slice(&good[8 + header_len..]);
        let cases: [(&str, Vec<u8>, &str); 4] = [
            ("truncated.safetensors", good[..good.len() / 2].to_vec(), ""),
            ("notes.safetensors", b"MThd not a model".to_vec(), ""),
            ("nan.safetensors", nan, "finite"),
            ("version.safetensors", versioned, "version"),
        ];
        for (name, bytes, expected) in cases {
            let path = dir.0.join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = load_model_file(&path).unwrap_err();
            assert!(err.contains(name), "{err}");
            assert!(err.to_lowercase().contains(expected), "{name}: {err}");
        }
        let missing = load_model_file(&dir.0.join("missing.safetensors")).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
    }

    #[test]
    fn a_reopened_project_gets_its_model_or_a_reason_and_the_default() {
        let dir = TempDir::new("restore");
        let path = dir.0.join("mine.safetensors");
        std::fs::write(&path, DEFAULT_WAVENET).unwrap();
        let (_, hash) = load_model_file(&path).unwrap();
        let choice = ModelChoice {
            path: Some(path.to_string_lossy().into_owned()),
            hash: Some(hash),
        };
        assert!(restore(&choice).unwrap().is_some());
        assert!(restore(&ModelChoice::default()).unwrap().is_none());
        // The file changed: still a valid model, but not the one saved.
        let mut changed = DEFAULT_WAVENET.to_vec();
        let n = changed.len();
        changed[n - 4..].copy_from_slice(&0.5f32.to_le_bytes());
        std::fs::write(&path, changed).unwrap();
        let err = restore(&choice).unwrap_err();
        assert!(err.contains("changed") && err.contains("default"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = restore(&choice).unwrap_err();
        assert!(
            err.contains("cannot read") && err.contains("default"),
            "{err}"
        );
    }

    #[test]
    fn offers_are_taken_once_and_counted() {
        let shared = ModelShared::default();
        assert!(shared.take().is_none());
        shared.offer(None);
        assert_eq!(shared.generation.load(Ordering::Acquire), 1);
        assert!(matches!(shared.take(), Some(None)));
        assert!(shared.take().is_none());
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }
}
