//! The generator's logic, free of threads so it is tested synchronously: it follows the player's
//! phrase from observations and turns answer requests into notes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::assets::default_brains;
use crate::generator::continuation::continue_phrase;
use crate::generator::continuator::Continuator;
use crate::generator::engine::Engine;
use crate::generator::event_answer::{context_events, EventAnswerer};
use crate::music::Note;
use crate::params::{SeedMode, WaveJamParams};
use crate::persist::{Session, SessionState, MAX_SAVED_NOTES};
use crate::protocol::{Observation, Request, Source, MAX_ANSWER_NOTES};
use crate::status::Status;
use crate::symbolic::encoding::{recent_velocity, Vocabulary, DEFAULT_VELOCITY};
use crate::symbolic::engines::{Brains, EngineKind, WAVENET_BAR_TICKS};

/// Most notes of a phrase the generator follows; longer phrases keep their latest notes.
pub const MAX_PHRASE_NOTES: usize = MAX_SAVED_NOTES;
/// Most earlier phrases the corpus-trained engines read before the one they answer (the tune so
/// far, whose motifs the short-term memory picks up).
pub const MAX_CONTEXT_PHRASES: usize = 8;
/// Notes the answer's velocity follows (the mean of the prompt's last ones).
const VELOCITY_NOTES: usize = 8;

/// A note of the phrase in progress, in absolute beats; `end` is `None` while the key is held.
#[derive(Debug, Clone, Copy)]
struct HeardNote {
    pitch: u8,
    velocity: u8,
    start: f64,
    end: Option<f64>,
}

