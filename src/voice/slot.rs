//! The user's own voice file (the *Custom* voice): loaded from the panel, saved with the project
//! as its path and content hash, restored when the project is reopened, and handed to the
//! audio thread without a lock.
//!
//! The panel validates the file ([`VoiceFile::parse`]) and builds its [`VoiceStream`] for the
//! host's rate on its own thread, then passes it over a wait-free ring; the audio thread passes
//! the voice it replaces back over a second ring, and the panel drops it there (the audio
//! thread never frees memory). A bad file changes nothing but the panel's line: the previous
//! voice keeps playing.

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::models::choice::{load_file, ModelChoice, ModelChoiceState, ModelFileError, ModelLine};
use crate::models::stack::DilatedStack;
use crate::voice::stream::VoiceStream;
use crate::voice::VoiceFile;

/// The panel's voice line when no voice file is loaded.
pub const NO_CUSTOM_VOICE: &str = "no voice file loaded (Custom plays the synth)";

/// A custom voice ready to play: its file (kept to rebuild the stream at another host rate),
/// the project's record of it, and its stream.
#[derive(Debug)]
pub struct CustomVoice {
    pub choice: ModelChoice,
    pub file: Arc<VoiceFile>,
    pub stream: VoiceStream,
}

impl CustomVoice {
    /// `file` as `choice` names it, streamed at `host_rate_hz`. Allocates.
    pub fn new(choice: ModelChoice, file: Arc<VoiceFile>, host_rate_hz: f32) -> Box<Self> {
        let stream = VoiceStream::new(&file, host_rate_hz);
        Box::new(Self {
            choice,
            file,
            stream,
        })
    }
}

/// What travels to the audio thread: a new custom voice, or `None` to drop the one it has.
pub type Handover = Option<Box<CustomVoice>>;

/// The panel's ends of the rings to the audio thread.
#[derive(Debug)]
pub struct PanelEnds {
    pub to_audio: rtrb::Producer<Handover>,
    pub retired: rtrb::Consumer<Box<CustomVoice>>,
}

/// The audio thread's ends.
#[derive(Debug)]
pub struct AudioEnds {
    pub from_panel: rtrb::Consumer<Handover>,
    pub retired: rtrb::Producer<Box<CustomVoice>>,
}

/// Hand-overs waiting at most (the audio thread takes one a block).
const HANDOVER_CAPACITY: usize = 2;

/// A new pair of rings between the panel and the audio thread.
pub fn rings() -> (PanelEnds, AudioEnds) {
    let (to_audio, from_panel) = rtrb::RingBuffer::new(HANDOVER_CAPACITY);
    // NOTE: room for every voice the audio thread can hold or take, so it never has to keep
    // one it replaced.
    let (retired_in, retired_out) = rtrb::RingBuffer::new(HANDOVER_CAPACITY + 2);
    (
        PanelEnds {
            to_audio,
            retired: retired_out,
        },
        AudioEnds {
            from_panel,
            retired: retired_in,
        },
    )
}

/// The custom voice's hand-over, shared by the panel (which loads files) and the plugin (which
/// connects the rings on activation); also what the panel shows about the voice.
#[derive(Debug, Default)]
pub struct VoiceSlot {
    ends: Mutex<Option<PanelEnds>>,
    /// The host's rate, Hz, while activated (0 before and while inactive).
    host_rate_hz: AtomicU32,
    line: Mutex<ModelLine>,
    /// Times a neural voice missed its block's deadline and the synth took over its line.
    pub fallbacks: AtomicU64,
    /// How far every voice runs behind its notes, in host samples (reported to the host).
    pub latency_samples: AtomicU32,
}

impl VoiceSlot {
    /// The audio side's rings and the host's rate, on activation.
    pub fn connect(&self, ends: PanelEnds, host_rate_hz: f32) {
        *self.ends.lock().unwrap_or_else(|e| e.into_inner()) = Some(ends);
        self.set_host_rate(host_rate_hz);
    }

    /// The host's rate changed (a new activation; 0 on deactivation).
    pub fn set_host_rate(&self, host_rate_hz: f32) {
        self.host_rate_hz
            .store(host_rate_hz.max(0.0).round() as u32, Ordering::Release);
    }

    /// Loads and validates the voice file at `path`, builds it for the host's rate and hands it
    /// to the audio thread; the project now names it in `choice`. A bad file changes nothing
    /// but the line, and is returned.
    pub fn load_file(&self, path: &str, choice: &ModelChoiceState) -> Result<(), ModelFileError> {
        match load_file(Path::new(path), VoiceFile::parse) {
            Ok((file, hash)) => {
                let chosen = ModelChoice {
                    path: Some(path.to_string()),
                    hash: Some(hash),
                };
                let line = ModelLine::playing(describe(&file, path));
                let rate = self.host_rate_hz.load(Ordering::Acquire);
                // NOTE: before the first activation the rings are not connected; activation
                // then builds the voice the project names.
                if rate > 0
                    && !self.send(Some(CustomVoice::new(
                        chosen.clone(),
                        Arc::new(file),
                        rate as f32,
                    )))
                {
                    return Err(self.refuse(ModelFileError::Busy {
                        path: path.to_string(),
                    }));
                }
                self.set_line(line);
                *choice.lock().unwrap_or_else(|e| e.into_inner()) = chosen;
                Ok(())
            }
            Err(error) => Err(self.refuse(error)),
        }
    }

    /// Says on the line why a voice file does not play; what played plays on.
    fn refuse(&self, error: ModelFileError) -> ModelFileError {
        self.set_line(ModelLine::failed(
            error.clone(),
            "the previous voice keeps playing",
        ));
        error
    }

