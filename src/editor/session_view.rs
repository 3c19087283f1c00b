//! The panel's copy of the saved session (last phrase and answer), refreshed only when the
//! generator bumps `Status::session_revision`.

use std::sync::TryLockError;

use crate::music::Note;
use crate::persist::SessionState;

/// Cached clones of the session's notes.
#[derive(Debug, Default)]
pub struct SessionView {
    /// The revision the clones were taken at; `None` forces a read on the next refresh.
    revision: Option<u64>,
    /// The player's last phrase, onsets from its first note.
    pub phrase: Vec<Note>,
    /// WaveJam's last answer, onsets from its start.
    pub answer: Vec<Note>,
    /// The tempo the answer's beats play at, in BPM, if the session says.
    pub answer_tempo_bpm: Option<f64>,
}

impl SessionView {
    /// Read the session again on the next refresh, whatever the revision (e.g. when the editor
    /// opens: loading a project replaces the session without bumping the revision).
    pub fn invalidate(&mut self) {
        self.revision = None;
    }

    /// Clone the session if `revision` (read before calling) differs from the cached one. Never
    /// waits for the lock: while the generator holds it, the old copy stays until a later frame.
    pub fn refresh(&mut self, session: &SessionState, revision: u64) {
        if self.revision == Some(revision) {
            return;
        }
        let guard = match session.try_lock() {
            Ok(guard) => guard,
            // NOTE: a poisoned lock only means a panic elsewhere; the data is still valid.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        self.phrase.clone_from(&guard.last_phrase);
        self.answer.clone_from(&guard.last_answer);
        self.answer_tempo_bpm = guard.answer_tempo_bpm;
        self.revision = Some(revision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::Session;

    /// A one-beat note at beat 0.
    fn note(pitch: u8) -> Note {
        crate::test_kit::note(pitch, 0.0, 1.0)
    }

    #[test]
    fn reads_only_when_the_revision_changes() {
        let session = SessionState::new(Session {
            last_phrase: vec![note(60)],
            last_answer: vec![note(62)],
            answer_tempo_bpm: None,
        });
        let mut view = SessionView::default();
        view.refresh(&session, 0);
        assert_eq!(
            (view.phrase.clone(), view.answer.clone()),
            (vec![note(60)], vec![note(62)])
        );

        session.lock().unwrap().last_answer = vec![note(64)];
        view.refresh(&session, 0);
        assert_eq!(view.answer, vec![note(62)], "same revision: cached copy");
        view.refresh(&session, 1);
        assert_eq!(view.answer, vec![note(64)]);

        session.lock().unwrap().last_answer.clear();
        view.invalidate();
        view.refresh(&session, 1);
        assert!(view.answer.is_empty(), "invalidated: read again");
    }

    #[test]
    fn a_held_lock_keeps_the_old_copy() {
        let session = SessionState::new(Session::default());
        let mut view = SessionView::default();
        let guard = session.lock().unwrap();
        view.refresh(&session, 3);
        drop(guard);
        session.lock().unwrap().last_phrase = vec![note(70)];
        view.refresh(&session, 3);
        assert_eq!(
            view.phrase,
            vec![note(70)],
            "the blocked refresh did not mark revision 3 read"
        );
    }
}
