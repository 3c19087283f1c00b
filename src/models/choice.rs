//! The user's WaveNet model file: loaded from the panel, saved with the project as its path and
//! content hash, restored when the project is reopened, handed to the generator thread. The
//! same loading, choice and error types serve the user's voice file (`crate::voice::slot`).
//!
//! Every load validates the whole file ([`crate::models::wavenet::ModelFile::parse`]: format
//! version, tensor names, shapes, dtypes, finite values). A bad file gives a typed error
//! ([`ModelFileError`]) naming the file and the problem and changes nothing: the previous model
//! keeps playing. On reopening, a file that is missing or whose content changed since it was
//! saved is reported, and the default model plays instead. [`ModelSlot`] owns the loading, the
//! hand-over and the panel's line about the model.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::models::stack::DilatedStack;
use crate::models::wavenet::{ModelError, WaveNetKernel};

/// The panel's model line when the embedded WaveNet plays.
pub const DEFAULT_MODEL_MESSAGE: &str = "default model (embedded)";

/// Which model the project uses (`#[persist = "model"]`); no path means the embedded default.
///
/// A saved choice of the wrong shape (a corrupt project) loads as the default, with a logged
/// reason, rather than failing to load and leaving the choice made before in place.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "SavedChoice")]
pub struct ModelChoice {
    /// The model file, as the user gave it.
    pub path: Option<String>,
    /// [`content_hash`] of the file when it was loaded.
    pub hash: Option<String>,
}

/// Whatever JSON a project holds for a model or voice choice.
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct SavedChoice(serde_json::Value);

/// The fields as they are saved (the derived, strict reading).
#[derive(serde::Deserialize)]
struct ChoiceFields {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    hash: Option<String>,
}

impl From<SavedChoice> for ModelChoice {
    fn from(saved: SavedChoice) -> Self {
        match serde_json::from_value::<ChoiceFields>(saved.0) {
            Ok(ChoiceFields { path, hash }) => ModelChoice { path, hash },
            Err(err) => {
                nice_plug::nice_warn!("WaveJam: a saved model or voice choice is unreadable ({err}): the default plays");
                ModelChoice::default()
            }
        }
    }
}

/// The persisted field.
pub type ModelChoiceState = Mutex<ModelChoice>;

/// Why a model file cannot play.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelFileError {
    /// The file cannot be read (missing, a folder, no permission).
    Unreadable { path: String, reason: String },
    /// The file is not a valid model.
    Invalid { path: String, error: ModelError },
    /// The project's file changed since the project was saved.
    Changed { path: String },
    /// The audio thread has not yet taken the files handed over before (the host is not
    /// processing): this one was not handed over.
    Busy { path: String },
}

impl std::fmt::Display for ModelFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelFileError::Unreadable { path, reason } => {
                write!(f, "cannot read {path}: {reason}")
            }
            ModelFileError::Invalid { path, error } => write!(f, "{path}: {error}"),
            ModelFileError::Changed { path } => {
                write!(f, "{path} changed since the project was saved")
            }
            ModelFileError::Busy { path } => write!(
                f,
                "{path}: not handed over, the host has not played the files loaded before it yet (try again once it plays)"
            ),
        }
    }
}

impl std::error::Error for ModelFileError {}

/// What the panel says about the model: which plays, or why the one asked for does not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelLine {
    pub text: String,
    /// Set when a model asked for could not play (the text says what plays instead).
    pub error: Option<ModelFileError>,
}

impl ModelLine {
    /// The line for a model that plays.
    pub fn playing(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            error: None,
        }
    }

    /// The line for `error`, with what plays instead.
    pub fn failed(error: ModelFileError, instead: &str) -> Self {
        Self {
            text: format!("{error} ({instead})"),
            error: Some(error),
        }
    }
}

/// The model hand-over, shared by the panel (which loads files), the generator thread (which
/// takes the new model before its next answer) and the audio thread (which reads only
/// `generation`, never locks).
#[derive(Debug, Default)]
pub struct ModelSlot {
    /// A validated model waiting for the generator; `Some(None)` asks for the default.
    pending: Mutex<Option<Option<WaveNetKernel>>>,
    /// What the panel shows about the model.
    line: Mutex<ModelLine>,
    /// Incremented on every model change, so the audio thread releases the answer playing.
    pub generation: AtomicU64,
}