/// The seed of an answer's random stream: a function of the seed parameter and, in
/// [`SeedMode::NewEachPhrase`], the phrase's index since playback started (SplitMix64 mixing, so
/// neighbouring seeds give unrelated streams).
pub fn stream_seed(request: &Request) -> u64 {
    let index = match request.seed_mode {
        SeedMode::Fixed => 0,
        SeedMode::NewEachPhrase => request.phrase_index,
    };
    let mut z = (request.seed as u64) << 32 ^ index;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Follows the player and answers.
pub struct Worker {
    /// What the Continuator has learned from the phrases committed since playback started.
    memory: Continuator,
    /// The corpus-trained engines' models; `None` only if the embedded ones failed to load
    /// (then every engine answers as the Continuator).
    brains: Option<Brains>,
    answerer: EventAnswerer,
    /// The latest phrases committed since playback started, oldest first.
    phrases: Vec<Vec<Note>>,
    heard: Vec<HeardNote>,
    /// Latest beat seen, used to close notes whose release was lost.
    latest_beat: f64,
    session: Arc<SessionState>,
    status: Arc<Status>,
}

impl Worker {
    /// A worker that starts from the session saved in `params` (the last phrase and answer),
    /// with the embedded default models (the first worker in a process builds the long-term
    /// memory: seconds, on the caller's thread).
    pub fn new(params: &WaveJamParams, status: Arc<Status>) -> Self {
        Self {
            memory: Continuator::default(),
            brains: default_brains().ok(),
            answerer: EventAnswerer::new(Vocabulary::default()),
            phrases: Vec::with_capacity(MAX_CONTEXT_PHRASES + 1),
            heard: Vec::with_capacity(MAX_PHRASE_NOTES),
            latest_beat: 0.0,
            session: params.session.clone(),
            status,
        }
    }

    /// The session as saved (the last phrase and answer).
    pub fn session_snapshot(&self) -> Session {
        // NOTE: a poisoned lock only means a panic elsewhere; the data is still valid.
        let guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        guard.clone().sanitized()
    }

    fn update_session(&self, update: impl FnOnce(&mut Session)) {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        update(&mut guard);
        self.status.session_revision.fetch_add(1, Ordering::Relaxed);
    }

    /// The phrase in progress, onsets from its first note; held notes end at the latest beat.
    fn current_phrase(&self) -> Vec<Note> {
        let Some(first) = self.heard.iter().map(|n| n.start).reduce(f64::min) else {
            return Vec::new();
        };
        let mut phrase: Vec<Note> = self
            .heard
            .iter()
            .map(|n| Note {
                pitch: n.pitch,
                velocity: n.velocity,
                onset_beats: n.start - first,
                duration_beats: (n.end.unwrap_or(self.latest_beat) - n.start).max(1.0 / 24.0),
            })
            .collect();
        phrase.sort_by(|a, b| {
            a.onset_beats
                .total_cmp(&b.onset_beats)
                .then(a.pitch.cmp(&b.pitch))
        });
        phrase
    }

    /// Handle one observation; returns the answer's notes (onsets from its start) for a request.
    pub fn handle(&mut self, observation: Observation) -> Option<(Request, Vec<Note>)> {
        match observation {
            Observation::NoteOn {
                pitch,
                velocity,
                beat,
            } => {
                self.latest_beat = self.latest_beat.max(beat);
                if self.heard.len() == MAX_PHRASE_NOTES {
                    self.heard.remove(0);
                }
                self.heard.push(HeardNote {
                    pitch,
                    velocity,
                    start: beat,
                    end: None,
                });
            }
            Observation::NoteOff { pitch, beat } => {
                self.latest_beat = self.latest_beat.max(beat);
                if let Some(note) = self
                    .heard
                    .iter_mut()
                    .rev()
                    .find(|n| n.pitch == pitch && n.end.is_none())
                {
                    note.end = Some(beat);
                }
            }
            Observation::Commit => {
                let phrase = self.current_phrase();
                self.heard.clear();
                if !phrase.is_empty() {
                    self.memory.learn(&phrase);
                    if self.phrases.len() == MAX_CONTEXT_PHRASES {
                        self.phrases.remove(0);
                    }
                    self.phrases.push(phrase.clone());
                    self.update_session(|s| s.last_phrase = phrase);
                }
            }
            Observation::ResetMemory => {
                self.memory.clear_memory();
                self.phrases.clear();
            }
            Observation::Discontinuity => self.heard.clear(),
            Observation::Answer(request) => return Some((request, self.answer(&request))),
        }
        None
    }

    /// Generate the answer to `request`.
    pub fn answer(&mut self, request: &Request) -> Vec<Note> {
        let started = Instant::now();
        let current = self.current_phrase();
        let session = self.session_snapshot();
        // The phrase being played is answered speculatively: it is committed (learned, kept as
        // context) only if it really ends.
        let (prompt, speculative) = match request.source {
            Source::Phrase if !current.is_empty() => (current, true),
            Source::Phrase => (session.last_phrase, false),
            Source::LastAnswer => (session.last_answer, false),
        };
        // The last committed phrase is already the end of the tune so far.
        let in_context =
            request.source == Source::Phrase && !speculative && !self.phrases.is_empty();
        let mut rng = ChaCha8Rng::seed_from_u64(stream_seed(request));
        let mut answer = Vec::with_capacity(MAX_ANSWER_NOTES);
        match (request.engine.event_engine(), &self.brains) {
            (Some(kind), Some(brains)) => {
                let mut context: Vec<&[Note]> = self.phrases.iter().map(Vec::as_slice).collect();
                if !in_context {
                    context.push(&prompt);
                }
                answer_with_events(
                    &mut self.answerer,
                    brains,
                    kind,
                    &context,
                    request,
                    &mut rng,
                    &mut answer,
                );
            }
            _ => {
                let mut engine = self.memory.clone();
                if speculative || engine.is_empty() {
                    // Speculatively, on a copy; or, after reopening a project, the saved phrase.
                    engine.learn(&prompt);
                }
                continue_phrase(
                    &mut engine,
                    &prompt,
                    request.length_beats,
                    request.temperature,
                    &mut rng,
                    &mut answer,
                );
            }
        }
        answer.truncate(MAX_ANSWER_NOTES);
        self.status
            .last_answer_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let saved = answer.clone();
        self.update_session(|s| s.last_answer = saved);
        answer
    }
}

/// `kind`'s answer to the last of `phrases` (the tune so far, oldest first), at the velocity of
/// the last phrase's latest notes.
fn answer_with_events(
    answerer: &mut EventAnswerer,
    brains: &Brains,
    kind: EngineKind,
    phrases: &[&[Note]],
    request: &Request,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<Note>,
) {
    let vocabulary = *brains.wavenet.vocabulary();
    let context = context_events(phrases, &vocabulary, WAVENET_BAR_TICKS);
    let velocity = phrases
        .last()
        .and_then(|p| recent_velocity(p, VELOCITY_NOTES))
        .unwrap_or(DEFAULT_VELOCITY);
    let mut model = brains.engine(kind);
    answerer.answer(
        model.as_mut(),
        &context,
        request.length_beats,
        request.temperature,
        velocity,
        rng,
        out,
    );
}
