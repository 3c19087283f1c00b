//! Non-parameter state saved with the DAW project: the last phrase and the last answer (so the
//! panel shows them, `generate` can answer after reopening, and the answer can be exported).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nice_plug::params::persist::PersistentField;

use crate::music::Note;

/// Most notes kept per saved phrase or answer.
pub const MAX_SAVED_NOTES: usize = 512;
/// Latest end of a saved note, in beats from its phrase's start (a quarter of an hour at 120
/// BPM): a phrase or an answer is far shorter, and the panel and the engines spend time on
/// every beat of one.
pub const MAX_SAVED_BEATS: f64 = 2048.0;

/// The musical memory of a session, as saved in the project. Locked only by the generator thread
/// and the GUI, never by the audio thread.
///
/// Loading never fails: a saved list of the wrong shape (an old version, a corrupt project)
/// loads empty with a logged reason, and bad notes (of the wrong shape too) are dropped, one by
/// one.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, from = "SavedSession")]
pub struct Session {
    /// The player's last phrase, onsets from its first note.
    pub last_phrase: Vec<Note>,
    /// WaveJam's last answer, onsets from its start.
    pub last_answer: Vec<Note>,
    /// The tempo the last answer's beats play at, in BPM: the player's own with the transport
    /// stopped (its beats are theirs), else the clock's. `None` in a project saved before it
    /// was kept.
    pub answer_tempo_bpm: Option<f64>,
}

/// Whatever JSON a project holds for the session.
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct SavedSession(serde_json::Value);

impl From<SavedSession> for Session {
    fn from(saved: SavedSession) -> Self {
        let fields = match saved.0 {
            serde_json::Value::Object(fields) => fields,
            other => {
                nice_plug::nice_warn!(
                    "WaveJam: ignoring a saved session that is not an object: {other}"
                );
                return Session::default();
            }
        };
        let notes = |name: &str| saved_notes(name, fields.get(name));
        Session {
            last_phrase: notes("last_phrase"),
            last_answer: notes("last_answer"),
            answer_tempo_bpm: fields
                .get("answer_tempo_bpm")
                .and_then(serde_json::Value::as_f64),
        }
        .sanitized()
    }
}

/// The notes of the saved list `name` (none if it is missing); a note that is not one is
/// dropped, the others kept.
fn saved_notes(name: &str, saved: Option<&serde_json::Value>) -> Vec<Note> {
    let items = match saved {
        None => return Vec::new(),
        Some(serde_json::Value::Array(items)) => items,
        Some(other) => {
            nice_plug::nice_warn!("WaveJam: ignoring the saved {name}, not a list: {other}");
            return Vec::new();
        }
    };
    let notes: Vec<Note> = items
        .iter()
        .filter_map(|item| <Note as serde::Deserialize>::deserialize(item).ok())
        .collect();
    if notes.len() < items.len() {
        let dropped = items.len() - notes.len();
        nice_plug::nice_warn!("WaveJam: dropped {dropped} unreadable notes of the saved {name}");
    }
    notes
}

impl Session {
    /// Drop notes a corrupt or hand-edited project could carry (non-finite times or ends past
    /// [`MAX_SAVED_BEATS`], keys > 127, zero velocity), and keep at most [`MAX_SAVED_NOTES`] per
    /// list; a tempo that is not one is forgotten.
    pub fn sanitized(mut self) -> Self {
        for notes in [&mut self.last_phrase, &mut self.last_answer] {
            notes.retain(|n| {
                n.pitch < 128
                    && (1..128).contains(&n.velocity)
                    && n.onset_beats.is_finite()
                    && n.onset_beats >= 0.0
                    && n.duration_beats.is_finite()
                    && n.duration_beats > 0.0
                    && n.onset_beats + n.duration_beats <= MAX_SAVED_BEATS
            });
            notes.truncate(MAX_SAVED_NOTES);
        }
        self.answer_tempo_bpm = self
            .answer_tempo_bpm
            .filter(|bpm| bpm.is_finite() && *bpm > 0.0);
        self
    }
}