impl ModelSlot {
    /// Loads and validates the model file at `path` and hands it to the generator; the project
    /// now names it in `choice`. A bad file changes nothing but the line, and is returned.
    pub fn load_file(&self, path: &str, choice: &ModelChoiceState) -> Result<(), ModelFileError> {
        match load_model_file(Path::new(path)) {
            Ok((kernel, hash)) => {
                self.set_line(ModelLine::playing(describe(&kernel, path)));
                self.offer(Some(kernel));
                *choice.lock().unwrap_or_else(|e| e.into_inner()) = ModelChoice {
                    path: Some(path.to_string()),
                    hash: Some(hash),
                };
                Ok(())
            }
            Err(error) => {
                self.set_line(ModelLine::failed(
                    error.clone(),
                    "the previous model keeps playing",
                ));
                Err(error)
            }
        }
    }

    /// Back to the embedded model; the project names none.
    pub fn load_default(&self, choice: &ModelChoiceState) {
        self.offer(None);
        self.set_line(ModelLine::playing(DEFAULT_MODEL_MESSAGE));
        *choice.lock().unwrap_or_else(|e| e.into_inner()) = ModelChoice::default();
    }

    /// Hands `kernel` (`None` = the default) to the generator and counts the change.
    pub fn offer(&self, kernel: Option<WaveNetKernel>) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(kernel);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops a model offered but not yet taken: a project loaded since names another (the
    /// main thread, at activation, while no generator runs).
    pub fn withdraw(&self) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// The model offered since the last call, if any (the generator thread; never blocks).
    pub fn take(&self) -> Option<Option<WaveNetKernel>> {
        self.pending.try_lock().ok()?.take()
    }

    /// The panel's line about the model.
    pub fn line(&self) -> ModelLine {
        self.line.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_line(&self, line: ModelLine) {
        *self.line.lock().unwrap_or_else(|e| e.into_inner()) = line;
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

/// Reads and validates the model file at `path`: the model and its content hash.
pub fn load_model_file(path: &Path) -> Result<(WaveNetKernel, String), ModelFileError> {
    load_file(path, WaveNetKernel::load)
}

/// Reads the file at `path` and validates it with `parse` (a phrase model's or a voice's):
/// what it holds and its content hash, or why it cannot play, naming the file.
pub fn load_file<T>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, ModelError>,
) -> Result<(T, String), ModelFileError> {
    let named = || path.display().to_string();
    let bytes = read_bounded(path).map_err(|reason| ModelFileError::Unreadable {
        path: named(),
        reason,
    })?;
    let loaded = parse(&bytes).map_err(|error| ModelFileError::Invalid {
        path: named(),
        error,
    })?;
    Ok((loaded, content_hash(&bytes)))
}

/// Largest file [`load_file`] reads, in bytes: far more than any model or voice WaveJam makes
/// (the embedded phrase model is 1 MB), so a wrong file (a recording, a device, a pipe) is
/// refused at once rather than read for minutes or into all the memory there is.
pub const MAX_MODEL_FILE_BYTES: u64 = 64 << 20;

/// The bytes of the regular file at `path`, if it holds at most [`MAX_MODEL_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    // Asked before opening: opening a pipe waits for a writer.
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    if meta.len() > MAX_MODEL_FILE_BYTES {
        return Err(format!(
            "{} MB, more than any model or voice ({} MB at most)",
            meta.len() >> 20,
            MAX_MODEL_FILE_BYTES >> 20
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_MODEL_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_MODEL_FILE_BYTES {
        return Err("it grew past the largest model while being read".into());
    }
    Ok(bytes)
}

/// The model `choice` names, as the project is reopened: `Ok(None)` for the default, the model
/// if its file is there unchanged, else why not (the default plays).
pub fn restore(choice: &ModelChoice) -> Result<Option<WaveNetKernel>, ModelFileError> {
    restore_with(choice, WaveNetKernel::load)
}

/// The file `choice` names, validated with `parse`, as the project is reopened: `Ok(None)`
/// when it names none, what the file holds if it is there unchanged, else why not.
pub fn restore_with<T>(
    choice: &ModelChoice,
    parse: impl FnOnce(&[u8]) -> Result<T, ModelError>,
) -> Result<Option<T>, ModelFileError> {
    let Some(path) = &choice.path else {
        return Ok(None);
    };
    let (loaded, hash) = load_file(Path::new(path), parse)?;
    if choice.hash.as_ref().is_some_and(|saved| *saved != hash) {
        return Err(ModelFileError::Changed { path: path.clone() });
    }
    Ok(Some(loaded))
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
    use crate::test_kit::TempDir;

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
        type IsExpected = fn(&ModelError) -> bool;
        let cases: [(&str, Vec<u8>, IsExpected); 4] = [
            (
                "truncated.safetensors",
                good[..good.len() / 2].to_vec(),
                |e| matches!(e, ModelError::Truncated { .. }),
            ),
            ("notes.safetensors", b"MThd not a model".to_vec(), |e| {
                matches!(e, ModelError::NotSafetensors { .. })
            }),
            ("nan.safetensors", nan, |e| {
                matches!(e, ModelError::NonFinite { .. })
            }),
            ("version.safetensors", versioned, |e| {
                matches!(e, ModelError::Version { .. })
            }),
        ];
        for (name, bytes, expected) in cases {
            let path = dir.0.join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = load_model_file(&path).unwrap_err();
            assert!(
                err.to_string().contains(name),
                "the message names the file: {err}"
            );
            assert!(
                matches!(&err, ModelFileError::Invalid { error, .. } if expected(error)),
                "{name}: {err:?}"
            );
        }
        let missing = load_model_file(&dir.0.join("missing.safetensors")).unwrap_err();
        assert!(
            matches!(missing, ModelFileError::Unreadable { .. }),
            "{missing:?}"
        );
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
        assert!(matches!(err, ModelFileError::Changed { .. }), "{err:?}");
        std::fs::remove_file(&path).unwrap();
        let err = restore(&choice).unwrap_err();
        assert!(matches!(err, ModelFileError::Unreadable { .. }), "{err:?}");
    }

    #[test]
    fn offers_are_taken_once_and_counted() {
        let slot = ModelSlot::default();
        assert!(slot.take().is_none());
        slot.offer(None);
        assert_eq!(slot.generation.load(Ordering::Acquire), 1);
        assert!(matches!(slot.take(), Some(None)));
        assert!(slot.take().is_none());
        assert_ne!(content_hash(b"a"), content_hash(b"b"));
    }

    /// A file loaded from the panel plays and is named in the project; a bad one changes
    /// neither, and the line says why; "Default" goes back.
    #[test]
    fn the_slot_loads_files_and_keeps_the_last_good_model_on_a_bad_one() {
        let dir = TempDir::new("slot");
        let good = dir.0.join("good.safetensors");
        std::fs::write(&good, DEFAULT_WAVENET).unwrap();
        let good = good.to_string_lossy().into_owned();
        let slot = ModelSlot::default();
        let choice = ModelChoiceState::default();
        slot.load_file(&good, &choice).unwrap();
        assert!(matches!(slot.take(), Some(Some(_))));
        assert_eq!(choice.lock().unwrap().path.as_deref(), Some(good.as_str()));
        assert!(slot.line().error.is_none());
        let err = slot.load_file("/nonexistent/wavejam.safetensors", &choice);
        assert!(matches!(err, Err(ModelFileError::Unreadable { .. })));
        assert!(slot.take().is_none(), "nothing handed over");
        assert_eq!(choice.lock().unwrap().path.as_deref(), Some(good.as_str()));
        assert_eq!(slot.line().error, err.err());
        slot.load_default(&choice);
        assert!(matches!(slot.take(), Some(None)));
        assert_eq!(*choice.lock().unwrap(), ModelChoice::default());
        assert_eq!(slot.generation.load(Ordering::Acquire), 2);
    }

    /// A file far larger than any model (a sparse 4 GB one: nothing is read), a device that
    /// never ends and a pipe with no writer are refused at once, with the reason.
    #[test]
    fn a_huge_file_or_a_device_is_refused_unread() {
        let dir = TempDir::new("huge");
        let huge = dir.0.join("huge.safetensors");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
        let pipe = dir.0.join("pipe.safetensors");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        for path in [huge.as_path(), Path::new("/dev/zero"), pipe.as_path()] {
            let err = load_model_file(path).err();
            assert!(
                matches!(err, Some(ModelFileError::Unreadable { .. })),
                "{}: {err:?}",
                path.display()
            );
        }
    }
}