    /// No custom voice: *Custom* plays the synth; the project names none.
    pub fn unload(&self, choice: &ModelChoiceState) {
        if self.host_rate_hz.load(Ordering::Acquire) > 0 && !self.send(None) {
            self.refuse(ModelFileError::Busy {
                path: "no voice file".into(),
            });
            return;
        }
        self.set_line(ModelLine::playing(NO_CUSTOM_VOICE));
        *choice.lock().unwrap_or_else(|e| e.into_inner()) = ModelChoice::default();
    }

    /// Drops what the audio thread gave back and hands `voice` over. Whether it went: not when
    /// the audio thread has not taken the last two yet (or before the rings are connected).
    fn send(&self, voice: Handover) -> bool {
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ends) = ends.as_mut() else {
            return false;
        };
        while ends.retired.pop().is_ok() {}
        ends.to_audio.push(voice).is_ok()
    }

    /// The panel's line about the voice.
    pub fn line(&self) -> ModelLine {
        self.line.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_line(&self, line: ModelLine) {
        *self.line.lock().unwrap_or_else(|e| e.into_inner()) = line;
    }
}

/// A short description of a loaded voice for the panel.
pub fn describe(file: &VoiceFile, path: &str) -> String {
    let config = &file.config;
    format!(
        "{path}: voice at {} kHz, {} layers, {} ms heard",
        config.sample_rate as f32 / 1000.0,
        config.layers(),
        config.receptive_field() * 1000 / config.sample_rate as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::FIDDLE_VOICE;
    use crate::test_kit::TempDir;

    /// A good file reaches the audio thread's ring and the project; a bad one reaches neither
    /// and the line says why; unloading sends `None`.
    #[test]
    fn the_slot_hands_good_voices_over_and_refuses_bad_ones() {
        let dir = TempDir::new("voice-slot");
        let good = dir.0.join("mine.safetensors");
        std::fs::write(&good, FIDDLE_VOICE).unwrap();
        let bad = dir.0.join("half.safetensors");
        std::fs::write(&bad, &FIDDLE_VOICE[..FIDDLE_VOICE.len() / 2]).unwrap();
        let (panel, mut audio) = rings();
        let slot = VoiceSlot::default();
        slot.connect(panel, 44_100.0);
        let choice = ModelChoiceState::default();

        slot.load_file(good.to_str().unwrap(), &choice).unwrap();
        let voice = audio.from_panel.pop().unwrap().expect("a voice");
        assert_eq!(voice.stream.host_rate_hz(), 44_100);
        assert_eq!(choice.lock().unwrap().path, voice.choice.path);
        assert!(slot.line().error.is_none());

        let err = slot.load_file(bad.to_str().unwrap(), &choice).unwrap_err();
        assert!(err.to_string().contains("half.safetensors"), "{err}");
        assert!(audio.from_panel.pop().is_err(), "nothing handed over");
        assert_eq!(choice.lock().unwrap().path, voice.choice.path);
        assert_eq!(slot.line().error, Some(err));

        // What the audio thread gives back is dropped on the panel's next hand-over.
        audio.retired.push(voice).unwrap();
        slot.unload(&choice);
        assert!(audio.from_panel.pop().unwrap().is_none());
        assert_eq!(audio.retired.slots(), HANDOVER_CAPACITY + 2);
        assert_eq!(*choice.lock().unwrap(), ModelChoice::default());
    }

    /// While the host does not process, the audio thread takes nothing: a load the ring has no
    /// room for says so and leaves the project naming the last voice handed over, which is the
    /// one that plays once the host does.
    #[test]
    fn a_load_the_audio_thread_has_no_room_for_is_refused_not_lost() {
        let dir = TempDir::new("voice-slot-busy");
        let paths: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|name| {
                let path = dir.0.join(format!("{name}.safetensors"));
                std::fs::write(&path, FIDDLE_VOICE).unwrap();
                path.to_str().unwrap().to_string()
            })
            .collect();
        let (panel, mut audio) = rings();
        let slot = VoiceSlot::default();
        slot.connect(panel, 48_000.0);
        let choice = ModelChoiceState::default();
        slot.load_file(&paths[0], &choice).unwrap();
        slot.load_file(&paths[1], &choice).unwrap();
        let err = slot.load_file(&paths[2], &choice).unwrap_err();
        assert!(matches!(err, ModelFileError::Busy { .. }), "{err:?}");
        assert!(err.to_string().contains("c.safetensors"), "{err}");
        assert_eq!(slot.line().error, Some(err));
        assert_eq!(choice.lock().unwrap().path.as_deref(), Some(&*paths[1]));
        slot.unload(&choice);
        assert!(slot.line().error.is_some(), "no room for the unload either");
        assert_eq!(choice.lock().unwrap().path.as_deref(), Some(&*paths[1]));
        // Inactive, loads are recorded for the next activation to build.
        slot.set_host_rate(0.0);
        slot.load_file(&paths[2], &choice).unwrap();
        assert_eq!(choice.lock().unwrap().path.as_deref(), Some(&*paths[2]));
        slot.load_file(&paths[0], &choice).unwrap();
        assert!(slot.line().error.is_none());
        slot.set_host_rate(48_000.0);
        // The host plays a block: the audio thread takes one, and there is room again.
        let first = audio.from_panel.pop().unwrap().unwrap();
        assert_eq!(first.choice.path.as_deref(), Some(&*paths[0]));
        slot.load_file(&paths[2], &choice).unwrap();
        assert!(slot.line().error.is_none());
        assert_eq!(choice.lock().unwrap().path.as_deref(), Some(&*paths[2]));
    }
}