/// The persisted field (`#[persist = "session"]`): the session, and how many times a state was
/// loaded into it — a project or preset loaded into a plugin that is already playing asks the
/// host to restart it, so every part starts from the loaded state (nice-plug does not
/// reinitialize the plugin after a state load).
#[derive(Debug, Default)]
pub struct SessionState {
    session: Mutex<Session>,
    loads: AtomicU64,
}

impl SessionState {
    pub fn new(session: Session) -> Self {
        Self {
            session: Mutex::new(session),
            loads: AtomicU64::new(0),
        }
    }

    /// How many times a saved state was loaded into it.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Acquire)
    }
}

impl std::ops::Deref for SessionState {
    type Target = Mutex<Session>;

    fn deref(&self) -> &Mutex<Session> {
        &self.session
    }
}

impl<'a> PersistentField<'a, Session> for Arc<SessionState> {
    fn set(&self, new_value: Session) {
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = new_value;
        self.loads.fetch_add(1, Ordering::AcqRel);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&Session) -> R,
    {
        f(&self.session.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_notes_are_dropped_and_good_ones_kept() {
        let good = Note {
            pitch: 60,
            velocity: 90,
            onset_beats: 0.5,
            duration_beats: 1.0,
        };
        let session = Session {
            last_phrase: vec![
                good,
                Note { pitch: 200, ..good },
                Note {
                    velocity: 0,
                    ..good
                },
                Note {
                    onset_beats: f64::NAN,
                    ..good
                },
                Note {
                    duration_beats: -1.0,
                    ..good
                },
                Note {
                    onset_beats: 1e12,
                    ..good
                },
                Note {
                    duration_beats: MAX_SAVED_BEATS,
                    ..good
                },
            ],
            last_answer: vec![good; MAX_SAVED_NOTES + 3],
            answer_tempo_bpm: Some(f64::INFINITY),
        }
        .sanitized();
        assert_eq!(session.answer_tempo_bpm, None);
        assert_eq!(session.last_phrase, vec![good]);
        assert_eq!(session.last_answer.len(), MAX_SAVED_NOTES);
    }

    #[test]
    fn old_partial_or_misshapen_json_loads_with_defaults() {
        let session: Session = serde_json::from_str(r#"{"last_phrase": []}"#).unwrap();
        assert!(session.last_answer.is_empty());
        for garbage in [r#"{"last_phrase": 7}"#, "[1, 2]", "null", r#""text""#] {
            let session: Session = serde_json::from_str(garbage).unwrap();
            assert_eq!(session, Session::default(), "{garbage}");
        }
    }

    #[test]
    fn a_saved_session_round_trips_and_is_sanitized_on_load() {
        let note = Note {
            pitch: 62,
            velocity: 70,
            onset_beats: 1.5,
            duration_beats: 0.25,
        };
        let session = Session {
            last_phrase: vec![note],
            last_answer: vec![note, Note { pitch: 255, ..note }],
            answer_tempo_bpm: Some(87.5),
        };
        let back: Session =
            serde_json::from_str(&serde_json::to_string(&session).unwrap()).unwrap();
        assert_eq!(back.last_phrase, vec![note]);
        assert_eq!(back.last_answer, vec![note]);
        assert_eq!(back.answer_tempo_bpm, Some(87.5));
        for tempo in ["-90", "0", "\"fast\"", "null"] {
            let saved = format!(r#"{{"last_answer":[],"answer_tempo_bpm":{tempo}}}"#);
            let back: Session = serde_json::from_str(&saved).unwrap();
            assert_eq!(back.answer_tempo_bpm, None, "{tempo}");
        }
    }

    /// A note that is not one (a key past a byte, a string, null) costs only itself: the
    /// other notes of both lists load.
    #[test]
    fn a_misshapen_note_drops_only_itself() {
        let good = r#"{"pitch":62,"velocity":70,"onset_beats":1.5,"duration_beats":0.25}"#;
        let saved = format!(
            r#"{{"last_phrase":[{good},{{"pitch":300,"velocity":70,"onset_beats":0,"duration_beats":1}},"text",null],"last_answer":[{good}]}}"#
        );
        let session: Session = serde_json::from_str(&saved).unwrap();
        assert_eq!(session.last_phrase.len(), 1);
        assert_eq!(session.last_answer.len(), 1);
    }
}
